"""The playbooks, run as an operator would: plain ansible-playbook against loopback hosts.

The hosts are inventory entries on ``ansible_connection: local`` sharing the one Docker
engine, each with its own container name, port and state directory. Scenarios whose
result several tests only read are set up once per module (the ``*_scenario`` fixtures).
"""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass

import pytest

from tests.ansible.conftest import (
    CANARY_SECRET,
    REPO,
    Images,
    Inventory,
    InventoryFactory,
    PlaybookRun,
    container_exists,
    deploy_vars,
    docker_inspect,
    run_playbook,
    running_digest,
)


@dataclass
class Scenario:
    inventory: Inventory
    runs: dict[str, PlaybookRun]


@pytest.fixture(scope="module")
def deployed_scenario(images: Images, make_shared_inventory: InventoryFactory) -> Scenario:
    """One host on 1.0.0, deployed by deploy.yml, and status.yml run on it."""
    inventory = make_shared_inventory(["web"])
    deploy = run_playbook("deploy.yml", inventory.path, deploy_vars(images.sample["1.0.0"]))
    assert not deploy.failed, str(deploy)
    return Scenario(inventory, {"deploy": deploy, "status": run_playbook("status.yml", inventory.path)})


@pytest.fixture(scope="module")
def rolled_back_scenario(images: Images, make_shared_inventory: InventoryFactory) -> Scenario:
    """One host deployed 1.0.0 then 2.0.0, then rolled back with plain rollback.yml."""
    inventory = make_shared_inventory(["web"])
    for version in ("1.0.0", "2.0.0"):
        deploy = run_playbook("deploy.yml", inventory.path, deploy_vars(images.sample[version]))
        assert not deploy.failed, str(deploy)
    return Scenario(inventory, {"rollback": run_playbook("rollback.yml", inventory.path)})


@pytest.fixture(scope="module")
def exiting_scenario(images: Images, make_shared_inventory: InventoryFactory) -> Scenario:
    """One host on 1.0.0, then deploy.yml of an image whose entrypoint exits at once."""
    inventory = make_shared_inventory(["web"])
    assert not run_playbook("deploy.yml", inventory.path, deploy_vars(images.sample["1.0.0"])).failed
    deploy = run_playbook("deploy.yml", inventory.path, deploy_vars(images.sample["3.0.0"], release_health_timeout=300))
    return Scenario(inventory, {"deploy": deploy})


# deploy.yml


def test_deploy_runs_the_release_pinned_by_digest(deployed_scenario: Scenario, images: Images) -> None:
    release = images.sample["1.0.0"]
    container = docker_inspect(deployed_scenario.inventory.container("web"))
    assert container["Config"]["Image"] == f"{release.name}@{release.digest}"
    assert running_digest(deployed_scenario.inventory.container("web")) == release.digest


