"""Records that could not be written when they happened, kept until they can be.

Safety never waits on bookkeeping: a rollback, a page or a lock release goes ahead when the
audit trail or the release record cannot be written (a full disk, a stopped database).
What could not be written is kept here, under the state dir, one JSON line per record in
the order it happened, each line fsynced before the command goes on, 0600 in a 0700
directory. The next command that can write appends them to the chain in that order, each
marked delayed with its original time, so `audit verify` shows nothing is missing.

A full disk is the case this exists for, so the file keeps a reserve: it is created
with `RESERVE_BYTES` allocated (zeros after the last line) and records are written into
that space, which a full filesystem cannot take away.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coordinator.errors import StateBackendError
from coordinator.fsutil import fsync_dir

if TYPE_CHECKING:
    from coordinator.audit import AuditEvent, AuditRecord, AuditVerification
    from coordinator.output import Output
    from coordinator.release import Release
    from coordinator.state import AuditTrail

RESERVE_BYTES = 256 * 1024
UNWRITABLE: tuple[type[Exception], ...] = (OSError, StateBackendError)
"""What keeps a record from being written now but not later (a refusal, e.g. a broken chain, is not one)."""


def _utcnow() -> datetime:
    from coordinator.release import utcnow

    return utcnow()


class Spool:
    """The pending records of one state dir (`<state_dir>/spool/pending.jsonl`)."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = Path(state_dir) / "spool"
        self.path = self.dir / "pending.jsonl"

    def reserve(self) -> None:
        """Make sure the file exists with its reserve allocated; quietly a no-op when space is short."""
        try:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return
        try:
            if os.fstat(fd).st_size < RESERVE_BYTES:
                os.posix_fallocate(fd, 0, RESERVE_BYTES)
                os.fsync(fd)
                fsync_dir(self.dir)
        except OSError:
            pass  # no room for the reserve now: keep() still tries, and says so if it cannot
        finally:
            os.close(fd)

    @contextmanager
    def _locked(self) -> Iterator[int]:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)

    def keep(self, entry: dict[str, Any]) -> None:
        """Append one entry durably (fsynced before return); raises OSError when it cannot."""
        line = (json.dumps(entry, sort_keys=True, separators=(",", ":"), default=str) + "\n").encode()
        with self._locked() as fd:
            content = _content(fd)
            if content and not content.endswith(b"\n"):
                line = b"\n" + line  # a write cut by a crash: start a fresh line
            _pwrite_all(fd, line, len(content))
            os.fsync(fd)

    def pending(self) -> bool:
        """Whether anything waits, from the file's first byte: entries are written from offset 0
        and a drained file is zeros, so every audit append need not read the whole reserve."""
        try:
            with open(self.path, "rb") as handle:
                return handle.read(1) not in (b"", b"\0")
        except FileNotFoundError:
            return False

    def entries(self) -> list[dict[str, Any]]:
        """The pending entries, oldest first (a line torn by a crash is skipped)."""
        if not self.pending():
            return []
        with self._locked() as fd:
            return _parse(_content(fd))

    def drain(self, write: Callable[[dict[str, Any]], None]) -> int:
        """Hand each pending entry to `write` in order, dropping it once written; stops at the first
        that cannot be written (it and the rest stay). Returns how many were written."""
        if not self.pending():
            return 0
        written = 0
        with self._locked() as fd:
            content = _content(fd)
            pending = _parse(content)
            if content and not pending:
                _rewrite(fd, [])  # only a line torn by a crash: nothing to append, and `pending()` stays cheap
            for entry in pending:
                write(entry)
                written += 1
                _rewrite(fd, pending[written:])  # one at a time: a crash here never writes one twice
        return written


