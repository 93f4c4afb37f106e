"""deploy.yml run with exactly the extra vars the coordinator passes (coordinator.stages.deploy.deploy_vars).

Extra vars outrank every variable a play sets. When the coordinator passed the health
expectations of the new release, the check of the release deploy.yml restores after a
failed batch expected the new one, and a rollback that worked was reported as failed.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from coordinator.audit import AuditEvent
from coordinator.config import EnvironmentConfig
from coordinator.context import new_run_id
from coordinator.release import BuildInfo, Release
from coordinator.stages.deploy import deploy_vars
from tests.ansible.ansible_world import Image
from tests.ansible.conftest import Images, Inventory, InventoryFactory, run_playbook, running_digest


def coordinator_vars(image: Image, inventory: Inventory, health_timeout_s: float = 6,
                     verified: Image | None = None) -> dict[str, Any]:
    """What the coordinator passes to deploy.yml for `image` when it promotes to this environment,
    built by its own code from a real record; `verified` is the release the audit trail shows
    verified there last (deploy.yml's own rescue goes back to it, `coordinator.known_good`)."""
    environment = EnvironmentConfig(inventory=inventory.path, url="http://127.0.0.1:9",  # type: ignore[arg-type]
                                    health_timeout_s=health_timeout_s, health_interval_s=0.5)
    trail = [] if verified is None else [SimpleNamespace(
        event=AuditEvent.DEPLOY_VERIFIED, environment="test", version=verified.version, data={"digest": verified.digest})]
    ctx = SimpleNamespace(config=SimpleNamespace(environments={"test": environment}, promote_to="test"),
                          operator="pytest", run_id=new_run_id(), force=False,
                          audit=SimpleNamespace(records=lambda: trail))
    release = Release(id=f"sample-{image.version}", project="sample", version=image.version, tag=f"v{image.version}",
                      operator="pytest", build=BuildInfo(run_id="1", run_url="http://127.0.0.1:9/run/1",
                                                         conclusion="success", image=image.name, digest=image.digest))
    return deploy_vars(cast(Any, ctx), release, "test")


def test_a_rollback_inside_deploy_checks_the_restored_release(images: Images, make_inventory: InventoryFactory) -> None:
    inventory = make_inventory(["web"])
    good, broken = images.sample["1.0.0"], images.sample["4.0.0"]
    assert not run_playbook("deploy.yml", inventory.path, coordinator_vars(good, inventory)).failed

    run = run_playbook("deploy.yml", inventory.path, coordinator_vars(broken, inventory, verified=good))

    assert run.failed
    host = run.hosts["web"]
    assert host["rolled_back"] is True and host["healthy"] is True, host
    assert host["version"] == "1.0.0" and host["running_digest"] == good.digest
    assert "/health answered 404" in host["error"], host
    assert "ROLLBACK FAILED" not in run.output
    assert "Hosts rolled back to their previous release: web" in run.output
    record = inventory.record("web")
    assert record["current"]["digest"] == good.digest and record["current"]["verified"] is True
    assert record["previous"]["digest"] == broken.digest and record["previous"]["bad"] is True
    assert running_digest(inventory.container("web")) == good.digest
    assert inventory.lock_dir("web").exists()  # kept on failure: the coordinator's rollback runs under it


def test_deploy_refuses_health_expectations_as_extra_vars(images: Images, make_inventory: InventoryFactory) -> None:
    inventory = make_inventory(["web"])
    extra = {**coordinator_vars(images.sample["1.0.0"], inventory), "release_health_expected_version": "9.9.9"}
    run = run_playbook("deploy.yml", inventory.path, extra)
    assert run.failed
    assert "do not pass release_health_expected_version" in run.output
    assert not (inventory.state_root / inventory.container("web")).exists()  # nothing was deployed


def test_a_failed_first_release_is_removed_and_recorded_bad(images: Images, make_inventory: InventoryFactory) -> None:
    from tests.ansible.conftest import container_exists

    inventory = make_inventory(["web"])
    broken = images.sample["3.0.0"]  # exits at once

    run = run_playbook("deploy.yml", inventory.path, coordinator_vars(broken, inventory))

    assert run.failed
    host = run.hosts["web"]
    assert host["first_release"] is True and host["removed"] is True, host
    assert "is restart-looping" in host["error"], host  # the real cause, from the health check
    assert "nothing to restore, the broken container was removed" in run.output
    assert "ROLLBACK FAILED" not in run.output
    assert not container_exists(inventory.container("web"))
    record = inventory.record("web")
    assert record["current"] is None
    assert record["previous"]["digest"] == broken.digest and record["previous"]["bad"] is True


def test_a_failed_pull_names_the_registry_error_and_keeps_the_old_container(
        images: Images, make_inventory: InventoryFactory) -> None:
    inventory = make_inventory(["web"])
    good = images.sample["1.0.0"]
    assert not run_playbook("deploy.yml", inventory.path, coordinator_vars(good, inventory)).failed
    missing = Image(name=good.name, tag="v9.9.9", version="9.9.9", digest="sha256:" + "0" * 64, variant="good")

    run = run_playbook("deploy.yml", inventory.path, coordinator_vars(missing, inventory))

    assert run.failed
    error = run.hosts["web"]["error"]
    assert "could not pull or start" in error and "manifest unknown" in error.lower(), error
    assert "the old container keeps serving 1.0.0" in error, error
    assert running_digest(inventory.container("web")) == good.digest
    assert run.hosts["web"]["rolled_back"] is True
