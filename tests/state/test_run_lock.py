"""The run lock against a real server: it lives on its own session, a terminated session is a
lost lock (never silently re-taken), and two `state migrate` at once leave one migration."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from coordinator.errors import ExitCode, LockHeld, RunLockLost, StateBackendError
from coordinator.release import Release
from coordinator.state.postgres import PostgresStore
from coordinator.state.run_lock import RunLock
from coordinator.state.schema import SCHEMA_VERSION
from tests.sandbox.postgres import OWNER
from tests.pg import TeamDatabase


def release(version: str = "1.0.0") -> Release:
    return Release(id=f"shop-{version}", project="shop", version=version, tag=f"v{version}", operator="ci")


def lock_backend_pids(team_db: TeamDatabase, lock: RunLock) -> list[int]:
    """The backends that hold `lock`, as the server sees them (the superuser view of pg_locks)."""
    import psycopg

    hi, lo = lock.key >> 32, lock.key & 0xFFFF_FFFF
    with psycopg.connect(team_db.cluster.superuser_dsn(team_db.name), autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                            "AND classid = %s::oid AND objid = %s::oid", (hi, lo)).fetchall()
    return [int(pid) for (pid,) in rows]


def terminate(team_db: TeamDatabase, pid: int) -> None:
    import psycopg

    with psycopg.connect(team_db.cluster.superuser_dsn(team_db.name), autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_the_run_lock_lives_on_its_own_session_with_keepalives(team_db: TeamDatabase) -> None:
    db = team_db.connect("alice")
    store = PostgresStore(db, "shop")
    with store.locked("release 1.0.0", release_id="shop-1.0.0"):
        (lock,) = store._run_locks
        data_pid = db.execute("SELECT pg_backend_pid()").fetchone()[0]
        holders = lock_backend_pids(team_db, lock)
        assert len(holders) == 1 and holders[0] != data_pid  # not the records' session
        assert lock.holds()
        store.ensure_locked("deploy.yml on production")  # does not raise
        assert lock._conn is not None and lock._conn.info.get_parameters().get("keepalives") == "1"


def test_a_terminated_lock_session_is_a_lost_lock_and_another_command_may_take_it(team_db: TeamDatabase) -> None:
    alice = PostgresStore(team_db.connect("alice"), "shop")
    bob = PostgresStore(team_db.connect("bob"), "shop")
    with alice.locked("resume 1.0.0", release_id="shop-1.0.0"):
        (lock,) = alice._run_locks
        with pytest.raises(LockHeld):
            with bob.locked("resume 1.0.0", release_id="shop-1.0.0"):
                pass
        terminate(team_db, lock_backend_pids(team_db, lock)[0])
        deadline = time.monotonic() + 10
        while lock.holds() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not lock.holds()
        with bob.locked("resume 1.0.0", release_id="shop-1.0.0"):
            # alice's records session still works, but she no longer holds the lock: she must stop.
            alice.save(release())
            with pytest.raises(RunLockLost, match=r"lost the run lock of shop-1.0.0 before deploy.yml on production: "
                                                  r"its database session on .* ended"):
                alice.ensure_locked("deploy.yml on production")
            assert not lock.holds()  # and it was not quietly re-taken by asking
        assert lock_backend_pids(team_db, lock) == []


def test_an_environment_is_shared_by_release_runs_and_taken_alone_by_a_rollback(team_db: TeamDatabase) -> None:
    alice = PostgresStore(team_db.connect("alice"), "shop", run_id="ops1.4242.a1b2c3")
    bob = PostgresStore(team_db.connect("bob"), "shop", run_id="ops2.77.d4e5f6")
    carol = PostgresStore(team_db.connect("alice"), "shop", run_id="ops3.9.000000")
    with alice.deploying("production", "promote 1.0.0"), carol.deploying("production", "verify 1.1.0"):
        with pytest.raises(LockHeld) as refused:
            with bob.deploying("production", "rollback production", exclusive=True, advice="wait, then rerun it"):
                pytest.fail("a rollback ran next to a live release run")
        assert refused.value.exit_code == ExitCode.LOCKED
        message = refused.value.message
        assert message.startswith("production of shop is in use by coordinator run ops1.4242.a1b2c3 since ")
        assert ": promote 1.0.0 (role alice" in message and message.endswith("wait, then rerun it")
        (lock,) = alice._run_locks
        alice.ensure_locked("deploy.yml on production")  # the environment's lock is checked like the run lock
        assert len(lock_backend_pids(team_db, lock)) == 2 and lock._conn is not None  # alice's and carol's
        terminate(team_db, lock._conn.info.backend_pid)
        with pytest.raises(RunLockLost):
            alice.ensure_locked("deploy.yml on production")
    with bob.deploying("production", "rollback production", exclusive=True):  # the holders are gone: it goes ahead
        with pytest.raises(LockHeld, match=r"ops2\.77\.d4e5f6 since .*: rollback production"):
            with alice.deploying("production", "promote 1.0.0"):
                pytest.fail("a release run deployed next to a rollback")
        with alice.deploying("staging", "stage 1.0.0"):  # another environment is not held
            pass


def test_run_active_says_whether_any_command_holds_a_releases_run_lock(team_db: TeamDatabase) -> None:
    alice = PostgresStore(team_db.connect("alice"), "shop")
    bob = PostgresStore(team_db.connect("bob"), "shop")
    assert not bob.run_active("shop-1.0.0")
    with alice.locked("resume 1.0.0", release_id="shop-1.0.0"):
        assert bob.run_active("shop-1.0.0") and not bob.run_active("shop-1.1.0")
    assert not bob.run_active("shop-1.0.0")


def test_a_run_lock_lost_to_a_stopped_connection_says_so_before_the_next_step(team_db: TeamDatabase) -> None:
    store = PostgresStore(team_db.connect("alice"), "shop")
    with store.locked("release 1.0.0", release_id="shop-1.0.0"):
        (lock,) = store._run_locks
        assert lock._conn is not None
        lock._conn.close()  # what a dead peer looks like once keepalives notice it
        with pytest.raises(RunLockLost) as lost:
            store.ensure_locked("promote")
        assert lost.value.exit_code == ExitCode.RUN_LOCK_LOST


def test_a_dropped_records_session_is_exit_19_naming_the_server_not_the_password(team_db: TeamDatabase) -> None:
    from psycopg.conninfo import conninfo_to_dict

    db = team_db.connect("alice")
    terminate(team_db, db.execute("SELECT pg_backend_pid()").fetchone()[0])
    with pytest.raises(StateBackendError) as failed:
        db.execute("SELECT 1")
    info = conninfo_to_dict(team_db.dsn("alice"))
    message = failed.value.message
    assert failed.value.exit_code == ExitCode.STATE_BACKEND
    assert message.startswith(f"state database {info['host']}:{info['port']}/{team_db.name} failed: terminating connection")
    assert str(info["password"]) not in message and "\n" not in message


MIGRATE = """
import sys
from coordinator.cli import main
sys.argv = ["coordinator", "-c", sys.argv[1], "state", "migrate"]
main()
"""


def test_two_migrates_at_once_one_migrates_the_other_finds_it_current(bare_db: TeamDatabase, machine: Any) -> None:
    first, second = machine("admin1", bare_db.dsn(OWNER)), machine("admin2", bare_db.dsn(OWNER))
    runs = [subprocess.Popen([sys.executable, "-c", MIGRATE, str(m.config)], cwd=m.dir, env=m.env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for m in (first, second)]
    outputs = [run.communicate(timeout=60) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    said = sorted(out for out, _err in outputs)
    assert f"schema already at version {SCHEMA_VERSION}" in said[0] + said[1]
    assert sum("schema version 0 → " in out for out in said) == 1, said
    status = machine("ops", bare_db.dsn("alice")).run("status")
    assert status.returncode == 0 and status.stdout.strip() == "no releases yet"


@pytest.mark.parametrize("dsn, secret_parts", [
    ("postgresql://alice:S3cr3t%zz@127.0.0.1:1/db", ["S3cr3t", "%zz", "alice", "127.0.0.1:1"]),
    ("host=127.0.0.1 port=1 dbname=db user=alice password=Sup3r s3cretTail", ["Sup3r", "s3cretTail", "alice"]),
])
def test_a_malformed_dsn_is_named_without_echoing_any_of_it(machine: Any, dsn: str, secret_parts: list[str]) -> None:
    result = machine("ops", dsn).run("status")
    assert result.returncode == ExitCode.STATE_BACKEND, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the database DSN from environment variable "
                                                   "COORDINATOR_DATABASE_URL cannot be parsed (not shown")
    for part in secret_parts:
        assert part not in result.stdout + result.stderr


def test_state_migrate_with_a_malformed_dsn_is_named_too(machine: Any, tmp_path: Path) -> None:
    result = machine("admin", "postgresql://owner:pa%ss@127.0.0.1:1/db").run("state", "migrate")
    assert result.returncode == ExitCode.STATE_BACKEND
    assert "pa%ss" not in result.stderr and "owner" not in result.stderr and "cannot be parsed" in result.stderr


def test_an_append_on_a_dropped_session_is_spooled_then_appended_delayed_and_the_chain_verifies(
        team_db: TeamDatabase, tmp_path: Path) -> None:
    import io

    from coordinator.audit import AuditEvent
    from coordinator.output import Output
    from coordinator.redact import Redactor
    from coordinator.spool import Spool, SpoolingTrail
    from coordinator.state.pg_audit import PostgresAudit

    db = team_db.connect("alice")
    err = io.StringIO()
    trail = SpoolingTrail(PostgresAudit(db), Spool(tmp_path), Output(io.StringIO(), err, redactor=Redactor()))
    trail.append(AuditEvent.DEPLOY_STARTED, operator="alice", release_id="shop-1.1.0")
    terminate(team_db, db.execute("SELECT pg_backend_pid()").fetchone()[0])

    assert trail.append(AuditEvent.DEPLOY_FAILED, operator="alice", release_id="shop-1.1.0", outcome="failed") is None
    assert "audit record deploy.failed could not be written (state database 127.0.0.1:" in err.getvalue()
    assert [e["event"] for e in trail.spool.entries()] == ["deploy.failed"]

    trail.append(AuditEvent.ROLLBACK_COMPLETED, operator="alice", release_id="shop-1.1.0", outcome="rolled_back")
    events = [(r.event.value, "delayed" in r.data) for r in PostgresAudit(team_db.connect("bob")).records()]
    assert events == [("deploy.started", False), ("deploy.failed", True), ("rollback.completed", False)]
    assert PostgresAudit(team_db.connect("bob")).verify().ok
    assert trail.spool.entries() == []
