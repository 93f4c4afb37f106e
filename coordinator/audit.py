"""The audit trail: an append-only, hash-chained JSON-lines log of every release action.

Each record carries the hash of the record before it, so deleting, reordering or editing
a line breaks the chain at a seq `verify` can name. The chain only proves integrity
relative to its head: the head hash is published elsewhere (in the forge release notes),
so rewriting the whole file is detectable too.

Durability and concurrency: every record is one `write` on a file opened O_APPEND and is
fsync'd before `append` returns; an exclusive `flock` on the log serializes writers from
any process. Existing bytes are never rewritten. A crash mid-write can only leave an
*unterminated* last line (each record and its newline go out in one write): `verify`
reports it as `torn_tail` (a crash, not tampering), and the next append starts on a fresh
line and records the torn line's sha256 in `recovered_torn_lines`, so the chain itself
vouches for the bytes it skips, which stay in the file as evidence; `verify` lists every
such recovery. A *complete* line (newline-terminated) that does not parse, is not a valid
record, or whose hash does not match its content was edited, not torn: `append` refuses
to build on it (AuditLogCorrupted, exit 14) until an operator restores the file, so an
edit can never be laundered into a "recovered crash".

Records never carry secrets: data keys that name one (token, password, secret) are refused.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any, NoReturn

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, field_serializer, field_validator

from coordinator.errors import AuditBroken
from coordinator.fsutil import fsync_dir

__all__ = ["AuditEvent", "AuditLog", "AuditLogCorrupted", "AuditRecord", "AuditVerification", "canonical_json",
           "describe_recovered_crashes", "record_hash", "utcnow"]

_SECRET_KEY_WORDS = ("token", "password", "secret")
_TAIL_CHUNK = 64 * 1024


def utcnow() -> datetime:
    return datetime.now(UTC)


class AuditEvent(str, Enum):
    """Everything the trail records; values are what appears in the file."""

    RELEASE_STARTED = "release.started"
    VALIDATE_PASSED = "validate.passed"
    VALIDATE_FAILED = "validate.failed"
    TAG_PUSHED = "tag.pushed"
    BUILD_COMPLETED = "build.completed"
    BUILD_FAILED = "build.failed"
    STAGE_DEPLOYED = "stage.deployed"
    STAGE_FAILED = "stage.failed"
    APPROVAL_RECORDED = "approval.recorded"
    APPROVAL_VOIDED = "approval.voided"
    DEPLOY_STARTED = "deploy.started"
    DEPLOY_VERIFIED = "deploy.verified"
    DEPLOY_FAILED = "deploy.failed"
    ROLLBACK_COMPLETED = "rollback.completed"
    ROLLBACK_FAILED = "rollback.failed"
    RELEASE_ANNOUNCED = "release.announced"
    ANNOUNCE_PENDING = "announce.pending"
    LOCK_ACQUIRED = "lock.acquired"
    LOCK_RELEASED = "lock.released"
    LOCK_TAKEN_OVER = "lock.taken_over"
    RELEASE_MARKED_BAD = "release.marked_bad"


def format_ts(value: datetime) -> str:
    """ISO 8601 in UTC with a `Z` and microseconds: one spelling, so hashes are stable."""
    return _as_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _as_utc(value: datetime) -> datetime:
    # A naive datetime from an injected clock is taken to be UTC already.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class AuditRecord(BaseModel):
    """One line of the trail. `hash` covers every other field in canonical JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int = Field(ge=1)
    ts: datetime
    event: AuditEvent
    operator: str
    release_id: str | None = None
    version: str | None = None
    environment: str | None = None
    outcome: str | None = None
    data: dict[str, JsonValue] = Field(default_factory=dict)
    recovered_torn_lines: list[str] | None = Field(
        None, description="sha256 of torn lines (crash leftovers) skipped just before this record."
    )
    prev_hash: str | None
    hash: str
    writer: str | None = Field(None, description="the database login that wrote it (team mode; set by the server's check)")

    @field_validator("ts")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return _as_utc(value)

    @field_serializer("ts")
    def _ts(self, value: datetime) -> str:
        return format_ts(value)

    def hashed_fields(self) -> dict[str, Any]:
        """The JSON object the hash is computed over (everything but `hash`)."""
        body = self.model_dump(mode="json", exclude={"hash"})
        if body.get("recovered_torn_lines") is None:
            # Absent unless a crash was recovered, so ordinary lines stay short.
            body.pop("recovered_torn_lines", None)
        if body.get("writer") is None:
            body.pop("writer", None)  # local records have none: their hashes stay as they were
        return body

    def to_line(self) -> str:
        return canonical_json({**self.hashed_fields(), "hash": self.hash})


