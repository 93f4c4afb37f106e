"""`coordinator state import DIR`: move one machine's local state into the shared database.

The local chain is verified first, then copied record for record (same seq, same hashes,
so a head hash published before the move still matches); only into an empty chain, so
two histories are never spliced. Release records keep their approvals, marked as they
were verified then: `local`.
"""

from __future__ import annotations

from pathlib import Path

from coordinator.audit import AuditLog
from coordinator.context import Context
from coordinator.errors import AuditBroken, UsageError
from coordinator.state.pg_audit import PostgresAudit, insert_record
from coordinator.state.postgres import PostgresStore
from coordinator.store import ReleaseStore


def import_state_dir(ctx: Context, directory: Path) -> tuple[int, int]:
    """Import `directory`'s releases and audit chain; returns (releases, audit records)."""
    local = ReleaseStore(directory)
    log = AuditLog(local.audit_path)
    if not local.audit_path.exists() and not local.releases_dir.is_dir():
        raise UsageError(f"{directory} is not a coordinator state dir (no audit.jsonl, no releases/)")
    checked = log.verify()
    if not checked.ok:
        raise AuditBroken(f"{local.audit_path} does not verify (seq {checked.first_bad_seq}: {checked.reason}): "
                          "nothing imported; restore it from its last good copy first")
    store, audit = ctx.store, ctx.audit.trail
    assert isinstance(store, PostgresStore) and isinstance(audit, PostgresAudit)
    records = log.records()
    releases = local.all()
    conn = store.db.conn
    with local.locked("state import"), conn.transaction():  # all or nothing
        if audit.head_hash() is not None:
            raise UsageError(f"{store.describe()} already has an audit chain: import only into a fresh database, "
                             "so two histories are never spliced")
        clashing = [release.id for release in releases if store.load(release.id) is not None]
        if clashing:
            raise UsageError(f"{store.describe()} already has release(s) {', '.join(clashing)}: nothing imported")
        for record in records:
            insert_record(store.db, record.seq, record.hash, record.prev_hash, record.to_line())
        for release in releases:
            for approval in release.approvals:
                store.add_approval(release, approval.model_copy(update={"verified_by": "local"}))
            store.save(release)
    return len(releases), len(records)
