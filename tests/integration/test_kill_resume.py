"""kill -9 at every stage boundary and inside the production deploy, then resume.

One release is driven through the whole matrix: each run is killed at the next crash point
(`COORDINATOR_FAILPOINT`, a SIGKILL the process sends itself), and the following `resume`
must pick up from there. The end state must equal an uninterrupted run's.
"""

from __future__ import annotations

import json
import signal

import pytest

from coordinator.errors import ExitCode
from tests.sandbox.forge_seed import REPO_API, create_milestone_with_issues
from tests.integration.conftest import ReleaseWorld, running_digest

pytestmark = pytest.mark.world

BEFORE_GATE = [
    "before:validate", "after:validate", "before:tag", "after:tag", "before:build", "after:build",
    "before:stage", "during:sample-1.0.0-staging-deploy@2", "after:stage", "before:approve",
]
AFTER_GATE = [
    "after:approve", "before:promote", "during:sample-1.0.0-production-deploy@3", "after:promote",
    "before:verify", "after:verify", "before:announce", "after:announce.forge_release",
    "after:announce.notification", "after:announce.milestone",
]


def killed(result) -> bool:
    return result.returncode == -signal.SIGKILL


def test_release_killed_at_every_boundary_resumes_to_the_same_end_state(release_world: ReleaseWorld):
    rw = release_world
    create_milestone_with_issues(rw.forge, "1.0.0", ["Serve /health"])
    first = rw.coordinator("release", "1.0.0", env={"COORDINATOR_FAILPOINT": BEFORE_GATE[0]})
    assert killed(first), first.stderr
    for point in BEFORE_GATE[1:]:
        result = rw.coordinator("resume", env={"COORDINATOR_FAILPOINT": point})
        assert killed(result), f"{point}: {result.returncode} {result.stderr}"
    assert rw.coordinator("resume").returncode == ExitCode.AWAITING_APPROVAL
    assert rw.coordinator("approve", "1.0.0", operator="ops-lead").returncode == 0
    for point in AFTER_GATE:
        result = rw.coordinator("resume", env={"COORDINATOR_FAILPOINT": point})
        assert killed(result), f"{point}: {result.returncode} {result.stdout} {result.stderr}"
    final = rw.coordinator("resume", "1.0.0")
    assert final.returncode == 0, final.stdout + final.stderr

    record = json.loads((rw.state_dir / "releases" / "sample-1.0.0.json").read_text())
    assert record["status"] == "completed"
    assert [tag["name"] for tag in rw.forge.get(f"{REPO_API}/tags").json()] == ["v1.0.0"]
    releases = rw.forge.get(f"{REPO_API}/releases").json()
    assert [release["tag_name"] for release in releases] == ["v1.0.0"]
    assert len([m for m in rw.chat.messages if m["path"] == "/announce"]) == 1
    assert running_digest("sample-prod1") == record["build"]["digest"]
    assert rw.coordinator("audit", "verify").returncode == 0

    # The chain survived every kill; now an edit of one record must be caught and named.
    audit_log = rw.state_dir / "audit.jsonl"
    lines = audit_log.read_text().splitlines()
    lines[2] = lines[2].replace('"release-manager"', '"someone-else"', 1)
    audit_log.write_text("\n".join(lines) + "\n")
    tampered = rw.coordinator("audit", "verify")
    assert tampered.returncode == ExitCode.AUDIT_BROKEN
    assert "seq 3" in tampered.stderr
