"""The spool: records that could not be written are kept in order, privately and durably, and
appended later marked delayed, so the chain shows nothing is missing."""

from __future__ import annotations

import errno
import io
import stat
from pathlib import Path
from typing import Any

from coordinator.audit import AuditEvent, AuditLog
from coordinator.output import Output
from coordinator.redact import Redactor
from coordinator.spool import RESERVE_BYTES, Spool, SpoolingTrail


class FullDisk:
    """An audit trail whose appends fail as a full disk fails them."""

    def __init__(self, log: AuditLog) -> None:
        self.log = log
        self.full = True

    def append(self, event: AuditEvent, **fields: Any) -> Any:
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.log.path))
        return self.log.append(event, **fields)

    def records(self) -> Any:
        return self.log.records()

    def verify(self) -> Any:
        return self.log.verify()

    def head_hash(self) -> str | None:
        return self.log.head_hash()


def trail(tmp_path: Path) -> tuple[SpoolingTrail, FullDisk, io.StringIO]:
    err = io.StringIO()
    disk = FullDisk(AuditLog(tmp_path / "audit.jsonl"))
    return SpoolingTrail(disk, Spool(tmp_path), Output(io.StringIO(), err, redactor=Redactor())), disk, err


def test_spooled_records_are_private_and_kept_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.reserve()
    for index in range(3):
        spool.keep({"kind": "audit", "n": index})
    assert [entry["n"] for entry in spool.entries()] == [0, 1, 2]
    assert stat.S_IMODE(spool.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(spool.dir.stat().st_mode) == 0o700
    assert spool.path.stat().st_size == RESERVE_BYTES  # written into the reserve, not past it


def test_an_append_the_disk_refuses_is_spooled_and_said_so(tmp_path: Path) -> None:
    spooling, _disk, err = trail(tmp_path)
    assert spooling.append(AuditEvent.DEPLOY_FAILED, operator="ci", release_id="shop-1.0.0", outcome="failed",
                           data={"digest": "sha256:" + "b" * 64}) is None
    assert [entry["event"] for entry in spooling.spool.entries()] == ["deploy.failed"]
    assert "audit record deploy.failed could not be written (No space left on device" in err.getvalue()
    assert f"kept in {spooling.spool.path}: the next command appends it" in err.getvalue()


def test_once_space_returns_the_spool_goes_first_marked_delayed_and_the_chain_verifies(tmp_path: Path) -> None:
    spooling, disk, err = trail(tmp_path)
    disk.log.append(AuditEvent.RELEASE_STARTED, operator="ci", release_id="shop-1.0.0")
    spooling.append(AuditEvent.DEPLOY_FAILED, operator="ci", release_id="shop-1.0.0", outcome="failed")
    spooling.append(AuditEvent.ROLLBACK_COMPLETED, operator="ci", release_id="shop-1.0.0", outcome="rolled_back")
    kept_at = [entry["at"] for entry in spooling.spool.entries()]
    disk.full = False
    spooling.append(AuditEvent.LOCK_RELEASED, operator="ci", outcome="released")
    records = disk.log.records()
    assert [r.event.value for r in records] == ["release.started", "deploy.failed", "rollback.completed", "lock.released"]
    assert [r.data.get("delayed") for r in records[1:3]] == [{"original_time": at} for at in kept_at]
    assert "delayed" not in records[3].data
    assert disk.log.verify().ok and disk.log.verify().count == 4
    assert spooling.spool.entries() == []
    assert "appended 2 delayed record(s)" in err.getvalue()


def test_while_earlier_records_wait_a_new_one_waits_behind_them(tmp_path: Path) -> None:
    spooling, disk, _err = trail(tmp_path)
    spooling.append(AuditEvent.DEPLOY_FAILED, operator="ci")
    assert spooling.flush() is False  # still full
    spooling.append(AuditEvent.ROLLBACK_COMPLETED, operator="ci")
    assert [e["event"] for e in spooling.spool.entries()] == ["deploy.failed", "rollback.completed"]
    assert disk.log.records() == []


def test_a_line_torn_by_a_crash_is_skipped_and_the_next_starts_fresh(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.reserve()
    spool.keep({"n": 1})
    with open(spool.path, "r+b") as handle:
        content = handle.read().rstrip(b"\0")
        handle.seek(len(content))
        handle.write(b'{"n": 2, "cut')
    spool.keep({"n": 3})
    assert [entry["n"] for entry in spool.entries()] == [1, 3]


def test_an_append_with_nothing_waiting_never_reads_the_reserve(tmp_path: Path, monkeypatch: Any) -> None:
    from coordinator import spool as spool_module

    spooling, disk, _err = trail(tmp_path)
    spooling.spool.reserve()
    disk.full = False

    def no_read(fd: int) -> bytes:
        raise AssertionError("the whole spool file was read with nothing waiting in it")

    monkeypatch.setattr(spool_module, "_content", no_read)
    assert spooling.append(AuditEvent.VALIDATE_PASSED, operator="ci", outcome="passed") is not None
    assert not spooling.spool.pending()


def test_pending_follows_what_waits_and_a_torn_line_alone_is_cleared(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.reserve()
    assert not spool.pending()
    spool.keep({"kind": "audit", "n": 1})
    assert spool.pending()
    assert spool.drain(lambda entry: None) == 1
    assert not spool.pending()
    with open(spool.path, "r+b") as handle:  # a crash in the middle of a write
        handle.write(b'{"kind": "au')
    assert spool.pending()
    assert spool.drain(lambda entry: None) == 0
    assert not spool.pending() and spool.path.stat().st_size == RESERVE_BYTES
