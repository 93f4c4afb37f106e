"""Failure drills for the forge side, through the CLI on the real local world.

Each drill breaks one thing the way it breaks for a real team (a label nobody created,
a forge that answers 500 for a moment, a revoked token, a second process pushing the
same tag) and asserts what the operator sees: exit code, the one error line naming the
cause, the audit records, that nobody was paged, and what is left on the remote.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from coordinator.errors import ExitCode
from tests.sandbox.coordinator_config import FORGE_URL
from tests.drills.forge_helpers import (
    audit_events,
    audit_records,
    configure_standin,
    deploy_locks_free,
    error_lines,
    forge_section,
    git,
    standin_config,
    the_error,
)
from tests.integration.conftest import ReleaseWorld, release_world, world  # noqa: F401 (fixtures)

pytestmark = pytest.mark.world

STATUS_PATH = r"/repos/acme/sample/commits/[0-9a-f]{40}/status$"


def escalations(rw: ReleaseWorld) -> list[dict]:
    return [message for message in rw.chat.messages if message["path"] == "/escalate"]


def remote_tag_commit(rw: ReleaseWorld, tag: str) -> str | None:
    out = git("-C", str(rw.checkout), "ls-remote", "--tags", "origin", f"refs/tags/{tag}^{{}}")
    return out.split()[0] if out else None


# -- defect 5: a missing blocker label is configuration, not an outage ---------------------


def test_missing_blocker_label_is_a_failed_check_naming_the_label_and_the_fix(release_world: ReleaseWorld):
    rw = release_world
    rw.rewrite_config(forge=forge_section(rw, blocker_label="ship-stopper"))
    result = rw.coordinator("release", "1.0.0")
    assert result.returncode == ExitCode.CHECK_FAILED, result.stdout + result.stderr
    error = the_error(result)
    assert error == (
        "1 pre-release check(s) failed: release blockers: label 'ship-stopper' does not exist in acme/sample: "
        f"create it at {FORGE_URL}/acme/sample/labels (New Label, name ship-stopper), or set forge.blocker_label "
        "to the label your team uses for blockers"
    )
    assert "unreachable" not in result.stderr
    records = audit_records(rw)
    assert [r["event"] for r in records] == ["release.started", "validate.failed"]
    assert any("label 'ship-stopper' does not exist" in problem for problem in records[-1]["data"]["problems"])
    assert remote_tag_commit(rw, "v1.0.0") is None
    assert escalations(rw) == []
    assert deploy_locks_free(rw)


# -- defect 6: a passing 500 on a read is retried ---------------------------------------------


def release_with_500s(rw: ReleaseWorld, count: int):
    """`release 1.0.0` while the forge answers the next `count` commit-status reads with 500."""
    configure_standin(rw, fail_500_count=count, fail_500_path=STATUS_PATH)
    return rw.coordinator("release", "1.0.0")


def test_a_few_http_500s_on_the_commit_status_check_are_retried_and_the_release_goes_on(release_world: ReleaseWorld):
    rw = release_world
    result = release_with_500s(rw, 3)
    assert result.returncode == ExitCode.AWAITING_APPROVAL, result.stdout + result.stderr
    assert standin_config(rw)["fail_500_count"] == 0  # the forge did answer 500 three times
    assert "pass ci status" in result.stderr + result.stdout
    events = audit_events(rw)
    assert events[:3] == ["release.started", "validate.passed", "tag.pushed"]
    assert "stage.deployed" in events
    assert escalations(rw) == []
    assert deploy_locks_free(rw)


def test_a_forge_that_keeps_answering_500_is_reported_after_bounded_retries(release_world: ReleaseWorld):
    rw = release_world
    result = release_with_500s(rw, 50)
    assert result.returncode == ExitCode.FORGE_UNAVAILABLE, result.stdout + result.stderr
    error = the_error(result)
    assert re.fullmatch(
        r"forge unreachable during validation: forge GET /api/v1/repos/acme/sample/commits/[0-9a-f]{40}/status "
        r"answered HTTP 500: stand-in: injected internal error \(fail_500_count\)", error), error
    assert standin_config(rw)["fail_500_count"] == 50 - 4  # RetryPolicy.attempts, then it gives up
    assert audit_events(rw) == ["release.started"]
    assert remote_tag_commit(rw, "v1.0.0") is None
    assert escalations(rw) == []
    assert deploy_locks_free(rw)


# -- defect 7: a wrong token --------------------------------------------------------------------


def test_a_wrong_token_file_is_named_in_one_line_and_never_shown(release_world: ReleaseWorld, monkeypatch, tmp_path):
    rw = release_world
    monkeypatch.delenv("COORDINATOR_FORGE_TOKEN", raising=False)
    wrong = "revoked-0123456789abcdef"
    token_file = tmp_path / "old-forge-token"
    token_file.write_text(wrong + "\n")
    token_file.chmod(stat.S_IRUSR | stat.S_IWUSR)
    rw.rewrite_config(forge=forge_section(rw, token_file=str(token_file)))
    result = rw.coordinator("release", "1.0.0")
    assert result.returncode == ExitCode.USAGE, result.stdout + result.stderr
    error = the_error(result)
    assert error.startswith(f"forge refused the token from forge.token_file {token_file} (HTTP 401 on GET /api/v1/")
    assert error.endswith("it is wrong, expired or revoked; put a valid API token there and run the command again")
    assert wrong not in result.stdout + result.stderr
    assert audit_events(rw) == ["release.started"]
    assert wrong not in (rw.state_dir / "audit.jsonl").read_text()
    assert remote_tag_commit(rw, "v1.0.0") is None
    assert escalations(rw) == []
    assert deploy_locks_free(rw)


def test_a_wrong_token_variable_is_named_by_its_variable(release_world: ReleaseWorld):
    rw = release_world
    wrong = "revoked-fedcba9876543210"
    result = rw.coordinator("release", "1.0.0", env={"COORDINATOR_FORGE_TOKEN": wrong})
    assert result.returncode == ExitCode.USAGE, result.stdout + result.stderr
    assert the_error(result).startswith(
        "forge refused the token from environment variable COORDINATOR_FORGE_TOKEN (HTTP 401 on GET /api/v1/")
    assert wrong not in result.stdout + result.stderr
    assert len(error_lines(result)) == 1
    assert audit_events(rw) == ["release.started"]
    assert escalations(rw) == []


# -- defect 8: another process pushes the same tag a moment before us ---------------------


def race_tag_push(rw: ReleaseWorld, tag: str, target: str) -> Path:
    """Install a one-shot pre-push hook that pushes `tag` at `target` to the bare remote
    first: git has already read the remote's refs, so our push is then rejected, exactly as
    when another coordinator wins the race between the probe and the push."""
    bare = git("-C", str(rw.checkout), "remote", "get-url", "origin")
    hook = rw.checkout / ".git" / "hooks" / "pre-push"
    hook.write_text(
        "#!/bin/sh\n"
        'rm -f "$0"\n'
        f"git --git-dir='{bare}' -c user.name=racer -c user.email=racer@example.invalid "
        f"tag -a -m 'pushed by another process' {tag} {target}\n"
    )
    hook.chmod(0o755)
    return hook


def test_a_tag_pushed_by_another_process_at_the_same_commit_is_accepted(release_world: ReleaseWorld):
    rw = release_world
    head = rw.head()
    hook = race_tag_push(rw, "v1.0.0", head)
    result = rw.coordinator("release", "1.0.0")
    assert not hook.exists(), "the race did not happen: the pre-push hook never ran"
    assert result.returncode == ExitCode.AWAITING_APPROVAL, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert (f"tag v1.0.0 was pushed to origin at {head[:12]} by another process a moment before ours "
            "(push rejected): the same commit, so the tag stands") in output
    assert remote_tag_commit(rw, "v1.0.0") == head
    remote_object = git("-C", str(rw.checkout), "ls-remote", "--tags", "origin", "refs/tags/v1.0.0").split()[0]
    assert git("-C", str(rw.checkout), "rev-parse", "refs/tags/v1.0.0") == remote_object  # checkout agrees
    records = audit_records(rw)
    assert [r["event"] for r in records][:3] == ["release.started", "validate.passed", "tag.pushed"]
    assert records[2]["data"]["commit"] == head
    assert escalations(rw) == []
    assert deploy_locks_free(rw)


def test_a_tag_pushed_by_another_process_at_another_commit_is_the_documented_hard_error(release_world: ReleaseWorld):
    rw = release_world
    head = rw.head()
    bare = git("-C", str(rw.checkout), "remote", "get-url", "origin")
    other = git("--git-dir", bare, "-c", "user.name=racer", "-c", "user.email=racer@example.invalid",
                "commit-tree", f"{head}^{{tree}}", "-p", head, "-m", "released from other code")
    hook = race_tag_push(rw, "v1.0.0", other)
    result = rw.coordinator("release", "1.0.0")
    assert not hook.exists(), "the race did not happen: the pre-push hook never ran"
    assert result.returncode == ExitCode.CHECK_FAILED, result.stdout + result.stderr
    assert the_error(result) == (
        f"1 pre-release check(s) failed: tag v1.0.0 exists on origin at {other[:12]} while this release was "
        f"pushing it, not at the release commit {head[:12]}: release a new version"
    )
    assert "git push" not in result.stderr
    assert remote_tag_commit(rw, "v1.0.0") == other  # never overwritten
    assert audit_events(rw) == ["release.started", "validate.passed"]
    status = rw.coordinator("status", "--json")
    assert '"failed"' in status.stdout
    assert escalations(rw) == []
    assert deploy_locks_free(rw)


@pytest.fixture(autouse=True)
def _no_leftover_hook(release_world: ReleaseWorld):
    yield
    hook = release_world.checkout / ".git" / "hooks" / "pre-push"
    if hook.exists():
        os.unlink(hook)