def canonical_json(value: Any) -> str:
    """The one serialization hashes are computed over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_hash(fields: dict[str, Any]) -> str:
    """sha256 hex of the canonical JSON of a record's fields without `hash`."""
    body = {key: value for key, value in fields.items() if key != "hash"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def refuse_secret_keys(data: dict[str, Any], path: str = "data") -> None:
    """Raise ValueError if any key (at any depth) names a secret; fingerprints are allowed."""
    for key, value in data.items():
        lowered = str(key).lower()
        if any(word in lowered for word in _SECRET_KEY_WORDS) and not lowered.endswith("fingerprint"):
            raise ValueError(
                f"audit {path}.{key}: keys naming a token, password or secret are refused; "
                "record a fingerprint (e.g. key '<name>_fingerprint') instead of the value"
            )
        if isinstance(value, dict):
            refuse_secret_keys(value, f"{path}.{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    refuse_secret_keys(item, f"{path}.{key}[{index}]")


class AuditLogCorrupted(AuditBroken):
    """The log ends in an edited line (not a crash's torn tail): appending would hide the edit."""

    def __init__(self, path: Path, line_no: int, after_seq: int | None, reason: str) -> None:
        where = f"line {line_no}" + (f" (after seq {after_seq})" if after_seq is not None else " (before any record)")
        super().__init__(
            f"audit log {path} {where} is a complete line that {reason}: it was edited, not torn by a crash, "
            f"so nothing was appended; inspect it with `coordinator audit verify`, then restore {path} from a "
            "backup (or move it aside, kept as evidence, to start a new chain) and run the command again"
        )
        self.line_no = line_no
        self.after_seq = after_seq


@dataclass(frozen=True)
class AuditVerification:
    """What `verify` found. `ok` is False only for tampering; a torn tail alone is a crash."""

    ok: bool
    count: int
    first_bad_seq: int | None = None
    reason: str | None = None
    torn_tail: bool = False
    head_hash: str | None = None
    recovered_crashes: tuple[int, ...] = ()


def describe_recovered_crashes(log: AuditLog, result: AuditVerification) -> list[str]:
    """One line per crash tail an append recovered from: which record vouches for it, and
    the sha256 of the torn bytes, which stay in the log file as evidence."""
    if not result.recovered_crashes:
        return []
    by_seq = {record.seq: record for record in log.records()}
    described = []
    for seq in result.recovered_crashes:
        hashes = (by_seq[seq].recovered_torn_lines or []) if seq in by_seq else []
        shown = ", ".join(f"sha256 {digest[:16]}…" for digest in hashes)
        described.append(f"recovered crash tail: {len(hashes)} torn line(s) before seq {seq} discarded at append "
                         f"({shown}; the bytes are kept in {log.path})")
    return described


@dataclass(frozen=True)
class _Line:
    """One raw line of the file: its bytes (without the newline) and whether it ended in one."""

    raw: bytes
    terminated: bool


class AuditLog:
    """The trail at `path`. Safe to share between processes; every method opens the file anew."""

    def __init__(self, path: Path, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.path = Path(path)
        self._clock = clock

    # -- writing -----------------------------------------------------------------------

    def append(
        self,
        event: AuditEvent,
        *,
        operator: str,
        release_id: str | None = None,
        version: str | None = None,
        environment: str | None = None,
        outcome: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> AuditRecord:
        """Add one record durably and return it. Raises ValueError for secret-looking keys."""
        data = dict(data or {})
        refuse_secret_keys(data)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            last, torn, ends_with_newline = _scan_tail(fd, self.path)
            fields: dict[str, Any] = {
                "seq": (last.seq + 1) if last else 1,
                "ts": self._clock(),
                "event": AuditEvent(event),
                "operator": operator,
                "release_id": release_id,
                "version": version,
                "environment": environment,
                "outcome": outcome,
                "data": data,
                "recovered_torn_lines": [hashlib.sha256(raw).hexdigest() for raw in torn] or None,
                "prev_hash": last.hash if last else None,
                "hash": "",
            }
            draft = AuditRecord.model_validate(fields)
            record = draft.model_copy(update={"hash": record_hash(draft.hashed_fields())})
            line = record.to_line() + "\n"
            if not ends_with_newline:
                line = "\n" + line  # never extend a torn line: start a fresh one
            size = os.fstat(fd).st_size
            try:
                _write_all(fd, line.encode("utf-8"))
                os.fsync(fd)
            except OSError:
                _cut_back(fd, size)  # a full disk must not leave half a record behind
                raise
        finally:
            os.close(fd)  # closing releases the flock
        if created:
            fsync_dir(self.path.parent)
        return record

    # -- reading -----------------------------------------------------------------------

    def records(self) -> list[AuditRecord]:
        """Every readable record in order; torn or unparsable lines are skipped (see `verify`)."""
        records = []
        for line in self._lines():
            parsed = _parse(line.raw)
            if isinstance(parsed, AuditRecord):
                records.append(parsed)
        return records

    def head_hash(self) -> str | None:
        """Hash of the last record: publish it so a rewrite of the whole file shows."""
        if not self.path.exists():
            return None
        fd = os.open(self.path, os.O_RDONLY)
        try:
            last, _torn, _newline = _scan_tail(fd, self.path)
        finally:
            os.close(fd)
        return last.hash if last else None

    def verify(self) -> AuditVerification:
        """Walk the whole chain; name the first bad seq and why, or report it intact."""
        lines = list(self._lines())
        count = 0
        previous: AuditRecord | None = None
        pending_torn: list[str] = []  # sha256 of crash leftovers not yet acknowledged
        recovered: list[int] = []

        def next_seq() -> int:
            return previous.seq + 1 if previous else 1

        def bad(reason: str, seq: int | None = None) -> AuditVerification:
            return AuditVerification(ok=False, count=count, first_bad_seq=seq if seq is not None else next_seq(),
                                     reason=reason, head_hash=previous.hash if previous else None,
                                     recovered_crashes=tuple(recovered))

        first_pending = 0  # line number of the oldest unacknowledged unparsable line
        for index, line in enumerate(lines):
            parsed = _parse(line.raw)
            if isinstance(parsed, _Torn):
                if index == len(lines) - 1 and not line.terminated and not pending_torn:
                    return AuditVerification(ok=True, count=count, torn_tail=True,
                                             head_hash=previous.hash if previous else None,
                                             recovered_crashes=tuple(recovered))
                first_pending = first_pending or index + 1
                pending_torn.append(hashlib.sha256(line.raw).hexdigest())
                continue
            if isinstance(parsed, _Invalid):
                return bad(f"line {index + 1} is an invalid record: {parsed.reason}")
            record = parsed
            acknowledged = record.recovered_torn_lines or []
            if acknowledged != pending_torn:
                if pending_torn:
                    return bad(f"line {first_pending} before seq {record.seq} is not JSON and no record acknowledges "
                               "it as a crash tail")
                return bad("recovered_torn_lines names lines that are not in the file", record.seq)
            first_pending = 0
            if acknowledged:
                recovered.append(record.seq)
                pending_torn = []
            if record.seq != next_seq():
                return bad(f"seq gap: expected {next_seq()}, found {record.seq}")
            expected_prev = previous.hash if previous else None
            if record.prev_hash != expected_prev:
                return bad(f"prev_hash mismatch: expected {expected_prev}, found {record.prev_hash}", record.seq)
            if record_hash(json.loads(line.raw)) != record.hash:
                return bad("hash mismatch: the record was changed after it was written", record.seq)
            previous = record
            count += 1
        if pending_torn:
            return bad(f"line {first_pending} is a complete line that is not JSON: an edit, not a crash "
                       "(a crash leaves only an unterminated last line)")
        return AuditVerification(ok=True, count=count, head_hash=previous.hash if previous else None,
                                 recovered_crashes=tuple(recovered))

    def _lines(self) -> Iterator[_Line]:
        if not self.path.exists():
            return
        content = self.path.read_bytes()
        if not content:
            return
        parts = content.split(b"\n")
        last_terminated = parts[-1] == b""
        if last_terminated:
            parts.pop()
        for index, raw in enumerate(parts):
            yield _Line(raw=raw, terminated=last_terminated or index < len(parts) - 1)


@dataclass(frozen=True)
class _Torn:
    """A line that is not JSON at all: what a crash mid-write leaves (a prefix of a record)."""

    reason: str


@dataclass(frozen=True)
class _Invalid:
    """Well-formed JSON that is not a valid record: never a crash, always an edit."""

    reason: str


def _parse(raw: bytes) -> AuditRecord | _Torn | _Invalid:
    try:
        fields = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        # Every proper prefix of a JSON object is itself invalid JSON, so torn lines land here.
        return _Torn(f"not JSON ({exc.__class__.__name__})")
    if not isinstance(fields, dict):
        return _Invalid("not a JSON object")
    try:
        return AuditRecord.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return _Invalid(f"field {where}: {first['msg']}")


def _scan_tail(fd: int, path: Path) -> tuple[AuditRecord | None, list[bytes], bool]:
    """Read backwards from the end until the last valid record is found, and vouch for it.

    Returns that record, the torn lines after it (crash leftovers, oldest first) and
    whether the file ends in a newline. Reads only the tail, so appends stay cheap on a
    long log. Leftovers are a crash only when the file ends without a newline (a write
    was cut); a complete last line that is not a record, or a last record whose hash does
    not match its content or does not chain onto the record before it, is an edit:
    AuditLogCorrupted, so nothing is ever chained onto it.
    """
    size = os.fstat(fd).st_size
    if size == 0:
        return None, [], True
    ends_with_newline = os.pread(fd, 1, size - 1) == b"\n"
    chunk = _TAIL_CHUNK
    while True:
        start = max(0, size - chunk)
        data = os.pread(fd, size - start, start)
        parts = data.split(b"\n")
        if ends_with_newline:
            parts.pop()
        # The first part may be cut mid-line unless we read from the start of the file.
        complete = parts if start == 0 else parts[1:]
        leftovers: list[bytes] = []
        for index in range(len(complete) - 1, -1, -1):
            raw = complete[index]
            parsed = _parse(raw)
            if isinstance(parsed, AuditRecord):
                if leftovers and ends_with_newline:
                    _corrupted(fd, path, parsed.seq, "is not a valid record (not JSON)")
                previous = _parse(complete[index - 1]) if index > 0 else None
                _check_link(fd, path, raw, parsed, previous if isinstance(previous, AuditRecord) else None,
                            from_end=len(leftovers))
                return parsed, list(reversed(leftovers)), ends_with_newline
            if isinstance(parsed, _Invalid):
                _corrupted(fd, path, None, f"is not a valid record ({parsed.reason})", from_end=len(leftovers))
            leftovers.append(raw)
        if start == 0:
            if leftovers and ends_with_newline:
                _corrupted(fd, path, None, "is not a valid record (not JSON)")
            return None, list(reversed(leftovers)), ends_with_newline
        chunk *= 4


def _check_link(fd: int, path: Path, raw: bytes, record: AuditRecord, previous: AuditRecord | None, *,
                from_end: int) -> None:
    """The last record must be unchanged and follow the one before it, or nothing chains onto it."""
    if record_hash(json.loads(raw)) != record.hash:
        _corrupted(fd, path, None, f"holds seq {record.seq} with a hash that does not match its content",
                   from_end=from_end)
    if previous is not None and (record.prev_hash != previous.hash or record.seq != previous.seq + 1):
        _corrupted(fd, path, previous.seq, f"holds seq {record.seq}, which does not chain onto seq {previous.seq}",
                   from_end=from_end)


def _corrupted(fd: int, path: Path, after_seq: int | None, reason: str, *, from_end: int = 0) -> NoReturn:
    """Raise AuditLogCorrupted for the last line (or the one `from_end` lines before it).

    Only on this error path is the whole file read, to name the line by number; `after_seq`
    is the last record before the bad line when the caller knows it.
    """
    content = os.pread(fd, os.fstat(fd).st_size, 0)
    lines = content.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    bad_index = len(lines) - 1 - from_end
    if after_seq is None:
        for raw in reversed(lines[:bad_index]):
            earlier = _parse(raw)
            if isinstance(earlier, AuditRecord):
                after_seq = earlier.seq
                break
    raise AuditLogCorrupted(path, bad_index + 1, after_seq, reason)


def _cut_back(fd: int, size: int) -> None:
    """Undo a partial append (under the flock): the spool keeps the record instead."""
    try:
        os.ftruncate(fd, size)
    except OSError:
        pass  # what stays is an unterminated line: a torn tail, recovered like a crash


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
