"""The team-mode run lock: a session-level advisory lock on a session of its own.

PostgreSQL frees a session's advisory locks when the session ends (a crash, a restart,
`pg_terminate_backend`). A client that quietly reconnects then holds nothing while it
believes it holds the lock, and another machine may already have taken it. So the lock has
its own connection, with TCP keepalives (a dead peer is noticed within a minute, not hours),
that is never reopened; `holds()` asks the server whether *this* session's backend pid
still holds the lock in `pg_locks`, and `ensure_held()` is called at every stage boundary
and before every irreversible step: a lost lock stops the command there (RunLockLost, exit 20).
"""

from __future__ import annotations

from typing import Any

import psycopg

from coordinator.errors import LockHeld, RunLockLost
from coordinator.release import utcnow
from coordinator.state.postgres import Database, advisory_key

KEEPALIVES: dict[str, Any] = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}
"""A silent peer (a dropped network, a frozen server) is declared dead after about 25 s."""

_HOLDS = """SELECT EXISTS (SELECT 1 FROM pg_locks
                           WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()
                             AND classid = %s::oid AND objid = %s::oid AND objsubid = 1)"""


class RunLock:
    """The advisory lock named `name`, held on a session opened for it alone."""

    def __init__(self, db: Database, name: str, *, label: str, shared: bool = False, run_id: str | None = None) -> None:
        self.db = db
        self.name = name
        self.label = label  # what the lock protects, for messages ("release sample-1.2.0")
        self.key = advisory_key(name)
        self.shared = shared  # many shared holders at once; an exclusive holder excludes them all
        self.run_id = run_id  # named in the session's application_name, for whoever is refused
        self._conn: psycopg.Connection[Any] | None = None

    @property
    def _key_parts(self) -> tuple[int, int]:
        return self.key >> 32, self.key & 0xFFFF_FFFF

    def acquire(self, purpose: str, *, advice: str | None = None) -> None:
        """Take the lock or raise LockHeld naming the holder and `advice` (what to do); never waits."""
        conn = self.db.connect(**KEEPALIVES)
        # Who holds it, for whoever it refuses (63 bytes at most; other roles may not see backend_start).
        who = f"{self.run_id} since {utcnow():%H:%M:%SZ}" if self.run_id else self.db.application_name
        take = "pg_try_advisory_lock_shared" if self.shared else "pg_try_advisory_lock"
        with self.db.mapped_errors():
            conn.execute("SELECT set_config('application_name', %s, false)", (f"{who}: {purpose}"[:63],))
            row = conn.execute(f"SELECT {take}(%s)", (self.key,)).fetchone()
        if not (row and row[0]):
            holder = self._holder(conn)
            conn.close()
            raise LockHeld(f"{self.label} is in use by {holder}: "
                           + (advice or "wait for it to finish (the lock is freed automatically when that process exits)"))
        self._conn = conn

    def holds(self) -> bool:
        """True only if this lock's own session is alive and its backend holds the lock."""
        conn = self._conn
        if conn is None or conn.closed:
            return False
        try:
            row = conn.execute(_HOLDS, self._key_parts).fetchone()
        except psycopg.Error:  # the session is gone: so is the lock
            return False
        return bool(row and row[0])

    def ensure_held(self, before: str) -> None:
        """Raise RunLockLost unless the lock is still ours; `before` names the step that would run next."""
        if self.holds():
            return
        raise RunLockLost(
            f"lost the run lock of {self.label} before {before}: its database session on {self.db.where()} ended "
            "(terminated, or the server restarted), so another command may be running it now. Stopped here; "
            "check `coordinator status` and `coordinator lock status ENV`, then `coordinator resume` once no other "
            "command runs it")

    def release(self) -> None:
        """Give the lock back and close its session; a lost session has freed it already."""
        conn, self._conn = self._conn, None
        if conn is None or conn.closed:
            return
        try:
            conn.execute(f"SELECT {'pg_advisory_unlock_shared' if self.shared else 'pg_advisory_unlock'}(%s)",
                         (self.key,))
        except psycopg.Error:
            pass  # the session died: the server freed the lock with it
        finally:
            conn.close()

    def _holder(self, conn: psycopg.Connection[Any]) -> str:
        try:
            row = conn.execute(
                """SELECT a.application_name, a.usename, a.backend_start FROM pg_locks l
                   JOIN pg_stat_activity a ON a.pid = l.pid
                   WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s::oid AND l.objid = %s::oid
                     AND l.objsubid = 1 AND l.pid <> pg_backend_pid()
                   ORDER BY a.backend_start LIMIT 1""", self._key_parts).fetchone()
        except psycopg.Error:
            row = None
        if row is None:
            return "another coordinator"
        name, user, since = row  # a role without pg_read_all_stats sees no start time of others
        when = f", connected {since:%Y-%m-%d %H:%M:%S %Z}" if since else ""
        name = name or "a coordinator"
        return f"{name if name.startswith('coordinator') else 'coordinator run ' + name} (role {user}{when})"