def test_deploy_sets_restart_policy_init_labels_and_loopback_port(deployed_scenario: Scenario) -> None:
    container = docker_inspect(deployed_scenario.inventory.container("web"))
    assert container["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert container["HostConfig"]["Init"] is True
    assert container["Config"]["StopTimeout"] == 2
    assert container["Config"]["Labels"]["coordinator.version"] == "1.0.0"
    assert container["HostConfig"]["PortBindings"]["8080/tcp"][0]["HostIp"] == "127.0.0.1"


def test_deploy_reports_the_host_through_set_stats(deployed_scenario: Scenario, images: Images) -> None:
    host = deployed_scenario.runs["deploy"].hosts["web"]
    assert host["running_digest"] == images.sample["1.0.0"].digest
    assert host["version"] == "1.0.0"
    assert host["healthy"] is True
    assert host["previous_digest"] is None


def test_deploy_records_the_verified_release_on_the_host(deployed_scenario: Scenario, images: Images) -> None:
    record = deployed_scenario.inventory.record("web")
    assert record["current"]["digest"] == images.sample["1.0.0"].digest
    assert record["current"]["deployed_by"] == "pytest"
    assert record["current"]["release_id"] == "test-release"
    assert record["current"]["verified"] is True
    assert record["previous"] is None


def test_deploy_writes_the_env_file_private(deployed_scenario: Scenario) -> None:
    inventory = deployed_scenario.inventory
    env_file = inventory.state_root / inventory.container("web") / "app.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert f"SAMPLE_API_SECRET={CANARY_SECRET}" in env_file.read_text()


def test_the_secret_never_appears_in_playbook_output(deployed_scenario: Scenario) -> None:
    for run in deployed_scenario.runs.values():
        assert CANARY_SECRET not in run.output


def test_redeploying_the_same_digest_changes_nothing(deployed_scenario: Scenario, images: Images) -> None:
    again = run_playbook("deploy.yml", deployed_scenario.inventory.path, deploy_vars(images.sample["1.0.0"]))

    assert not again.failed, str(again)
    assert again.stats["web"]["changed"] == 0


def test_deploy_in_check_mode_reports_the_change_and_changes_nothing(deployed_scenario: Scenario, images: Images) -> None:
    inventory = deployed_scenario.inventory
    record_before = inventory.record("web")
    container_before = docker_inspect(inventory.container("web"))["Id"]

    run = run_playbook("deploy.yml", inventory.path, deploy_vars(images.sample["2.0.0"]), options=("--check",))

    assert not run.failed, str(run)
    assert run.stats["web"]["changed"] > 0  # it would replace the container
    assert docker_inspect(inventory.container("web"))["Id"] == container_before
    assert running_digest(inventory.container("web")) == images.sample["1.0.0"].digest
    assert inventory.record("web") == record_before


def test_deploy_of_an_exiting_image_fails_early(exiting_scenario: Scenario) -> None:
    run = exiting_scenario.runs["deploy"]
    assert run.failed
    assert "not waiting for the deadline" in run.output
    assert "failed on web" in run.output


def test_deploy_of_an_exiting_image_restores_the_previous_release(exiting_scenario: Scenario, images: Images) -> None:
    inventory = exiting_scenario.inventory
    run = exiting_scenario.runs["deploy"]
    assert running_digest(inventory.container("web")) == images.sample["1.0.0"].digest
    assert run.hosts["web"]["rolled_back"] is True
    assert run.hosts["web"]["running_digest"] == images.sample["1.0.0"].digest and run.hosts["web"]["version"] == "1.0.0"
    assert run.hosts["web"]["previous_digest"] == images.sample["3.0.0"].digest
    assert inventory.record("web")["previous"]["digest"] == images.sample["3.0.0"].digest
    assert inventory.record("web")["previous"]["bad"] is True
    assert inventory.record("web")["previous"]["bad_reason"] == "deploy failed on web: rolled back by deploy.yml"
    assert inventory.record("web")["current"]["verified"] is True
    assert "Hosts rolled back to their previous release: web." in run.output


def test_the_failed_host_s_deploy_call_restores_it_without_a_second_remote_call(exiting_scenario: Scenario) -> None:
    run = exiting_scenario.runs["deploy"]
    assert run.remote_calls["web"] == ["release_host"], run.remote_calls
    assert run.ran["Redeploy the previous release and wait until the host serves it"] == [], run.ran  # skipped
    assert run.ran["Report the rollback"] == ["web"], run.ran


def test_a_restore_the_deploy_call_cannot_do_is_a_failed_rollback(images: Images, make_inventory: InventoryFactory) -> None:
    inventory = make_inventory(["web"])
    assert not run_playbook("deploy.yml", inventory.path, deploy_vars(images.sample["1.0.0"])).failed
    missing = "sha256:" + "0" * 64

    # As the coordinator passes its last verified release; this one is not in the registry.
    run = run_playbook("deploy.yml", inventory.path, deploy_vars(
        images.sample["3.0.0"], docker_release_rollback_digest=missing, docker_release_rollback_version="0.9.0",
        docker_release_rollback_image=images.sample["1.0.0"].name))

    assert run.failed
    assert "ROLLBACK FAILED on web after a failed deploy: could not pull or start" in run.output, run.output[-3000:]
    assert missing in run.output and "the host needs a person" in run.output
    assert run.hosts["web"]["rolled_back"] is False and missing in run.hosts["web"]["rollback_error"], run.hosts
    assert run.remote_calls["web"] == ["release_host"], run.remote_calls


def test_a_restored_release_still_starting_is_waited_for_by_the_play(images: Images, make_inventory: InventoryFactory) -> None:
    """The deploy call's restore returns before the restored release is healthy: the play waits for *that* release."""
    inventory = make_inventory(["web"])
    assert not run_playbook("deploy.yml", inventory.path, deploy_vars(images.sample["1.0.0"])).failed
    slow = images.sample["4.0.0"]  # answers 404 on /health: never healthy, never fatal

    run = run_playbook("deploy.yml", inventory.path, deploy_vars(
        images.sample["3.0.0"], release_health_timeout=3, docker_release_rollback_digest=slow.digest,
        docker_release_rollback_version=slow.version, docker_release_rollback_image=slow.name))

    assert run.failed
    assert run.ran["docker_release : Wait for /health and /version until the deadline"] == ["web"], run.ran
    # The wait checked the restored release (its /health), not the failed one's digest.
    assert ("ROLLBACK FAILED on web after a failed deploy: no healthy answer within the 3 s deadline"
            in run.output), run.output[-3000:]
    assert "/health answered 404" in run.hosts["web"]["rollback_error"], run.hosts
    assert running_digest(inventory.container("web")) == slow.digest
    assert run.remote_calls["web"][0] == "release_host" and len(run.remote_calls["web"]) >= 2, run.remote_calls


def test_a_failing_batch_rolls_back_every_host_this_run_moved(images: Images, make_inventory: InventoryFactory) -> None:
    names = ["fleet1", "fleet2", "fleet3", "fleet4", "fleet5"]
    # fleet4's app refuses to start as 2.0.0, so the second batch (fleet3, fleet4) fails.
    inventory = make_inventory(names, {"fleet4": {"docker_release_env": {"REFUSE_VERSION": "2.0.0"}}})
    old, new = images.fleet["1.0.0"], images.fleet["2.0.0"]
    first = run_playbook("deploy.yml", inventory.path, deploy_vars(old, deploy_serial="100%"))
    assert not first.failed, str(first)

    run = run_playbook("deploy.yml", inventory.path, deploy_vars(new, deploy_serial=2))

    assert run.failed
    assert "failed on fleet4" in run.output
    for name in names:
        assert running_digest(inventory.container(name)) == old.digest, name
    for name in ["fleet1", "fleet2", "fleet3", "fleet4"]:
        assert run.hosts[name]["rolled_back"] is True, name
        assert inventory.record(name)["previous"]["digest"] == new.digest, name
    assert "fleet5" not in run.hosts
    assert inventory.record("fleet5")["previous"] is None


def test_by_default_a_release_that_fails_everywhere_fails_on_the_canary_alone(
    images: Images, make_inventory: InventoryFactory
) -> None:
    names = ["fleet1", "fleet2", "fleet3", "fleet4", "fleet5"]
    # Every host refuses 2.0.0: the default batches (1, 2, 2) stop after the one-host canary.
    refuse = {"docker_release_env": {"REFUSE_VERSION": "2.0.0"}}
    inventory = make_inventory(names, {name: refuse for name in names})
    old, new = images.fleet["1.0.0"], images.fleet["2.0.0"]
    first = run_playbook("deploy.yml", inventory.path, deploy_vars(old, deploy_serial="100%"))
    assert not first.failed, str(first)

    run = run_playbook("deploy.yml", inventory.path, deploy_vars(new))

    assert run.failed
    assert "failed on fleet1" in run.output
    assert run.hosts["fleet1"]["rolled_back"] is True
    for name in names:
        assert running_digest(inventory.container(name)) == old.digest, name
    for name in names[1:]:
        assert name not in run.hosts, name
        assert inventory.record(name)["previous"] is None, name


# verify.yml


def test_verify_passes_on_the_recorded_release_without_extra_vars(deployed_scenario: Scenario, images: Images) -> None:
    run = run_playbook("verify.yml", deployed_scenario.inventory.path)

    assert not run.failed, str(run)
    assert run.hosts["web"] == {"healthy": True, "version": "1.0.0", "running_digest": images.sample["1.0.0"].digest}


def test_verify_fails_on_a_digest_other_than_the_running_one(deployed_scenario: Scenario, images: Images) -> None:
    run = run_playbook(
        "verify.yml", deployed_scenario.inventory.path, {"release_health_expected_digest": images.sample["2.0.0"].digest}
    )

    assert run.failed
    assert run.hosts["web"]["healthy"] is False
    assert images.sample["2.0.0"].digest in run.hosts["web"]["error"]


def test_verify_fails_early_when_the_container_exits(images: Images, make_inventory: InventoryFactory) -> None:
    inventory = make_inventory(["web"])
    exiting = images.sample["3.0.0"]
    run_playbook("deploy.yml", inventory.path, deploy_vars(exiting, deploy_rollback_on_failure=False))

    run = run_playbook(
        "verify.yml",
        inventory.path,
        {"release_health_expected_version": "3.0.0", "release_health_expected_digest": exiting.digest},
    )

    assert run.failed
    assert "not waiting for the deadline" in run.output
    assert run.hosts["web"]["healthy"] is False


def test_a_health_wait_reports_progress_through_the_runner_until_its_deadline(deployed_scenario: Scenario) -> None:
    """The coordinator's view: each unhealthy slice of the wait is a progress line with time left."""
    from coordinator.ansible import run_playbook as run_through_runner
    from coordinator.strategy import AnsibleStrategy

    lines: list[str] = []
    result = run_through_runner(
        ansible_dir=REPO, playbook="verify.yml", inventory=deployed_scenario.inventory.path,
        # A deadline of several slices, so a loaded machine (a slow module start-up eats
        # into each slice) still shows more than one of them.
        extravars={"release_health_health_path": "/missing", "release_health_timeout": 8,
                   "release_health_progress_interval": 1, "release_health_interval": 0.25},
        ident="progress-test", strategy=AnsibleStrategy.LINEAR, timeout_s=120, on_progress=lines.append,
    )

    assert not result.ok
    waiting = [line for line in lines if "web: waiting for health: attempt" in line]
    assert len(waiting) >= 2, lines
    assert "last /missing answered 404" in waiting[0] and " s left" in waiting[0]
    assert "within the 8 s deadline" in result.hosts["web"].message or "within the 8 s deadline" in str(result.reported)


# rollback.yml


def test_manual_rollback_restores_the_previous_digest(rolled_back_scenario: Scenario, images: Images) -> None:
    run = rolled_back_scenario.runs["rollback"]
    assert not run.failed, str(run)
    assert running_digest(rolled_back_scenario.inventory.container("web")) == images.sample["1.0.0"].digest
    assert run.hosts["web"]["running_digest"] == images.sample["1.0.0"].digest
    assert run.hosts["web"]["rolled_back"] is True


def test_rollback_swaps_the_record_and_marks_the_bad_release(rolled_back_scenario: Scenario, images: Images) -> None:
    record = rolled_back_scenario.inventory.record("web")
    assert record["current"]["digest"] == images.sample["1.0.0"].digest
    assert record["current"]["verified"] is True
    assert record["previous"]["digest"] == images.sample["2.0.0"].digest
    assert record["previous"]["bad"] is True


def test_status_reports_what_runs_and_what_ran_before(rolled_back_scenario: Scenario, images: Images) -> None:
    run = run_playbook("status.yml", rolled_back_scenario.inventory.path)

    assert not run.failed, str(run)
    host = run.hosts["web"]
    assert host["running_digest"] == images.sample["1.0.0"].digest
    assert host["version"] == "1.0.0"
    assert host["state"] == "running"
    assert host["previous_digest"] == images.sample["2.0.0"].digest
    assert host["lock"]["held"] is False


def test_a_second_rollback_keeps_the_rolled_back_release(rolled_back_scenario: Scenario, images: Images) -> None:
    again = run_playbook("rollback.yml", rolled_back_scenario.inventory.path)

    assert not again.failed, str(again)
    assert "already rolled back" in again.output
    assert again.stats["web"]["changed"] == 0
    assert running_digest(rolled_back_scenario.inventory.container("web")) == images.sample["1.0.0"].digest


def test_rollback_to_an_explicit_release(images: Images, make_inventory: InventoryFactory) -> None:
    inventory = make_inventory(["web"])
    assert not run_playbook("deploy.yml", inventory.path, deploy_vars(images.sample["2.0.0"])).failed

    run = run_playbook(
        "rollback.yml",
        inventory.path,
        {"rollback_digest": images.sample["1.0.0"].digest, "rollback_version": "1.0.0"},
    )

    assert not run.failed, str(run)
    assert running_digest(inventory.container("web")) == images.sample["1.0.0"].digest


def test_rollback_without_a_previous_release_fails_clearly(deployed_scenario: Scenario, images: Images) -> None:
    run = run_playbook("rollback.yml", deployed_scenario.inventory.path)

    assert run.failed
    assert "no previous release is recorded" in run.output
    assert running_digest(deployed_scenario.inventory.container("web")) == images.sample["1.0.0"].digest


# lock.yml

ALICE = {"deploy_lock_action": "acquire", "deploy_lock_owner": "alice", "deploy_lock_reason": "hotfix",
         "deploy_lock_version": "2.0.0", "deploy_lock_id": "alice-1"}


def test_lock_acquire_records_owner_reason_version_and_expiry(make_inventory: InventoryFactory) -> None:
    inventory = make_inventory(["web"])

    run = run_playbook("lock.yml", inventory.path, ALICE)

    assert not run.failed, str(run)
    lock = run.hosts["web"]["lock"]
    assert (lock["owner"], lock["reason"], lock["version"], lock["lock_id"]) == ("alice", "hotfix", "2.0.0", "alice-1")
    assert lock["held"] is True and lock["expires_at"]


def test_a_held_lock_refuses_another_owner(make_inventory: InventoryFactory) -> None:
    inventory = make_inventory(["web"])
    assert not run_playbook("lock.yml", inventory.path, ALICE).failed

    run = run_playbook("lock.yml", inventory.path, {**ALICE, "deploy_lock_owner": "bob", "deploy_lock_id": "bob-1"})

    assert run.failed
    assert "locked by alice" in run.output


def test_deploy_refuses_a_host_locked_by_someone_else(images: Images, make_inventory: InventoryFactory) -> None:
    inventory = make_inventory(["web"])
    assert not run_playbook("lock.yml", inventory.path, ALICE).failed

    run = run_playbook("deploy.yml", inventory.path, deploy_vars(images.sample["1.0.0"]))

    assert run.failed
    assert "deploy_lock_id=alice-1" in run.output


def test_deploy_under_its_own_lock_id_proceeds(images: Images, make_inventory: InventoryFactory) -> None:
    inventory = make_inventory(["web"])
    assert not run_playbook("lock.yml", inventory.path, ALICE).failed

    run = run_playbook("deploy.yml", inventory.path, deploy_vars(images.sample["1.0.0"], deploy_lock_id="alice-1"))

    assert not run.failed, str(run)


def test_an_expired_lock_is_taken_over(make_inventory: InventoryFactory) -> None:
    inventory = make_inventory(["web"])
    stale = inventory.lock_dir("web")
    stale.mkdir(parents=True)
    (stale / "info.json").write_text(json.dumps(
        {"owner": "cancelled-ci", "lock_id": "old-1", "acquired_at": "2020-01-01T00:00:00Z",
         "expires_at": "2020-01-01T00:30:00Z", "expires_epoch": 1577838600}
    ))

    run = run_playbook("lock.yml", inventory.path, {"deploy_lock_action": "acquire", "deploy_lock_owner": "bob"})

    assert not run.failed, str(run)
    assert run.hosts["web"]["lock"]["owner"] == "bob"


def test_lock_release_needs_the_lock_id(make_inventory: InventoryFactory) -> None:
    inventory = make_inventory(["web"])
    assert not run_playbook("lock.yml", inventory.path, ALICE).failed

    wrong = run_playbook("lock.yml", inventory.path, {"deploy_lock_action": "release", "deploy_lock_id": "bob-1"})
    right = run_playbook("lock.yml", inventory.path, {"deploy_lock_action": "release", "deploy_lock_id": "alice-1"})
    status = run_playbook("lock.yml", inventory.path, {"deploy_lock_action": "status"})

    assert wrong.failed
    assert "alice-1" in wrong.output
    assert not right.failed, str(right)
    assert status.hosts["web"]["lock"]["held"] is False


def test_acquiring_a_fleet_is_all_or_nothing(make_inventory: InventoryFactory) -> None:
    inventory = make_inventory(["app1", "app2", "app3"])
    assert not run_playbook("lock.yml", inventory.path, {**ALICE, "lock_hosts": "app2"}).failed

    run = run_playbook("lock.yml", inventory.path, {"deploy_lock_action": "acquire", "deploy_lock_owner": "bob"})

    assert run.failed
    assert not inventory.lock_dir("app1").exists()
    assert not inventory.lock_dir("app3").exists()
    assert json.loads((inventory.lock_dir("app2") / "info.json").read_text())["owner"] == "alice"


# deploy.yml with deploy_lock_acquire: one run takes the lock, deploys and gives it back


def test_deploy_takes_the_lock_and_gives_it_back_when_every_host_passed(images: Images, make_inventory: InventoryFactory) -> None:
    inventory = make_inventory(["app1", "app2"])

    run = run_playbook("deploy.yml", inventory.path, deploy_vars(
        images.fleet["1.0.0"], deploy_lock_acquire=True, deploy_lock_id="run-1", deploy_lock_owner="carol", deploy_serial=1))

    assert not run.failed, str(run)
    for name in ("app1", "app2"):
        assert run.hosts[name]["locked"] is False and run.hosts[name]["lock"]["owner"] == "carol", name
        assert run.hosts[name]["final_check"] is True, name
        assert not inventory.lock_dir(name).exists(), name


def test_one_host_takes_deploys_and_gives_the_lock_back_in_one_remote_call(
    images: Images, make_inventory: InventoryFactory
) -> None:
    inventory = make_inventory(["web"])

    run = run_playbook("deploy.yml", inventory.path, deploy_vars(
        images.sample["1.0.0"], deploy_lock_acquire=True, deploy_lock_id="run-5", deploy_lock_owner="carol"))

    assert not run.failed, str(run)
    assert run.remote_calls["web"] == ["release_host"], run.remote_calls
    assert run.hosts["web"]["locked"] is False and run.hosts["web"]["lock"]["owner"] == "carol"
    assert run.hosts["web"]["healthy"] is True and run.hosts["web"]["running_digest"] == images.sample["1.0.0"].digest
    assert not inventory.lock_dir("web").exists()
    # One batch checked the whole run and its call gave the lock back: the batch's report says so
    # (final_check, what `coordinator verify` takes), and the re-check and unlock plays end at once.
    assert run.hosts["web"]["final_check"] is True, run.hosts["web"]
    assert "Report the hosts as healthy after the last batch" not in run.ran, sorted(run.ran)
    assert "Report the released locks" not in run.ran, sorted(run.ran)


def test_one_batch_of_several_hosts_is_checked_whole_by_its_batch_and_unlocked_in_a_last_call(
    images: Images, make_inventory: InventoryFactory
) -> None:
    inventory = make_inventory(["app1", "app2"])

    run = run_playbook("deploy.yml", inventory.path, deploy_vars(
        images.fleet["1.0.0"], deploy_lock_acquire=True, deploy_lock_id="run-8", deploy_lock_owner="carol",
        deploy_serial="100%"))

    assert not run.failed, str(run)
    for name in ("app1", "app2"):
        # Nothing to re-check (no earlier batch), but the lock is given back in a last call, after both
        # passed: a host failing beside one that already gave it back would be rolled back without it.
        assert run.remote_calls[name] == ["deploy_lock", "release_host", "deploy_lock"], run.remote_calls
        assert run.hosts[name]["final_check"] is True and run.hosts[name]["locked"] is False, run.hosts[name]
        assert not inventory.lock_dir(name).exists(), name
    assert "Report the hosts as healthy after the last batch" not in run.ran, sorted(run.ran)
    assert run.ran["Report the released locks"], sorted(run.ran)


def test_a_run_of_one_batch_without_the_final_check_reports_it_as_not_done(
    images: Images, make_inventory: InventoryFactory
) -> None:
    inventory = make_inventory(["web"])

    run = run_playbook("deploy.yml", inventory.path, deploy_vars(images.sample["1.0.0"], deploy_final_check=False))

    assert not run.failed, str(run)
    assert run.hosts["web"]["final_check"] is False, run.hosts["web"]


def test_several_hosts_lock_first_and_each_host_s_last_call_gives_the_lock_back(
    images: Images, make_inventory: InventoryFactory
) -> None:
    inventory = make_inventory(["app1", "app2", "app3"])

    run = run_playbook("deploy.yml", inventory.path, deploy_vars(
        images.fleet["1.0.0"], deploy_lock_acquire=True, deploy_lock_id="run-6", deploy_lock_owner="carol", deploy_serial=1))

    assert not run.failed, str(run)
    # The lock pass, the deploy, and for the earlier batches the re-check that gives the lock back;
    # the one-host last batch gives it back in its deploy call. No separate unlock call.
    assert run.remote_calls["app1"] == ["deploy_lock", "release_host", "release_host"], run.remote_calls
    assert run.remote_calls["app2"] == ["deploy_lock", "release_host", "release_host"], run.remote_calls
    assert run.remote_calls["app3"] == ["deploy_lock", "release_host"], run.remote_calls
    for name in ("app1", "app2", "app3"):
        assert run.hosts[name]["locked"] is False and run.hosts[name]["lock"]["owner"] == "carol", name
        assert not inventory.lock_dir(name).exists(), name


def test_one_host_under_someone_elses_lock_is_refused_by_its_deploy_call_and_nothing_changes(
    images: Images, make_inventory: InventoryFactory
) -> None:
    inventory = make_inventory(["web"])
    assert not run_playbook("lock.yml", inventory.path, ALICE).failed

    run = run_playbook("deploy.yml", inventory.path, deploy_vars(
        images.sample["1.0.0"], deploy_lock_acquire=True, deploy_lock_id="run-7", deploy_lock_owner="carol"))

    assert run.failed
    host = run.hosts["web"]
    assert host["lock_refused"] is True and host["lock_failure"] == "held" and host["locked"] is False, host
    assert host["lock"]["owner"] == "alice" and "alice-1" in host["error"], host
    assert not container_exists(inventory.container("web"))
    assert json.loads((inventory.lock_dir("web") / "info.json").read_text())["lock_id"] == "alice-1"


def test_deploy_under_someone_elses_lock_deploys_nothing_and_releases_its_own(
    images: Images, make_inventory: InventoryFactory
) -> None:
    inventory = make_inventory(["app1", "app2", "app3"])
    assert not run_playbook("lock.yml", inventory.path, {**ALICE, "lock_hosts": "app2"}).failed

    run = run_playbook("deploy.yml", inventory.path, deploy_vars(
        images.fleet["1.0.0"], deploy_lock_acquire=True, deploy_lock_id="run-2", deploy_lock_owner="carol"))

    assert run.failed
    assert run.hosts["app2"]["lock_refused"] is True
    assert "alice" in run.hosts["app2"]["error"]
    for name in ("app1", "app3"):
        assert not inventory.lock_dir(name).exists(), name
    for name in ("app1", "app2", "app3"):
        assert not container_exists(inventory.container(name)), name
    assert json.loads((inventory.lock_dir("app2") / "info.json").read_text())["owner"] == "alice"


def test_a_failed_deploy_keeps_the_lock_it_took(images: Images, make_inventory: InventoryFactory) -> None:
    inventory = make_inventory(["web"])
    assert not run_playbook("deploy.yml", inventory.path, deploy_vars(images.sample["1.0.0"])).failed

    run = run_playbook("deploy.yml", inventory.path, deploy_vars(
        images.sample["3.0.0"], deploy_lock_acquire=True, deploy_lock_id="run-3", deploy_lock_owner="carol"))

    assert run.failed
    assert running_digest(inventory.container("web")) == images.sample["1.0.0"].digest
    assert json.loads((inventory.lock_dir("web") / "info.json").read_text())["lock_id"] == "run-3"


def test_hosts_of_earlier_batches_are_checked_again_after_the_last(images: Images, make_inventory: InventoryFactory) -> None:
    names = ["fleet1", "fleet2", "fleet3"]
    inventory = make_inventory(names)

    run = run_playbook("deploy.yml", inventory.path, deploy_vars(images.fleet["1.0.0"], deploy_serial=1))

    assert not run.failed, str(run)
    # The last batch (fleet3) was checked moments ago; the earlier ones again after it.
    rechecked = run.ran["docker_release : Start the health deadline clock"]  # the re-check's first task (check.yml)
    assert rechecked == ["fleet1", "fleet2"]
    assert all(run.hosts[name]["final_check"] is True for name in names)


def test_rollback_from_a_digest_leaves_hosts_on_other_releases_alone(images: Images, make_inventory: InventoryFactory) -> None:
    inventory = make_inventory(["app1", "app2"])
    old, new = images.fleet["1.0.0"], images.fleet["2.0.0"]
    first = run_playbook("deploy.yml", inventory.path, deploy_vars(old, deploy_serial="100%"))
    assert not first.failed, str(first)
    second = run_playbook("deploy.yml", inventory.path, deploy_vars(new, deploy_hosts="app1"))
    assert not second.failed, str(second)

    run = run_playbook("rollback.yml", inventory.path, {"rollback_from_digest": new.digest})

    assert not run.failed, str(run)
    assert running_digest(inventory.container("app1")) == old.digest
    assert running_digest(inventory.container("app2")) == old.digest
    assert run.hosts["app1"]["rolled_back"] is True
    assert run.hosts["app2"]["rolled_back"] is False
    assert inventory.record("app2")["previous"] is None
