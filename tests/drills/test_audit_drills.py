"""Failure drills for the audit trail, through the CLI: an edit is never laundered into a
"recovered crash", and a real crash tail is recovered and reported."""

from __future__ import annotations

import hashlib
import json

import pytest

from coordinator.errors import ExitCode
from tests.drills.forge_helpers import audit_events, audit_file, audit_records, deploy_locks_free, the_error
from tests.integration.conftest import ReleaseWorld, release_world, world  # noqa: F401 (fixtures)

pytestmark = pytest.mark.world

TORN = b'{"data":{},"environment":null,"event":"release.sta'


def failing_release(rw: ReleaseWorld, version: str):
    """A release whose validation fails fast (VERSION says 1.0.0): it appends two records."""
    return rw.coordinator("release", version)


def test_a_tampered_last_record_stops_every_append_until_the_log_is_restored(release_world: ReleaseWorld):
    rw = release_world
    assert failing_release(rw, "9.9.9").returncode == ExitCode.CHECK_FAILED
    assert audit_events(rw) == ["release.started", "validate.failed"]
    assert rw.coordinator("audit", "verify").returncode == 0
    path = audit_file(rw)
    backup = path.read_bytes()
    lines = backup.decode().splitlines()
    path.write_text(lines[0] + "\n" + "validate passed, honest\n")  # a complete line: an edit, not a crash
    tampered = path.read_bytes()

    verify = rw.coordinator("audit", "verify")
    assert verify.returncode == ExitCode.AUDIT_BROKEN
    assert the_error(verify).startswith("audit chain broken at seq 2: line 2 is a complete line that is not JSON")

    appended = failing_release(rw, "9.9.8")
    assert appended.returncode == ExitCode.AUDIT_BROKEN, appended.stdout + appended.stderr
    assert the_error(appended) == (
        f"audit log {path} line 2 (after seq 1) is a complete line that is not a valid record (not JSON): it was "
        "edited, not torn by a crash, so nothing was appended; inspect it with `coordinator audit verify`, then "
        f"restore {path} from a backup (or move it aside, kept as evidence, to start a new chain) and run the "
        "command again"
    )
    assert path.read_bytes() == tampered  # nothing appended, nothing rewritten
    assert rw.coordinator("audit", "verify").returncode == ExitCode.AUDIT_BROKEN
    assert "9.9.8" not in rw.coordinator("status", "--json").stdout  # no release was opened either
    assert deploy_locks_free(rw) and rw.chat.messages == []

    path.write_bytes(backup)  # the operator's way out: restore the log
    assert failing_release(rw, "9.9.8").returncode == ExitCode.CHECK_FAILED
    assert rw.coordinator("audit", "verify").returncode == 0
    assert [r["seq"] for r in audit_records(rw)] == [1, 2, 3, 4]


def test_a_crash_tail_is_recovered_kept_and_reported_by_verify(release_world: ReleaseWorld):
    rw = release_world
    assert failing_release(rw, "9.9.9").returncode == ExitCode.CHECK_FAILED
    path = audit_file(rw)
    with path.open("ab") as handle:
        handle.write(TORN)  # a crash mid-write: a prefix of a record and no newline

    verify = rw.coordinator("audit", "verify")
    assert verify.returncode == 0
    assert "(last line torn by a crash; ignored)" in verify.stdout + verify.stderr

    assert failing_release(rw, "9.9.8").returncode == ExitCode.CHECK_FAILED
    records = audit_records(rw)
    assert [r["seq"] for r in records] == [1, 2, 3, 4]
    digest = hashlib.sha256(TORN).hexdigest()
    assert records[2]["recovered_torn_lines"] == [digest]
    assert TORN + b"\n" in path.read_bytes()  # the torn bytes are kept, on their own line

    verify = rw.coordinator("audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    output = verify.stdout + verify.stderr
    assert "audit chain intact: 4 record(s)" in output
    assert (f"recovered crash tail: 1 torn line(s) before seq 3 discarded at append (sha256 {digest[:16]}…; "
            f"the bytes are kept in {path})") in output
    assert json.loads(path.read_bytes().splitlines()[-1])["seq"] == 4
