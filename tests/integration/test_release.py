"""The walking skeleton on the real local world: whole releases, gate, rollback, failures."""

from __future__ import annotations

import json

import httpx
import pytest

from coordinator.errors import ExitCode
from tests.sandbox.coordinator_config import PRODUCTION_URL, STAGING_URL
from tests.sandbox.forge_seed import (REPO_API, create_milestone_with_issues, ensure_label, open_issue, register_person,
                                 set_commit_status, wait_for_green)
from tests.integration.conftest import ReleaseWorld, running_digest

pytestmark = pytest.mark.world


def release_to_production(rw: ReleaseWorld, version: str) -> None:
    first = rw.coordinator("release", version)
    assert first.returncode == ExitCode.AWAITING_APPROVAL, first.stdout + first.stderr
    approved = rw.coordinator("approve", version, operator="ops-lead")
    assert approved.returncode == 0, approved.stderr
    resumed = rw.coordinator("resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr


def record(rw: ReleaseWorld, version: str) -> dict:
    return json.loads((rw.state_dir / "releases" / f"sample-{version}.json").read_text())


def test_happy_path_releases_through_staging_gate_and_production(release_world: ReleaseWorld):
    rw = release_world
    milestone_issues = ["Serve /health", "Serve /version"]
    create_milestone_with_issues(rw.forge, "1.0.0", milestone_issues)

    release_to_production(rw, "1.0.0")

    saved = record(rw, "1.0.0")
    digest = saved["build"]["digest"]
    assert saved["status"] == "completed"
    assert running_digest("sample-prod1") == digest
    assert running_digest("sample-staging") == digest
    assert httpx.get(f"{PRODUCTION_URL}/version").text.strip() == "1.0.0"
    assert httpx.get(f"{STAGING_URL}/health").status_code == 200
    forge_release = rw.forge.get(f"{REPO_API}/releases/tags/v1.0.0").json()
    assert "Audit chain head" in forge_release["body"]
    open_left = rw.forge.get(f"{REPO_API}/issues", params={"state": "open", "type": "issues"}).json()
    assert not [issue for issue in open_left if issue["title"] in milestone_issues]
    assert any(message["path"] == "/announce" for message in rw.chat.messages)
    assert rw.coordinator("audit", "verify").returncode == 0
    approval = saved["approvals"][0]
    assert approval["operator"] == "ops-lead" and approval["digest"] == digest


def test_second_release_records_the_previous_version(release_world: ReleaseWorld):
    from tests.sandbox import sample

    rw = release_world
    release_to_production(rw, "1.0.0")
    sample.bump(rw.checkout, "1.1.0", "### Changed\n- Faster start-up.")
    wait_for_green(rw.forge, rw.head())
    release_to_production(rw, "1.1.0")
    hosts = record(rw, "1.1.0")["deployments"]["production"]["hosts"]
    assert hosts["prod1"]["version"] == "1.1.0"
    assert hosts["prod1"]["previous_version"] == "1.0.0"


def test_resume_without_approval_stays_at_the_gate(release_world: ReleaseWorld):
    rw = release_world
    assert rw.coordinator("release", "1.0.0").returncode == ExitCode.AWAITING_APPROVAL
    again = rw.coordinator("resume")
    assert again.returncode == ExitCode.AWAITING_APPROVAL
    assert "coordinator approve 1.0.0" in again.stderr
    status = json.loads(rw.coordinator("status", "--json").stdout)
    assert status[0]["status"] == "awaiting_approval"


def test_every_validation_failure_is_reported_at_once(release_world: ReleaseWorld):
    rw = release_world
    (rw.checkout / "VERSION").write_text("0.9.0\n")
    label = ensure_label(rw.forge)
    open_issue(rw.forge, "Database migration corrupts orders", [label])
    set_commit_status(rw.forge, rw.head(), "failure", context="ci/lint")
    result = rw.coordinator("release", "2.0.0")
    assert result.returncode == ExitCode.CHECK_FAILED
    output = result.stdout + result.stderr
    for expected in ("version file", "changelog", "ci status", "release blockers", "clean work tree"):
        assert f"FAIL {expected}" in output, output
    assert rw.forge.get(f"{REPO_API}/tags").json() == []


@pytest.mark.parametrize("breakage, check", [
    ("version", "version file"),
    ("changelog", "changelog"),
    ("ci-failure", "ci status"),
    ("no-ci", "ci status"),
    ("blocker", "release blockers"),
    ("tests", "tests"),
    ("unpushed", "pushed"),
])
def test_each_validation_failure_stops_the_release_before_the_tag(release_world: ReleaseWorld, breakage, check):
    import subprocess

    rw = release_world
    version = "1.0.0"
    git = ["git", "-C", str(rw.checkout)]
    if breakage == "version":
        (rw.checkout / "VERSION").write_text("1.0.1\n")
        subprocess.run([*git, "commit", "-qam", "bump"], check=True)
        subprocess.run([*git, "push", "-q", "origin", "main"], check=True)
        wait_for_green(rw.forge, rw.head())
    elif breakage == "changelog":
        version = "1.0.1"
        (rw.checkout / "VERSION").write_text("1.0.1\n")
        subprocess.run([*git, "commit", "-qam", "bump"], check=True)
        subprocess.run([*git, "push", "-q", "origin", "main"], check=True)
        wait_for_green(rw.forge, rw.head())
    elif breakage == "ci-failure":
        set_commit_status(rw.forge, rw.head(), "failure", context="ci/e2e")
    elif breakage == "no-ci":
        rw.forge.post(f"{REPO_API.split('/api/v1')[0]}/_standin/config", json={"branch_ci": False}).raise_for_status()
        (rw.checkout / "README.md").write_text("changed\n")
        subprocess.run([*git, "commit", "-qam", "docs"], check=True)
        subprocess.run([*git, "push", "-q", "origin", "main"], check=True)
    elif breakage == "blocker":
        open_issue(rw.forge, "Payments broken", [ensure_label(rw.forge)])
    elif breakage == "tests":
        (rw.checkout / "tests" / "run.sh").write_text("#!/bin/sh\necho 'test_checkout FAILED' >&2\nexit 1\n")
        subprocess.run([*git, "commit", "-qam", "break tests"], check=True)
        subprocess.run([*git, "push", "-q", "origin", "main"], check=True)
        wait_for_green(rw.forge, rw.head())
    elif breakage == "unpushed":
        (rw.checkout / "README.md").write_text("local only\n")
        subprocess.run([*git, "commit", "-qam", "local"], check=True)
    result = rw.coordinator("release", version)
    assert result.returncode == ExitCode.CHECK_FAILED, result.stdout + result.stderr
    assert f"FAIL {check}" in result.stderr
    assert rw.forge.get(f"{REPO_API}/tags").json() == []


def test_failed_ci_run_stops_the_release_with_its_url(release_world: ReleaseWorld):
    rw = release_world
    rw.forge.post(f"{REPO_API.split('/api/v1')[0]}/_standin/config", json={"fail_next_run": True}).raise_for_status()
    result = rw.coordinator("release", "1.0.0")
    assert result.returncode == ExitCode.BUILD_FAILED, result.stdout + result.stderr
    assert "/acme/sample/actions/runs/" in result.stderr


def test_broken_production_image_is_rolled_back_to_the_previous_digest(release_world: ReleaseWorld, tmp_path):
    """An image that passes staging but exits in production: production returns to 1.0.0."""
    from tests.sandbox import sample

    rw = release_world
    release_to_production(rw, "1.0.0")
    good_digest = running_digest("sample-prod1")

    staging_that_cannot_catch_it(rw, tmp_path)

    sample.make_variant(rw.checkout, "exits")
    sample.bump(rw.checkout, "1.1.0", "### Changed\n- Broken on purpose.")
    wait_for_green(rw.forge, rw.head())
    assert rw.coordinator("release", "1.1.0").returncode == ExitCode.AWAITING_APPROVAL
    assert rw.coordinator("approve", "1.1.0", operator="ops-lead").returncode == 0
    result = rw.coordinator("resume")

    assert result.returncode == ExitCode.ROLLED_BACK, result.stdout + result.stderr
    assert "rolled back" in result.stderr.lower()
    assert running_digest("sample-prod1") == good_digest
    assert httpx.get(f"{PRODUCTION_URL}/version").text.strip() == "1.0.0"
    assert any(message["path"] == "/escalate" for message in rw.chat.messages)
    again = rw.coordinator("release", "1.1.0")
    assert again.returncode == ExitCode.USAGE and "marked bad" in again.stderr


def staging_that_cannot_catch_it(rw: ReleaseWorld, tmp_path) -> None:
    """Staging with no hosts and a smoke test that always passes (prod differs from staging)."""
    from tests.sandbox.coordinator_config import sandbox_config

    empty = tmp_path / "inventory-empty"
    empty.mkdir(exist_ok=True)
    (empty / "hosts.yml").write_text("all:\n  hosts: {}\n")
    environments = sandbox_config(rw.world_dir, rw.state_dir)["environments"]
    environments["staging"] = {**environments["staging"], "inventory": str(empty), "smoke_command": ["true"],
                               "allow_no_hosts": True}
    rw.rewrite_config(environments=environments,
                      notify={"announce": [rw.chat.url("json", "announce")], "escalate": [rw.chat.url("json", "escalate")]})


def test_a_failed_first_release_has_its_own_exit_code_and_releases_the_lock(release_world: ReleaseWorld, tmp_path):
    """The very first release is broken: nothing to roll back to, so the broken container is
    removed and the lock released (exit 17); tests/drills covers what the operator sees in full."""
    from tests.sandbox import sample

    rw = release_world
    staging_that_cannot_catch_it(rw, tmp_path)
    sample.make_variant(rw.checkout, "exits")
    import subprocess

    subprocess.run(["git", "-C", str(rw.checkout), "commit", "-qam", "broken"], check=True)
    subprocess.run(["git", "-C", str(rw.checkout), "push", "-q", "origin", "main"], check=True)
    wait_for_green(rw.forge, rw.head())
    assert rw.coordinator("release", "1.0.0").returncode == ExitCode.AWAITING_APPROVAL
    assert rw.coordinator("approve", "1.0.0", operator="ops-lead").returncode == 0
    result = rw.coordinator("resume")
    assert result.returncode == ExitCode.FIRST_RELEASE_FAILED, result.stdout + result.stderr
    assert "nothing to restore" in result.stderr and "the deploy lock was released" in result.stderr
    assert record(rw, "1.0.0")["status"] == "first_release_failed"  # marked bad: never resumed
    events = json.loads(rw.coordinator("audit", "show", "--json").stdout)
    # Safety before bookkeeping: the lock is given back first, the failure is written after.
    assert [e["event"] for e in events[-2:]] == ["lock.released", "deploy.failed"]
    # The staging that allows no hosts ran on nobody: no lock was taken there, so none was given back.
    assert [e["event"] for e in events if e.get("environment") == "staging" and e["event"].startswith("lock.")] == []
    assert [e["event"] for e in events if e["event"].startswith("lock.")] == ["lock.acquired", "lock.released"]


def test_two_approvers_are_needed_when_configured(release_world: ReleaseWorld):
    rw = release_world
    # Two approvals need two verified identities (README "Team mode"): each approver's own forge token.
    tokens = {login: register_person(login) for login in ("ops-lead", "security")}
    rw.rewrite_config(approvals={"required": 2, "identity": "forge"},
                      notify={"announce": [rw.chat.url("json", "announce")], "escalate": [rw.chat.url("json", "escalate")]})
    as_ops_lead, as_security = ({"COORDINATOR_FORGE_TOKEN": tokens[login]} for login in ("ops-lead", "security"))
    assert rw.coordinator("release", "1.0.0").returncode == ExitCode.AWAITING_APPROVAL
    assert rw.coordinator("approve", "1.0.0", env=as_ops_lead).returncode == 0
    still = rw.coordinator("resume")
    assert still.returncode == ExitCode.AWAITING_APPROVAL and "awaits 1 approval" in still.stderr
    assert rw.coordinator("approve", "1.0.0", operator="security", env=as_ops_lead).returncode == ExitCode.IDENTITY_REFUSED
    assert rw.coordinator("approve", "1.0.0", env=as_security).returncode == 0
    assert rw.coordinator("resume").returncode == 0
