"""The PostgreSQL state backend: one connection per process, release records as revisions,
approvals as rows the database vouches for, and the per-release run lock as an advisory
lock (the server frees it when the session dies, like the local flock after `kill -9`).

The DSN comes from an environment variable or a 0600 file (`Config.database_dsn`), never
from argv or the config text, and never appears in a message: errors name host and
database only.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb

from coordinator.errors import GateRefused, IdentityRefused, StateBackendError
from coordinator.redact import Redactor, dsn_problem
from coordinator.release import Approval, Release, utcnow
from coordinator.release_read import read_release
from coordinator.state.gate_sql import GatePolicy, read_policy, refusal, session_login
from coordinator.state.schema_v2 import IDENTITY_STATE, RECORD_STATE
from coordinator.state.schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION, VERSION_TABLE

if TYPE_CHECKING:
    from coordinator.state.run_lock import RunLock


def advisory_key(name: str) -> int:
    """A stable 63-bit key for pg_advisory_lock: the same name on every machine."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF


MIGRATION_KEY = advisory_key("coordinator:migrate")

_REFUSALS = (pg_errors.IntegrityError, pg_errors.InsufficientPrivilege, pg_errors.RaiseException)
"""Errors that are the database saying no to this write, not the database being gone."""
_REFUSAL_STATES = (IDENTITY_STATE, RECORD_STATE)
"""The SQLSTATEs schema v2's functions raise when they refuse a write (gate_sql.refusal names them)."""


class Database:
    """A lazily opened autocommit connection for records; the schema version is checked on first use.

    It may reconnect after a lost session, because it holds no lock: the run lock lives on
    its own session (`coordinator.state.run_lock`), which is never reopened behind its back.
    Every psycopg error leaves here as StateBackendError naming host:port/db, except the
    refusals a caller turns into its own error (a unique or privilege violation, a raised
    exception in a database function).
    """

    def __init__(self, dsn: str, *, connect_timeout_s: float = 10.0, check_schema: bool = True,
                 source: str = "the configured DSN") -> None:
        self._dsn = dsn
        self._timeout = connect_timeout_s
        self._check_schema = check_schema
        self._source = source
        self._conn: psycopg.Connection[Any] | None = None
        self._redactor = Redactor()
        self._redactor.add_dsn(dsn)
        self.application_name = f"coordinator pid {os.getpid()} on {socket.gethostname()}"[:63]

    def _conninfo(self) -> dict[str, Any]:
        """The parsed DSN; a DSN that does not parse is refused without quoting any of it."""
        try:
            return dict(psycopg.conninfo.conninfo_to_dict(self._dsn))
        except psycopg.Error:
            raise StateBackendError(dsn_problem(self._source)) from None

    def where(self) -> str:
        """host:port/database, for messages (never the user or password)."""
        try:
            info = self._conninfo()
        except StateBackendError:
            return "the state database (its DSN cannot be parsed)"
        return f"{info.get('host') or 'localhost'}:{info.get('port') or 5432}/{info.get('dbname') or '?'}"

    def describe_error(self, exc: BaseException) -> str:
        """The first line of a database error, with every spelling of the DSN's secrets masked."""
        return self._redactor.redact(_first_line(exc))

    def connect(self, **options: Any) -> psycopg.Connection[Any]:
        """A new autocommit session (for the run lock: `options` adds TCP keepalives)."""
        self._conninfo()  # a malformed DSN is named before psycopg can echo it
        try:
            return psycopg.connect(self._dsn, autocommit=True, connect_timeout=max(1, int(self._timeout)),
                                   application_name=self.application_name, **options)
        except psycopg.Error as exc:
            raise StateBackendError(f"state database {self.where()} is unreachable: {self.describe_error(exc)}; "
                                    "check state.dsn_env / state.dsn_file and that the server runs") from None

    @property
    def conn(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = self.connect()
            if self._check_schema:
                self._require_current_schema()
        return self._conn

    @property
    def is_open(self) -> bool:
        return self._conn is not None and not self._conn.closed

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def backend_error(self, exc: psycopg.Error) -> StateBackendError:
        """exit 19, naming the server and what to do; the DSN's secrets never appear."""
        return StateBackendError(f"state database {self.where()} failed: {self.describe_error(exc)}; check that the "
                                 "server runs and this machine reaches it, then run the command again (records that "
                                 "could not be written are kept in the spool and appended then)")

    @contextmanager
    def mapped_errors(self, *passing: type[psycopg.Error]) -> Iterator[None]:
        """Turn a lost server (or any unexpected psycopg error) into StateBackendError; refusals
        and the `passing` errors a caller handles itself are re-raised as they are."""
        handled_elsewhere: tuple[type[BaseException], ...] = (*_REFUSALS, *passing)
        try:
            yield
        except handled_elsewhere:
            raise
        except psycopg.Error as exc:
            if exc.sqlstate in _REFUSAL_STATES:  # schema v2's own refusals: the caller names them
                raise
            raise self.backend_error(exc) from None

    def execute(self, query: str, params: tuple[Any, ...] | dict[str, Any] | None = None) -> psycopg.Cursor[Any]:
        """Run one statement; a lost server is StateBackendError, refusals (privilege, constraint) stay psycopg's."""
        with self.mapped_errors():
            return self.conn.execute(query.encode(), params)

    def schema_version(self) -> int:
        """0 when the schema is not there yet."""
        try:
            with self.mapped_errors(pg_errors.UndefinedTable):
                row = self.conn.execute(f"SELECT max(version) FROM {SCHEMA}.schema_version".encode()).fetchone()
        except pg_errors.UndefinedTable:
            return 0
        except pg_errors.InsufficientPrivilege as exc:
            raise StateBackendError(f"state database {self.where()}: no access to schema {SCHEMA} "
                                    f"({self.describe_error(exc)}); "
                                    "grant the role membership in state.app_role (README 'Team mode')") from None
        return int(row[0] or 0) if row else 0

    def _require_current_schema(self) -> None:
        found = self.schema_version()
        if found == SCHEMA_VERSION:
            return
        if found == 0:
            raise StateBackendError(f"state database {self.where()} has no coordinator schema: "
                                    "run `coordinator state init` as the schema owner")
        if found < SCHEMA_VERSION:
            raise StateBackendError(f"state database {self.where()} has schema version {found}, this coordinator needs "
                                    f"{SCHEMA_VERSION}: run `coordinator state migrate` as the schema owner")
        raise StateBackendError(f"state database {self.where()} has schema version {found}, newer than this coordinator "
                                f"knows ({SCHEMA_VERSION}): upgrade the coordinator on this machine")

    def current_user(self) -> str:
        row = self.execute("SELECT current_user").fetchone()
        assert row is not None
        return str(row[0])


def migrate(db: Database, app_role: str) -> tuple[int, int]:
    """Apply every pending migration as the schema owner; returns (from, to). Refuses a newer schema.

    The whole run holds the migration lock, and the version is read only once it is held:
    of two `state migrate` at once, one migrates and the other then finds it up to date.
    """
    conn = db.conn
    try:
        with db.mapped_errors():
            conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_KEY,))
        try:
            return _migrate_locked(db, app_role)
        finally:
            if not conn.closed:
                with db.mapped_errors():
                    conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_KEY,))
    except pg_errors.InsufficientPrivilege as exc:
        raise StateBackendError(f"migrating {db.where()} needs the schema owner's role: {db.describe_error(exc)}") from None
    except pg_errors.UndefinedObject as exc:
        raise StateBackendError(f"migrating {db.where()}: {db.describe_error(exc)}; create state.app_role {app_role} "
                                "first (README 'Team mode')") from None


