"""The audit chain in PostgreSQL: the same records and hashes as the local `AuditLog`,
one chain for every machine that shares the database.

An append is one transaction that takes a transaction-scoped advisory lock on the chain
head, reads the head, and inserts the next record; concurrent appends from any number
of hosts therefore queue, and the schema's trigger and unique prev_hash refuse any
insert that does not link to the head (a client that skips the lock gets an error, not
a fork). The application role cannot UPDATE or DELETE records.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from coordinator.audit import AuditEvent, AuditRecord, AuditVerification, record_hash, refuse_secret_keys, utcnow
from coordinator.state.postgres import Database, advisory_key
from coordinator.state.schema import SCHEMA

CHAIN_KEY = advisory_key("coordinator:audit-chain-head")


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
        conn = self.db.conn
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (CHAIN_KEY,))
            head = conn.execute(f"SELECT seq, hash FROM {SCHEMA}.audit_records ORDER BY seq DESC LIMIT 1".encode()).fetchone()
            draft = AuditRecord.model_validate({
                "seq": head[0] + 1 if head else 1, "ts": self._clock(), "event": AuditEvent(event),
                "operator": operator, "release_id": release_id, "version": version, "environment": environment,
                "outcome": outcome, "data": data, "prev_hash": head[1] if head else None, "hash": "",
            })
            record = draft.model_copy(update={"hash": record_hash(draft.hashed_fields())})
            insert_record(self.db, record.seq, record.hash, record.prev_hash, record.to_line())
        return record

    def _lines(self) -> list[tuple[int, str, str | None, str]]:
        return [(int(seq), hash_, prev, line) for seq, hash_, prev, line in self.db.execute(
            f"SELECT seq, hash, prev_hash, line FROM {SCHEMA}.audit_records ORDER BY seq").fetchall()]

    def records(self) -> list[AuditRecord]:
        return [AuditRecord.model_validate_json(line) for _seq, _hash, _prev, line in self._lines()]

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
                record = AuditRecord.model_validate(fields)
            except (json.JSONDecodeError, ValidationError) as exc:
                return bad(f"invalid record: {exc.__class__.__name__}")
            if record.seq != seq or seq != expected_seq:
                return bad(f"seq gap: expected {expected_seq}, found {record.seq}", expected_seq)
            if record.prev_hash != head or stored_prev != head:
                return bad(f"prev_hash mismatch: expected {head}, found {record.prev_hash}")
            if record_hash(fields) != record.hash or stored_hash != record.hash:
                return bad("hash mismatch: the record was changed after it was written")
            previous = record
            count += 1
        return AuditVerification(ok=True, count=count, head_hash=previous.hash if previous else None)


def insert_record(db: Database, seq: int, hash_: str, prev_hash: str | None, line: str) -> None:
    db.execute(f"INSERT INTO {SCHEMA}.audit_records (seq, hash, prev_hash, line) VALUES (%s, %s, %s, %s)",
               (seq, hash_, prev_hash, line))