def _content(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    return os.pread(fd, size, 0).rstrip(b"\0")


def _parse(content: bytes) -> list[dict[str, Any]]:
    entries = []
    for raw in content.splitlines():
        try:
            entry = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue  # torn by a crash mid-write: the command that wrote it had not gone on yet
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def _rewrite(fd: int, entries: list[dict[str, Any]]) -> None:
    """Rewrite in place (no new file needs space): the remaining lines, then zeros over the rest."""
    body = b"".join((json.dumps(e, sort_keys=True, separators=(",", ":"), default=str) + "\n").encode() for e in entries)
    size = os.fstat(fd).st_size
    _pwrite_all(fd, body + b"\0" * max(0, size - len(body)), 0)
    os.fsync(fd)


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


class SpoolingTrail:
    """The audit trail with the spool in front: an append that cannot be written now is kept,
    said so, and appended (marked delayed) before anything newer, so the order holds."""

    def __init__(self, trail: "AuditTrail", spool: Spool, out: "Output") -> None:
        self.trail = trail
        self.spool = spool
        self.out = out

    def append(self, event: "AuditEvent", *, operator: str, release_id: str | None = None, version: str | None = None,
               environment: str | None = None, outcome: str | None = None,
               data: dict[str, Any] | None = None) -> "AuditRecord | None":
        from coordinator.audit import AuditEvent, refuse_secret_keys

        fields: dict[str, Any] = {"operator": operator, "release_id": release_id, "version": version,
                                  "environment": environment, "outcome": outcome, "data": dict(data or {})}
        refuse_secret_keys(fields["data"])
        # What is kept if the record has to wait: it carries the time it happened.
        waiting = {"kind": "audit", "event": AuditEvent(event).value, "at": _utcnow().isoformat(), **fields}
        if not self.flush():
            self._keep(waiting, "earlier records are still waiting")
            return None
        try:
            return self.trail.append(event, **fields)
        except UNWRITABLE as exc:
            self._keep(waiting, _reason(exc))
            return None

    def keep_release(self, release: "Release", exc: Exception) -> None:
        """The release record could not be saved: keep it to be saved by the next command."""
        self._keep({"kind": "release", "at": _utcnow().isoformat(), "body": release.model_dump(mode="json")},
                   _reason(exc), what=f"the record of {release.id}")

    def _keep(self, entry: dict[str, Any], why: str, *, what: str | None = None) -> None:
        what = what or f"audit record {entry.get('event')}"
        try:
            self.spool.keep(entry)
        except OSError as exc:
            # Nowhere left to keep it: the operator's terminal is the last copy.
            self.out.warn(f"{what} could not be written ({why}) nor kept in {self.spool.path} ({exc.strerror}); "
                          f"copy it: {json.dumps(entry, sort_keys=True, default=str)}")
            return
        self.out.warn(f"{what} could not be written ({why}); kept in {self.spool.path}: the next command appends it")

    def flush(self, save_release: Callable[["Release"], None] | None = None) -> bool:
        """Write every pending record (audit records marked delayed); True when none is left."""
        if not self.spool.pending():
            return True
        try:
            written = self.spool.drain(lambda entry: self._write(entry, save_release))
        except UNWRITABLE:
            return False
        if written:
            self.out.warn(f"appended {written} delayed record(s) from {self.spool.path}")
        return True

    def _write(self, entry: dict[str, Any], save_release: Callable[["Release"], None] | None) -> None:
        from coordinator.audit import AuditEvent
        from coordinator.release_read import read_release

        if entry.get("kind") == "release":
            if save_release is None:
                raise StateBackendError("no store to save a delayed release record to")
            save_release(read_release(entry["body"], f"{entry['body'].get('id', '?')} (spool {self.spool.path})"))
            return
        data = {**(entry.get("data") or {}), "delayed": {"original_time": entry["at"]}}
        self.trail.append(AuditEvent(entry["event"]), operator=entry["operator"], release_id=entry.get("release_id"),
                          version=entry.get("version"), environment=entry.get("environment"),
                          outcome=entry.get("outcome"), data=data)

    def records(self) -> list["AuditRecord"]:
        return self.trail.records()

    def verify(self) -> "AuditVerification":
        return self.trail.verify()

    def head_hash(self) -> str | None:
        return self.trail.head_hash()


def _reason(exc: Exception) -> str:
    message = getattr(exc, "message", None)
    if message:
        return str(message)
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}" + (f": {exc.filename}" if exc.filename else "")
    return exc.__class__.__name__