def _migrate_locked(db: Database, app_role: str) -> tuple[int, int]:
    conn = db.conn
    with db.mapped_errors():
        with conn.transaction():
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}".encode())
            conn.execute(VERSION_TABLE.encode())
    found = db.schema_version()
    if found > SCHEMA_VERSION:
        raise StateBackendError(f"state database {db.where()} has schema version {found}, newer than this "
                                f"coordinator knows ({SCHEMA_VERSION}): upgrade the coordinator instead of migrating")
    for version in range(found + 1, SCHEMA_VERSION + 1):
        with db.mapped_errors(pg_errors.UndefinedObject), conn.transaction():
            for statement in MIGRATIONS[version - 1](app_role):
                conn.execute(statement.encode())
            conn.execute(f"INSERT INTO {SCHEMA}.schema_version (version) VALUES (%s)".encode(), (version,))
    return found, SCHEMA_VERSION


class PostgresStore:
    """Release records of `project` as append-only revisions; approvals from their own table."""

    def __init__(self, db: Database, project: str, run_id: str | None = None) -> None:
        self.db = db
        self.project = project
        self.run_id = run_id  # this command's run, named to whoever a lock of ours refuses
        self._run_locks: list[RunLock] = []

    def describe(self) -> str:
        return f"database {self.db.where()}"

    def ensure(self) -> None:
        _ = self.db.conn

    def save(self, release: Release) -> None:
        """A new revision through `save_release`, which refuses one that changes the artifact or releaser."""
        release.updated_at = utcnow()
        body = release.model_dump(mode="json", exclude={"approvals"})  # approvals live in their own table
        try:
            self.db.execute(f"SELECT {SCHEMA}.save_release(%s)", (Jsonb(body),))
        except psycopg.Error as exc:
            if (refused := refusal(exc, StateBackendError, f"saving {release.id}")) is not None:
                raise refused from None
            raise

    def load(self, release_id: str) -> Release | None:
        row = self.db.execute(f"SELECT body FROM {SCHEMA}.release_revisions WHERE release_id = %s ORDER BY rev DESC LIMIT 1",
                              (release_id,)).fetchone()
        if row is None:
            return None
        release = read_release(row[0], f"{release_id} ({SCHEMA}.release_revisions)")
        release.approvals = self._approvals(release_id)
        return release

    def all(self) -> list[Release]:
        rows = self.db.execute(
            f"""SELECT DISTINCT ON (release_id) body FROM {SCHEMA}.release_revisions
                WHERE project = %s ORDER BY release_id, rev DESC""", (self.project,)).fetchall()
        releases = []
        for (body,) in rows:
            release = read_release(body, f"{body.get('id', '?')} ({SCHEMA}.release_revisions)")
            release.approvals = self._approvals(release.id)
            releases.append(release)
        return sorted(releases, key=lambda release: release.created_at)

    def _approvals(self, release_id: str) -> list[Approval]:
        """Every row; one the database did not check (written before schema v2) reads as unchecked and never counts."""
        rows = self.db.execute(
            f"""SELECT identity, verified_by, label, tag, commit_sha, run_id, digest, smoke, reason, confirmed_at, checked
                FROM {SCHEMA}.approvals WHERE release_id = %s ORDER BY id""", (release_id,)).fetchall()
        return [Approval(operator=identity, verified_by=verified_by if checked or verified_by == "local"
                         else f"{verified_by} unchecked", label=label, tag=tag, commit_sha=commit_sha, run_id=run_id,
                         digest=digest, smoke=smoke, reason=reason, confirmed_at=confirmed_at)
                for identity, verified_by, label, tag, commit_sha, run_id, digest, smoke, reason, confirmed_at, checked
                in rows]

    def add_approval(self, release: Release, approval: Approval) -> None:
        """Through `record_approval`: the database decides identity, time and whether it counts.

        `approval.confirmed_at` takes the server's time; the identity stored is the login,
        which must be the name the client verified (`approval.operator`)."""
        try:
            row = self.db.execute(
                f"SELECT {SCHEMA}.record_approval(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (release.id, approval.operator, approval.verified_by or "local", approval.label, approval.tag,
                 approval.commit_sha, approval.run_id, approval.digest, approval.smoke, approval.reason)).fetchone()
        except pg_errors.UniqueViolation:
            raise IdentityRefused(f"{approval.operator} has already approved {release.tag} at {approval.digest}: "
                                  "one identity counts once") from None
        except psycopg.Error as exc:
            if (refused := refusal(exc, GateRefused, f"the approval of {release.tag}")) is not None:
                raise refused from None
            raise
        assert row is not None
        approval.confirmed_at = row[0]

    def policy(self) -> GatePolicy:
        return read_policy(self.db)

    def database_role(self) -> str | None:
        """The login (`session_user`); refused if the session switched role."""
        return session_login(self.db)

    @contextmanager
    def locked(self, purpose: str, release_id: str | None = None, *, advice: str | None = None) -> Iterator[None]:
        """The run lock of one release (or of the project): refused at once if another session holds it."""
        from coordinator.state.run_lock import RunLock

        lock = RunLock(self.db, f"coordinator-run:{release_id or self.project + ':*'}", label=release_id or self.project,
                       run_id=self.run_id)
        with self._holding(lock, purpose, advice):
            yield

    def run_active(self, release_id: str) -> bool:
        """Whether any session holds `release_id`'s run lock (`pg_locks`: every role sees every lock)."""
        key = advisory_key(f"coordinator-run:{release_id}")
        row = self.db.execute("""SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
                                                AND classid = %s::oid AND objid = %s::oid AND objsubid = 1)""",
                              (key >> 32, key & 0xFFFF_FFFF)).fetchone()
        return bool(row and row[0])

    @contextmanager
    def deploying(self, environment: str, purpose: str, *, exclusive: bool = False,
                  advice: str | None = None) -> Iterator[None]:
        """The environment's deploy lock, a second advisory lock: release runs of any release share
        it, a manual rollback takes it alone, so neither starts while the other acts on the hosts."""
        from coordinator.state.run_lock import RunLock

        lock = RunLock(self.db, f"coordinator-env:{self.project}:{environment}", label=f"{environment} of {self.project}",
                       shared=not exclusive, run_id=self.run_id)
        with self._holding(lock, purpose, advice):
            yield

    @contextmanager
    def _holding(self, lock: RunLock, purpose: str, advice: str | None = None) -> Iterator[None]:
        lock.acquire(purpose, advice=advice)
        self._run_locks.append(lock)
        try:
            yield
        finally:
            self._run_locks.remove(lock)
            lock.release()

    def ensure_locked(self, before: str) -> None:
        """Raise RunLockLost if a run lock this store took is no longer held (see `run_lock`)."""
        for lock in self._run_locks:
            lock.ensure_held(before)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__
