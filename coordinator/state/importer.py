"""`coordinator state import DIR`: move one machine's local state into the shared database.

The local chain is verified first, then copied record for record (same seq, same hashes,
so a head hash published before the move still matches); only into an empty chain, so
two histories are never spliced. Release records keep their approvals, marked as they
were verified then: `local` (which no team gate counts). Run as the schema owner: the
application roles cannot write history except through schema v2's checked functions,
and an imported history did not pass them, so only the trusted owner may vouch for it.
"""

from __future__ import annotations

from pathlib import Path

from coordinator.audit import AuditLog, AuditRecord
from coordinator.context import Context
from coordinator.errors import AuditBroken, StateBackendError, UsageError
import psycopg
from psycopg.types.json import Jsonb

from coordinator.release import Release
from coordinator.state.pg_audit import PostgresAudit, insert_record
from coordinator.state.postgres import PostgresStore
from coordinator.state.schema import SCHEMA
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
    try:
        _copy(store, audit, local, records, releases)
    except psycopg.errors.InsufficientPrivilege:
        raise StateBackendError(f"{store.describe()}: `state import` writes history directly and needs the schema "
                                "owner's login (the one that ran `state init`); nothing imported") from None
    return len(releases), len(records)


def _copy(store: PostgresStore, audit: PostgresAudit, local: ReleaseStore, records: list[AuditRecord],
          releases: list[Release]) -> None:
    conn = store.db.conn
    with local.locked("state import"), conn.transaction():  # all or nothing
        if audit.head_hash() is not None:
            raise UsageError(f"{store.describe()} already has an audit chain: import only into a fresh database, "
                             "so two histories are never spliced")
        clashing = [release.id for release in releases if store.load(release.id) is not None]
        if clashing:
            raise UsageError(f"{store.describe()} already has release(s) {', '.join(clashing)}: nothing imported")
        for record in records:
            insert_record(store.db, record)
        for release in releases:
            _insert_release(store, release)


def _insert_release(store: PostgresStore, release: Release) -> None:
    """Owner-only raw rows: the artifact row, one revision, and the approvals marked `local`."""
    body = release.model_dump(mode="json", exclude={"approvals"})
    build = release.build
    store.db.execute(
        f"""INSERT INTO {SCHEMA}.releases (release_id, project, started_by, releaser, tag, commit_sha, run_id, digest)
            VALUES (%s, %s, session_user, %s, %s, %s, %s, %s)""",
        (release.id, release.project, (release.releaser or release.operator).lower(), release.tag, release.commit_sha,
         build.run_id if build else None, build.digest if build else None))
    store.db.execute(f"""INSERT INTO {SCHEMA}.release_revisions (release_id, rev, project, body, saved_by)
                         VALUES (%s, 1, %s, %s, session_user)""", (release.id, release.project, Jsonb(body)))
    for approval in release.approvals:
        store.db.execute(
            f"""INSERT INTO {SCHEMA}.approvals (release_id, identity, verified_by, db_role, label, tag, commit_sha,
                    run_id, digest, smoke, reason, confirmed_at)
                VALUES (%s, %s, 'local', session_user, %s, %s, %s, %s, %s, %s, %s, %s)""",
            (release.id, approval.operator, approval.label, approval.tag, approval.commit_sha, approval.run_id,
             approval.digest, approval.smoke, approval.reason, approval.confirmed_at))
