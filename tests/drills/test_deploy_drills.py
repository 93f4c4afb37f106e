"""Deploy-side failure drills: each failure class through the coordinator CLI on the real world.

Each drill asserts what the operator sees: the exit code, the one-line error naming the real
cause, the escalation received by the chat sink (or that none was sent), the lock state after
(`coordinator lock status --json`), the audit records (`coordinator audit show --json`) and what
runs in staging and production after (`docker inspect`). README "Troubleshooting" and "Exit
codes" describe the same outcomes.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from coordinator.errors import ExitCode
from tests.sandbox.coordinator_config import IMAGE, PRODUCTION_URL, STAGING_URL
from tests.sandbox.forge_seed import wait_for_green
from tests.drills.conftest import (
    RegistrySwitch,
    audit_events,
    closed_port,
    configure,
    container_exists,
    empty_staging,
    escalations,
    host_record,
    inventory_copy,
    lock_status,
    one_line_error,
    plant_lock,
    push_variant,
    release_to_production,
    running_digest,
    ssh_host_vars,
    to_production_gate,
    variant_at_the_gate,
)
from tests.integration.conftest import ReleaseWorld
from tests.integration.strategies import StrategyWatch, ansible_strategy  # noqa: F401 (fixture)

pytestmark = pytest.mark.world

PROD = "sample-prod1"
STAGING = "sample-staging"


# Every audit record of 1.1.0 whose production deploy fails and is rolled back, oldest first
# (past a staging without hosts, which takes no lock and so records none): the same under either ansible.strategy.
FAILED_PROMOTION_EVENTS: list[tuple[str, str | None, str | None]] = [
    ("release.started", None, "started"), ("validate.passed", None, "passed"), ("tag.pushed", None, "pushed"),
    ("build.completed", None, "success"), ("stage.deployed", "staging", "passed"), ("approval.recorded", "production", "approved"),
    ("deploy.started", "production", "started"), ("lock.acquired", "production", "acquired"),
    ("lock.released", "production", "released"), ("deploy.failed", "production", "failed"),
    ("rollback.completed", "production", "rolled_back"),
]


def events_of(rw: ReleaseWorld, version: str) -> list[tuple[str, str | None, str | None]]:
    """(event, environment, outcome) of the audit records of release `version`, oldest first."""
    return [(e["event"], e.get("environment"), e.get("outcome")) for e in audit_events(rw)
            if e.get("version") == version or e.get("release_id") == f"sample-{version}"]


def assert_free(rw: ReleaseWorld, environment: str) -> None:
    hosts = lock_status(rw, environment)
    assert hosts and not any(info.get("held") for info in hosts.values()), hosts


def broken_release_in_production(rw: ReleaseWorld, tmp_path: Path, variant: str,
                                 **production: object) -> subprocess.CompletedProcess:
    """1.0.0 everywhere, then 1.1.0 (`variant`) past a staging that cannot catch it into production."""
    variant_at_the_gate(rw, tmp_path, variant, **production)
    return rw.coordinator("resume")


def assert_rolled_back_to_1_0_0(rw: ReleaseWorld, result: subprocess.CompletedProcess, good_digest: str, cause: str) -> None:
    """Exit 7 naming `cause`, one ROLLED BACK escalation naming it, lock free, 1.0.0 serving and verified."""
    assert result.returncode == ExitCode.ROLLED_BACK, result.stdout + result.stderr
    error = one_line_error(result)
    assert cause in error and "rolled back to 1.0.0" in error, error
    assert "ROLLBACK FAILED" not in result.stderr and "rollback failed" not in result.stderr.lower()
    [page] = escalations(rw)
    assert "ROLLED BACK v1.1.0 on production" in page and cause in page, page
    assert "ROLLBACK FAILED" not in page
    assert_free(rw, "production")
    assert ("deploy.failed", "production", "failed") in events_of(rw, "1.1.0")
    assert ("rollback.completed", "production", "rolled_back") in events_of(rw, "1.1.0")
    assert running_digest(PROD) == good_digest
    assert httpx.get(f"{PRODUCTION_URL}/version").text.strip() == "1.0.0"
    record = host_record(PROD)
    assert record["current"]["version"] == "1.0.0" and record["current"]["verified"] is True, record
    assert record["previous"]["version"] == "1.1.0" and record["previous"]["bad"] is True, record


# Broken images in production: deploy.yml restores the previous release and checks *it*.

def test_broken_health_is_rolled_back_and_named(release_world: ReleaseWorld, tmp_path: Path) -> None:
    rw = release_world
    result = broken_release_in_production(rw, tmp_path, "broken-health")
    assert_rolled_back_to_1_0_0(rw, result, host_record(PROD)["current"]["digest"], "/health answered 404")


def test_an_exiting_container_is_rolled_back_and_named(release_world: ReleaseWorld, tmp_path: Path,
                                                      ansible_strategy: StrategyWatch) -> None:  # noqa: F811
    rw = release_world
    host = inventory_copy(tmp_path, "production", docker_release_restart_policy="no")
    result = broken_release_in_production(rw, tmp_path, "exits", **host)
    assert_rolled_back_to_1_0_0(rw, result, host_record(PROD)["current"]["digest"], "has exited (exit code 1")
    assert events_of(rw, "1.1.0") == FAILED_PROMOTION_EVENTS, "\n".join(map(str, events_of(rw, "1.1.0")))
    ansible_strategy.assert_ran()


def test_a_crash_loop_is_rolled_back_and_named(release_world: ReleaseWorld, tmp_path: Path) -> None:
    rw = release_world
    result = broken_release_in_production(rw, tmp_path, "exits")  # restart policy unless-stopped: it loops
    assert_rolled_back_to_1_0_0(rw, result, host_record(PROD)["current"]["digest"], "is restart-looping")


def test_a_wrong_version_is_rolled_back_and_named(release_world: ReleaseWorld, tmp_path: Path) -> None:
    rw = release_world
    result = broken_release_in_production(rw, tmp_path, "wrong-version")
    assert_rolled_back_to_1_0_0(rw, result, host_record(PROD)["current"]["digest"],
                                "/version says '0.0.0-wrong', expected '1.1.0'")


def test_broken_health_caught_on_staging_restores_a_verified_release(release_world: ReleaseWorld) -> None:
    rw = release_world
    configure(rw)
    release_to_production(rw, "1.0.0")
    good = running_digest(STAGING)
    push_variant(rw, "broken-health", "1.1.0")

    result = rw.coordinator("release", "1.1.0")

    assert result.returncode == ExitCode.DEPLOY_FAILED, result.stdout + result.stderr
    error = one_line_error(result)
    assert "/health answered 404" in error and "staging rolled back to 1.0.0" in error, error
    assert "production untouched" in error
    assert escalations(rw) == []  # production untouched: nothing to page about
    assert_free(rw, "staging")
    assert ("stage.failed", "staging", "failed") in events_of(rw, "1.1.0")
    assert running_digest(STAGING) == good
    record = host_record(STAGING)
    assert record["current"]["version"] == "1.0.0" and record["current"]["verified"] is True, record
    assert host_record(PROD)["current"]["version"] == "1.0.0"


# The deploy itself fails: pull, library, SSH, lock.

def forget_local_image(reference: str) -> None:
    """Remove every name the local engine has for the image `reference` names (untag, no force:
    a build-cache parent may not be deleted), so `reference` is no longer found locally."""
    names = subprocess.run(["docker", "image", "inspect", "--format", "{{json .RepoTags}} {{json .RepoDigests}}", reference],
                           capture_output=True, text=True, check=True).stdout.split()
    for name in [n for part in names for n in json.loads(part)]:
        subprocess.run(["docker", "image", "rm", name], capture_output=True, check=False)
    gone = subprocess.run(["docker", "image", "inspect", reference], capture_output=True, check=False)
    assert gone.returncode != 0, f"{reference} is still known to the local engine"


def test_registry_down_at_pull_names_the_registry_and_keeps_the_old_container(
        release_world: ReleaseWorld, tmp_path: Path, registry_switch: RegistrySwitch) -> None:
    rw = release_world
    variant_at_the_gate(rw, tmp_path, "good")
    good = running_digest(PROD)  # still 1.0.0: the gate changes nothing in production
    new_digest = [e for e in audit_events(rw) if e["event"] == "build.completed" and e["version"] == "1.1.0"][0]["data"]["digest"]
    registry_switch.stop()
    forget_local_image(f"{IMAGE}@{new_digest}")  # so the deploy must pull it

    result = rw.coordinator("resume")

    assert result.returncode == ExitCode.ROLLED_BACK, result.stdout + result.stderr
    error = one_line_error(result)
    assert "could not pull or start sample-prod1" in error and "connection refused" in error.lower(), error
    assert "the old container keeps serving 1.0.0" in error, error
    assert "mismatch" not in error.lower() and "does not exist" not in error
    [page] = escalations(rw)
    assert "ROLLED BACK v1.1.0 on production" in page and "connection refused" in page.lower(), page
    assert_free(rw, "production")
    assert ("rollback.completed", "production", "rolled_back") in events_of(rw, "1.1.0")
    assert running_digest(PROD) == good
    assert httpx.get(f"{PRODUCTION_URL}/version").text.strip() == "1.0.0"


def test_a_host_python_without_any_library_deploys(release_world: ReleaseWorld, tmp_path: Path) -> None:
    """The deploy needs Python 3 and a Docker engine on the host, nothing else (no requests, no Docker SDK)."""
    rw = release_world
    venv = tmp_path / "bare-venv"
    subprocess.run(["python3", "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    bare = subprocess.run([str(venv / "bin" / "python"), "-c", "import requests"], capture_output=True, timeout=60)
    assert bare.returncode != 0  # the host's Python really has no requests
    configure(rw, staging=inventory_copy(tmp_path, "staging", ansible_python_interpreter=str(venv / "bin" / "python")))

    result = rw.coordinator("release", "1.0.0")

    assert result.returncode == ExitCode.AWAITING_APPROVAL, result.stdout + result.stderr
    assert ("stage.deployed", "staging", "passed") in events_of(rw, "1.0.0")
    assert httpx.get(f"{STAGING_URL}/version").text.strip() == "1.0.0"
    assert_free(rw, "staging")


def test_a_host_whose_docker_engine_does_not_answer_is_named_before_anything_changes(
    release_world: ReleaseWorld, tmp_path: Path
) -> None:
    rw = release_world
    missing = tmp_path / "no-docker.sock"
    configure(rw, staging=inventory_copy(tmp_path, "staging", docker_release_docker_socket=str(missing)))

    result = rw.coordinator("release", "1.0.0")

    assert result.returncode == ExitCode.HOST_NOT_READY, result.stdout + result.stderr
    error = one_line_error(result)
    assert "sample-staging answered but cannot run the deploy" in error, error
    assert f"the Docker engine at {missing} does not answer" in error, error
    assert "locked" not in error.split("(")[0] and "ROLLBACK" not in error
    assert escalations(rw) == []
    assert_free(rw, "staging")
    assert ("stage.failed", "staging", "host_not_ready") in events_of(rw, "1.0.0")
    assert not container_exists(STAGING) and not container_exists(PROD)
    assert not (Path("/var/lib/coordinator") / STAGING / "release.json").exists()  # nothing recorded either


def test_ssh_refused_is_named_as_unreachable_not_as_a_held_lock(release_world: ReleaseWorld, tmp_path: Path) -> None:
    rw = release_world
    port = closed_port()
    configure(rw, staging=inventory_copy(tmp_path, "staging", **ssh_host_vars(port)))

    result = rw.coordinator("release", "1.0.0")

    assert result.returncode == ExitCode.HOST_UNREACHABLE, result.stdout + result.stderr
    error = one_line_error(result)
    assert "cannot reach sample-staging over SSH" in error and "Connection refused" in error, error
    assert f"port {port}" in error and "check SSH" in error, error
    assert "is locked" not in error and "lock release" not in error
    assert escalations(rw) == []
    assert ("stage.failed", "staging", "host_unreachable") in events_of(rw, "1.0.0")
    status = rw.coordinator("lock", "status", "staging", "--json")  # the same host, so the same fact
    assert status.returncode == ExitCode.HOST_UNREACHABLE, status.stdout + status.stderr
    assert "cannot reach sample-staging over SSH" in one_line_error(status)
    assert not container_exists(STAGING) and not container_exists(PROD)


def test_a_held_lock_names_its_holder_and_stays(release_world: ReleaseWorld,
                                                ansible_strategy: StrategyWatch) -> None:  # noqa: F811
    rw = release_world
    configure(rw)
    plant_lock(STAGING, owner="ops-alice", expires_epoch=time.time() + 1800)

    result = rw.coordinator("release", "1.0.0")

    assert result.returncode == ExitCode.LOCKED, result.stdout + result.stderr
    error = one_line_error(result)
    assert "staging is locked" in error and "ops-alice" in error and "drill-lock-1" in error, error
    assert "lock release staging" in error
    assert escalations(rw) == []
    [held] = lock_status(rw, "staging").values()
    assert held["held"] is True and held["owner"] == "ops-alice" and held["lock_id"] == "drill-lock-1"
    assert ("stage.failed", "staging", "locked") in events_of(rw, "1.0.0")
    assert not container_exists(STAGING) and not container_exists(PROD)
    ansible_strategy.assert_ran()


def test_an_expired_lock_is_taken_over_escalated_and_audited(release_world: ReleaseWorld) -> None:
    rw = release_world
    configure(rw)
    plant_lock(STAGING, owner="ops-alice", expires_epoch=time.time() - 60)

    result = rw.coordinator("release", "1.0.0")

    assert result.returncode == ExitCode.AWAITING_APPROVAL, result.stdout + result.stderr
    [page] = escalations(rw)
    assert "expired deploy lock taken over on staging" in page and "ops-alice" in page, page
    assert_free(rw, "staging")  # taken over, then given back after the deploy passed
    assert ("lock.taken_over", "staging", "taken_over") in events_of(rw, "1.0.0")
    assert ("stage.deployed", "staging", "passed") in events_of(rw, "1.0.0")
    assert host_record(STAGING)["current"]["version"] == "1.0.0"
    assert not container_exists(PROD)


# Nothing to roll back to.

def test_a_failed_first_release_removes_the_container_and_releases_the_lock(
        release_world: ReleaseWorld, tmp_path: Path) -> None:
    rw = release_world
    configure(rw, staging=empty_staging(tmp_path))
    push_variant(rw, "exits", "1.0.1")
    to_production_gate(rw, "1.0.1")

    result = rw.coordinator("resume")

    assert result.returncode == ExitCode.FIRST_RELEASE_FAILED, result.stdout + result.stderr
    error = one_line_error(result)
    assert "first release of v1.0.1 to production failed" in error, error
    assert "has exited" in error or "is restart-looping" in error, error
    assert "nothing to restore, the broken container was removed from prod1" in error, error
    assert "the deploy lock was released" in error and "ROLLBACK FAILED" not in result.stderr
    [page] = escalations(rw)
    assert "FIRST RELEASE FAILED v1.0.1 on production" in page and "nothing to restore" in page, page
    assert "ROLLBACK FAILED" not in page
    assert_free(rw, "production")
    events = events_of(rw, "1.0.1")
    assert ("deploy.failed", "production", "first_release_failed") in events
    assert ("lock.released", "production", "released") in events
    assert not container_exists(PROD)
    record = host_record(PROD)
    assert record["current"] is None and record["previous"]["bad"] is True, record
    status = rw.coordinator("status", "--json")
    assert '"status": "first_release_failed"' in status.stdout
    # The broken version is marked bad: neither resumed nor released again by accident.
    assert rw.coordinator("resume").returncode == ExitCode.USAGE
    again = rw.coordinator("release", "1.0.1")
    assert again.returncode == ExitCode.USAGE and "marked bad" in again.stderr, again.stderr


def test_approve_shows_what_production_ran_at_the_gate_without_asking_the_hosts_again(
        release_world: ReleaseWorld, tmp_path: Path) -> None:
    """`release` reads production once for the gate summary (beside the staging deploy); `approve`
    shows that reading with its time instead of a second status.yml: here production cannot be
    reached any more when `approve` runs, and the summary still says what ran at the gate."""
    from tests.sandbox import sample

    rw = release_world
    configure(rw)
    release_to_production(rw, "1.0.0")
    sample.bump(rw.checkout, "1.1.0", "### Changed\n- Faster start-up.")
    wait_for_green(rw.forge, rw.head())
    gate = rw.coordinator("release", "1.1.0")
    assert gate.returncode == ExitCode.AWAITING_APPROVAL, gate.stdout + gate.stderr
    assert "live there now     1.0.0\n" in gate.stdout, gate.stdout
    configure(rw, production=inventory_copy(tmp_path, "production", **ssh_host_vars(closed_port())))

    approved = rw.coordinator("approve", "1.1.0", operator="ops-lead")

    assert approved.returncode == ExitCode.OK, approved.stdout + approved.stderr
    shown = next(line for line in approved.stdout.splitlines() if "live there now" in line)
    assert re.fullmatch(r"  live there now     1\.0\.0 \(read from the hosts at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, "
                        r"when the release reached the gate\)", shown), shown
    assert "from release records" not in approved.stdout
