"""The audit chain in PostgreSQL: the same records and hashes as the local `AuditLog`,
one chain for every machine that shares the database.

The database hashes each record itself: a row's `line` is the record's hashed body (the
canonical JSON of every field but the hash; for an honest client the same bytes the
local log hashes) and its `hash` column is sha256 of exactly that line, computed by the
`append_audit` function, which also checks that the line links to the head, names the
login as its `writer`, and is a record `verify` accepts. Appends from any number of
machines queue on that function's transaction lock. The application role cannot
INSERT, UPDATE or DELETE rows directly.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import psycopg
from pydantic import ValidationError

from coordinator.audit import AuditEvent, AuditRecord, AuditVerification, canonical_json, refuse_secret_keys, utcnow
from coordinator.errors import AuditBroken
from coordinator.state.gate_sql import refusal, session_login
from coordinator.state.postgres import Database
from coordinator.state.schema import SCHEMA
from coordinator.state.schema_v2 import CHAIN_LOCK


class PostgresAudit:
    """The shared chain; methods match `AuditLog` (`coordinator.state.AuditTrail`)."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self._clock = clock

    def append(self, event: AuditEvent, *, operator: str, release_id: str | None = None, version: str | None = None,
               environment: str | None = None, outcome: str | None = None,
               data: dict[str, Any] | None = None) -> AuditRecord:
        data = dict(data or {})
        refuse_secret_keys(data)
        with self.db.mapped_errors():  # a lost server is StateBackendError: the spool keeps the record
            return self._append_locked(event, operator=operator, release_id=release_id, version=version,
                                       environment=environment, outcome=outcome, data=data)

    def _append_locked(self, event: AuditEvent, *, operator: str, release_id: str | None, version: str | None,
                       environment: str | None, outcome: str | None, data: dict[str, Any]) -> AuditRecord:
        writer = session_login(self.db)
        conn = self.db.conn
        try:
            with conn.transaction():  # the same lock append_audit takes: concurrent appends queue, never collide
                conn.execute(f"SELECT pg_advisory_xact_lock(hashtextextended('{CHAIN_LOCK}', 0))".encode())
                head = conn.execute(f"SELECT seq, hash FROM {SCHEMA}.audit_records ORDER BY seq DESC LIMIT 1".encode()
                                    ).fetchone()
                draft = AuditRecord.model_validate({
                    "seq": head[0] + 1 if head else 1, "ts": self._clock(), "event": AuditEvent(event),
                    "operator": operator, "release_id": release_id, "version": version, "environment": environment,
                    "outcome": outcome, "data": data, "prev_hash": head[1] if head else None, "hash": "",
                    "writer": writer,
                })
                body = canonical_json(draft.hashed_fields())
                row = conn.execute(f"SELECT {SCHEMA}.append_audit(%s)".encode(), (body,)).fetchone()
        except psycopg.Error as exc:
            what = f"audit record {draft.seq}" if "draft" in locals() else "an audit record"
            if (refused := refusal(exc, AuditBroken, what)) is not None:
                raise refused from None
            raise
        assert row is not None
        return draft.model_copy(update={"hash": str(row[0])})

    def _lines(self) -> list[tuple[int, str, str | None, str]]:
        return [(int(seq), hash_, prev, line) for seq, hash_, prev, line in self.db.execute(
            f"SELECT seq, hash, prev_hash, line FROM {SCHEMA}.audit_records ORDER BY seq").fetchall()]

    def records(self) -> list[AuditRecord]:
        return [AuditRecord.model_validate({**json.loads(line), "hash": hash_}) for _seq, hash_, _prev, line in self._lines()]

    def head_hash(self) -> str | None:
        row = self.db.execute(f"SELECT hash FROM {SCHEMA}.audit_records ORDER BY seq DESC LIMIT 1").fetchone()
        return str(row[0]) if row else None

    def verify(self) -> AuditVerification:
        """Recompute every hash from the stored line; name the first record that does not hold."""
        previous: AuditRecord | None = None
        count = 0
        for seq, stored_hash, stored_prev, line in self._lines():
            expected_seq = previous.seq + 1 if previous else 1
            head = previous.hash if previous else None

            def bad(reason: str, at: int = seq) -> AuditVerification:
                return AuditVerification(ok=False, count=count, first_bad_seq=at, reason=reason, head_hash=head)

            try:
                fields = json.loads(line)
                record = AuditRecord.model_validate({**fields, "hash": stored_hash})
            except (json.JSONDecodeError, ValidationError, TypeError) as exc:
                return bad(f"invalid record: {exc.__class__.__name__}")
            if record.seq != seq or seq != expected_seq:
                return bad(f"seq gap: expected {expected_seq}, found {record.seq}", expected_seq)
            if record.prev_hash != head or stored_prev != head:
                return bad(f"prev_hash mismatch: expected {head}, found {record.prev_hash}")
            if "hash" in fields or line_hash(line) != stored_hash:
                return bad("hash mismatch: the record was changed after it was written")
            previous = record
            count += 1
        return AuditVerification(ok=True, count=count, head_hash=previous.hash if previous else None)


def line_hash(line: str) -> str:
    """What the database computes for a row: sha256 of the line's exact bytes."""
    return hashlib.sha256(line.encode("utf-8")).hexdigest()


def insert_record(db: Database, record: AuditRecord) -> None:
    """As the schema owner only (`state import`): a verified record, stored as its hashed body."""
    body = canonical_json(record.hashed_fields())
    if line_hash(body) != record.hash:
        raise AuditBroken(f"audit record {record.seq} does not hash to its own hash: nothing imported")
    db.execute(f"INSERT INTO {SCHEMA}.audit_records (seq, hash, prev_hash, line) VALUES (%s, %s, %s, %s)",
               (record.seq, record.hash, record.prev_hash, body))
