"""The PostgreSQL state backend against a real server (tests.sandbox.postgres): schema versions,
append-only history, the chain under concurrent writers, the run lock, approvals the
database vouches for, and `state import`. No mocks: every assertion is what the server did.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from coordinator.audit import AuditEvent, AuditLog, canonical_json
from coordinator.errors import ExitCode, GateRefused, IdentityRefused, LockHeld, StateBackendError
from coordinator.release import Approval, BuildInfo, Release
from coordinator.state.pg_audit import PostgresAudit
from coordinator.state.postgres import PostgresStore
from coordinator.state.schema import SCHEMA_VERSION
from coordinator.state.schema_v2 import RECORD_STATE
from coordinator.store import ReleaseStore
from tests.sandbox.postgres import OWNER, write_dsn_file
from tests.pg import TeamDatabase

REPO = Path(__file__).resolve().parents[2]


def approval(identity: str, *, verified_by: str = "database", digest: str = "sha256:" + "a" * 64) -> Approval:
    return Approval(operator=identity, confirmed_at=datetime.now(UTC), tag="v1.0.0", commit_sha="c" * 40, run_id="7",
                    digest=digest, smoke="passed", verified_by=verified_by)


def release(version: str = "1.0.0", *, digest: str = "sha256:" + "a" * 64) -> Release:
    """A release that passed staging: its artifact is what `approval()` names."""
    return Release(id=f"shop-{version}", project="shop", version=version, tag=f"v{version}", operator="ci",
                   commit_sha="c" * 40, smoke_result="passed",
                   build=BuildInfo(run_id="7", run_url="http://127.0.0.1/run/7", conclusion="success",
                                   image="127.0.0.1:5000/shop", digest=digest))


# -- schema versions -------------------------------------------------------------------


def test_command_on_uninitialised_database_exits_19_naming_state_init(bare_db: TeamDatabase, machine: Any) -> None:
    ops = machine("ops", bare_db.dsn("alice"))
    result = ops.run("status")
    assert result.returncode == ExitCode.STATE_BACKEND == 19
    assert "has no coordinator schema: run `coordinator state init`" in result.stderr
    assert bare_db.cluster.passwords["alice"] not in result.stderr + result.stdout


def test_state_init_creates_schema_once_then_migrate_is_a_no_op(bare_db: TeamDatabase, machine: Any) -> None:
    admin = machine("admin", bare_db.dsn(OWNER))
    first = admin.run("state", "init")
    assert first.returncode == 0, first.stderr
    assert f"schema version 0 → {SCHEMA_VERSION}" in first.stdout
    again = admin.run("state", "init")
    assert again.returncode == ExitCode.USAGE and "use `coordinator state migrate`" in again.stderr
    migrate = admin.run("state", "migrate")
    assert migrate.returncode == 0 and f"already at version {SCHEMA_VERSION}" in migrate.stdout
    assert machine("ops", bare_db.dsn("alice")).run("status").stdout.strip() == "no releases yet"


def test_state_init_as_application_role_is_refused(bare_db: TeamDatabase, machine: Any) -> None:
    result = machine("ops", bare_db.dsn("alice")).run("state", "init")
    assert result.returncode == ExitCode.STATE_BACKEND
    assert "schema owner" in result.stderr or "permission denied" in result.stderr


def test_newer_schema_is_refused_by_every_command_and_by_migrate(team_db: TeamDatabase, machine: Any) -> None:
    team_db.owner_sql(f"INSERT INTO coordinator.schema_version (version) VALUES ({SCHEMA_VERSION + 1})")
    ops = machine("ops", team_db.dsn("alice"))
    for args in (("status",), ("audit", "verify"), ("approve", "1.0.0")):
        result = ops.run(*args)
        assert result.returncode == 19, (args, result.stderr)
        assert f"schema version {SCHEMA_VERSION + 1}, newer than this coordinator knows ({SCHEMA_VERSION})" in result.stderr
    migrate = machine("admin", team_db.dsn(OWNER)).run("state", "migrate")
    assert migrate.returncode == 19 and "upgrade the coordinator" in migrate.stderr


def test_unreachable_database_exits_19_without_the_password(pg_cluster: Any, machine: Any) -> None:
    dsn = f"postgresql://alice:s3cretpass@127.0.0.1:{pg_cluster.port + 1}/nowhere?connect_timeout=2"
    result = machine("ops", dsn).run("status")
    assert result.returncode == 19
    assert "is unreachable" in result.stderr and "s3cretpass" not in result.stderr


def test_dsn_comes_from_a_private_file_and_a_readable_one_is_refused(team_db: TeamDatabase, machine: Any,
                                                                     tmp_path: Path) -> None:
    dsn_file = write_dsn_file(tmp_path / "dsn", team_db.dsn("alice"))
    ops = machine("ops", None, state={"backend": "postgres", "dsn_file": str(dsn_file)})
    assert ops.run("status").stdout.strip() == "no releases yet"
    dsn_file.chmod(0o644)
    result = ops.run("status")
    assert result.returncode == ExitCode.USAGE
    assert f"state.dsn_file {dsn_file} is readable by others: chmod 600" in result.stderr
    missing = machine("nodsn", None).run("status")
    assert missing.returncode == ExitCode.USAGE and "export COORDINATOR_DATABASE_URL=" in missing.stderr


# -- append-only history ----------------------------------------------------------------


@pytest.mark.parametrize("table", ["audit_records", "release_revisions", "approvals", "releases", "gate_policy"])
def test_application_role_cannot_insert_update_or_delete_history(team_db: TeamDatabase, table: str) -> None:
    db = team_db.connect("alice")
    PostgresAudit(db).append(AuditEvent.RELEASE_STARTED, operator="alice")
    store = PostgresStore(team_db.connect("ci_bot"), "shop")
    store.save(release())
    PostgresStore(db, "shop").add_approval(release(), approval("alice"))
    column = {"audit_records": "line", "gate_policy": "required"}.get(table, "release_id")
    for statement in (f"INSERT INTO coordinator.{table} SELECT * FROM coordinator.{table}",
                      f"UPDATE coordinator.{table} SET {column} = {column}", f"DELETE FROM coordinator.{table}",
                      f"TRUNCATE coordinator.{table}"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute(statement)
    assert PostgresAudit(db).verify().ok


def test_release_saves_are_revisions_and_load_returns_the_newest(team_db: TeamDatabase) -> None:
    store = PostgresStore(team_db.connect("ci_bot"), "shop")
    record = release()
    store.save(record)
    record.smoke_result = "passed"
    store.save(record)
    loaded = store.load("shop-1.0.0")
    assert loaded is not None and loaded.smoke_result == "passed"
    assert [r.id for r in store.all()] == ["shop-1.0.0"]
    rows = team_db.connect("bob").execute(
        "SELECT rev, saved_by FROM coordinator.release_revisions ORDER BY rev").fetchall()
    assert rows == [(1, "ci_bot"), (2, "ci_bot")]


def test_a_revision_from_a_newer_coordinator_is_refused_by_every_machine_naming_the_fields(
        team_db: TeamDatabase, machine: Any) -> None:
    PostgresStore(team_db.connect("ci_bot"), "shop").save(release())
    # A newer coordinator's revision: a field this one does not know (written as the owner: the test
    # stands in for a newer client, not an attacker).
    team_db.owner_sql("""UPDATE coordinator.release_revisions SET body = body || '{"rollout_plan": [1, 2]}'::jsonb""")
    result = machine("ops", team_db.dsn("bob")).run("status")
    assert result.returncode == ExitCode.STATE_BACKEND
    assert "release record shop-1.0.0 (coordinator.release_revisions) has fields this coordinator does not know " \
           "(rollout_plan): a newer coordinator wrote it; upgrade coordinator on this machine" in result.stderr
    assert "Traceback" not in result.stderr


# -- approvals the database vouches for ----------------------------------------------


def test_approval_naming_another_login_is_refused_by_the_database(team_db: TeamDatabase) -> None:
    PostgresStore(team_db.connect("ci_bot"), "shop").save(release())
    db = team_db.connect("mallory")
    with pytest.raises(IdentityRefused, match="approval names alice \\(database\\), but the login is mallory"):
        PostgresStore(db, "shop").add_approval(release(), approval("alice"))
    assert team_db.connect("bob").execute("SELECT count(*) FROM coordinator.approvals").fetchone() == (0,)


def test_approval_time_is_the_servers_whatever_the_client_says(team_db: TeamDatabase) -> None:
    PostgresStore(team_db.connect("ci_bot"), "shop").save(release())
    store = PostgresStore(team_db.connect("alice"), "shop")
    future = approval("alice").model_copy(update={"confirmed_at": datetime(2099, 1, 1, tzinfo=UTC)})
    store.add_approval(release(), future)
    loaded = store.load("shop-1.0.0")
    assert loaded is not None and abs((loaded.approvals[0].confirmed_at - datetime.now(UTC)).total_seconds()) < 60


def test_one_identity_counts_once_even_from_a_modified_client(team_db: TeamDatabase) -> None:
    PostgresStore(team_db.connect("ci_bot"), "shop").save(release())
    store = PostgresStore(team_db.connect("alice"), "shop")
    store.add_approval(release(), approval("alice"))
    with pytest.raises(IdentityRefused, match="alice has already approved v1.0.0"):
        store.add_approval(release(), approval("alice"))
    loaded = store.load("shop-1.0.0")
    assert loaded is not None and [(a.operator, a.verified_by) for a in loaded.approvals] == [("alice", "database")]


def test_an_honest_client_reports_a_changed_artifact_as_the_database_refuses_it(team_db: TeamDatabase) -> None:
    store = PostgresStore(team_db.connect("ci_bot"), "shop")
    store.save(release())
    with pytest.raises(StateBackendError, match="its artifact and releaser are written once") as saved:
        store.save(release(digest="sha256:" + "b" * 64))
    assert saved.value.exit_code == ExitCode.STATE_BACKEND
    with pytest.raises(GateRefused, match="but the release's artifact is v1.0.0 at sha256:aaa") as approved:
        PostgresStore(team_db.connect("alice"), "shop").add_approval(release(), approval("alice", digest="sha256:" + "b" * 64))
    assert approved.value.exit_code == ExitCode.GATE_REFUSED


# -- the shared chain -----------------------------------------------------------------

APPENDER = textwrap.dedent("""
    import sys
    from coordinator.audit import AuditEvent
    from coordinator.state.pg_audit import PostgresAudit
    from coordinator.state.postgres import Database
    audit = PostgresAudit(Database(sys.argv[1]))
    for i in range(int(sys.argv[2])):
        audit.append(AuditEvent.LOCK_ACQUIRED, operator=sys.argv[3], data={"i": i})
""")


def test_concurrent_appends_from_two_processes_keep_one_valid_chain(team_db: TeamDatabase) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writers = [subprocess.Popen([sys.executable, "-c", APPENDER, team_db.dsn(role), "60", role], env=env)
               for role in ("alice", "bob")]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    audit = PostgresAudit(team_db.connect("ci_bot"))
    result = audit.verify()
    assert result.ok and result.count == 120, result
    operators = [record.operator for record in audit.records()]
    assert operators.count("alice") == operators.count("bob") == 60


def test_an_append_that_does_not_link_to_the_head_cannot_fork_the_chain(team_db: TeamDatabase) -> None:
    db = team_db.connect("mallory")
    audit = PostgresAudit(db)
    first = audit.append(AuditEvent.RELEASE_STARTED, operator="mallory")
    second = audit.append(AuditEvent.RELEASE_STARTED, operator="mallory")
    fork = json.loads(second.model_copy(update={"hash": ""}).to_line())
    del fork["hash"]
    fork["prev_hash"] = first.hash
    with pytest.raises(psycopg.Error, match="audit record 2 does not link to the chain head") as refused:
        db.execute("SELECT coordinator.append_audit(%s)", (canonical_json(fork),))
    assert refused.value.sqlstate == RECORD_STATE
    assert audit.verify().ok and audit.verify().count == 2


def test_audit_verify_names_a_record_changed_by_the_owner(team_db: TeamDatabase, machine: Any) -> None:
    audit = PostgresAudit(team_db.connect("alice"))
    for _ in range(3):
        audit.append(AuditEvent.RELEASE_STARTED, operator="alice")
    ops = machine("ops", team_db.dsn("bob"))
    assert ops.run("audit", "verify").returncode == 0
    team_db.owner_sql("UPDATE coordinator.audit_records SET line = replace(line, 'alice', 'eve') WHERE seq = 2")
    result = ops.run("audit", "verify")
    assert result.returncode == ExitCode.AUDIT_BROKEN
    assert "audit chain broken at seq 2: hash mismatch" in result.stderr


# -- the run lock ---------------------------------------------------------------------

HOLDER = textwrap.dedent("""
    import sys, time
    from coordinator.state.postgres import Database, PostgresStore
    with PostgresStore(Database(sys.argv[1]), "shop").locked("release 1.0.0", release_id="shop-1.0.0"):
        print("held", flush=True)
        time.sleep(120)
""")


def test_run_lock_names_its_holder_and_is_freed_when_the_holder_dies(team_db: TeamDatabase) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, team_db.dsn("ci_bot")], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        store = PostgresStore(team_db.connect("alice"), "shop")
        with pytest.raises(LockHeld, match=r"shop-1.0.0 is in use by coordinator pid \d+ on .*release 1.0.0 \(role ci_bot\)"):
            with store.locked("approve 1.0.0", release_id="shop-1.0.0"):
                pass
        with store.locked("approve 1.1.0", release_id="shop-1.1.0"):
            pass  # another release is not blocked
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        deadline = time.monotonic() + 10
        while True:  # the server notices the dead session within moments
            try:
                with store.locked("approve 1.0.0", release_id="shop-1.0.0"):
                    break
            except LockHeld:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        holder.kill()
        holder.wait(timeout=10)


# -- state import ---------------------------------------------------------------------


def local_state(directory: Path) -> AuditLog:
    store = ReleaseStore(directory)
    record = release()
    record.approvals.append(approval("ann", verified_by="local"))
    store.save(record)
    log = AuditLog(store.audit_path)
    log.append(AuditEvent.RELEASE_STARTED, operator="ci", release_id=record.id, version="1.0.0")
    log.append(AuditEvent.APPROVAL_RECORDED, operator="ann", release_id=record.id, version="1.0.0")
    return log


def test_state_import_moves_a_verified_local_dir_keeping_its_hashes(team_db: TeamDatabase, machine: Any,
                                                                    tmp_path: Path) -> None:
    log = local_state(tmp_path / "old-state")
    refused = machine("alice", team_db.dsn("alice")).run("state", "import", str(tmp_path / "old-state"))
    assert refused.returncode == ExitCode.STATE_BACKEND
    assert "`state import` writes history directly and needs the schema owner's login" in refused.stderr
    ops = machine("ops", team_db.dsn(OWNER))
    result = ops.run("state", "import", str(tmp_path / "old-state"))
    assert result.returncode == 0, result.stderr
    assert f"imported 1 release record(s) and 2 audit record(s)" in result.stdout and log.head_hash() in result.stdout
    other = machine("laptop", team_db.dsn("bob"))
    verify = other.run("audit", "verify")
    assert verify.returncode == 0 and f"2 record(s), head {log.head_hash()}" in verify.stdout
    assert "1.0.0" in other.run("status").stdout
    again = ops.run("state", "import", str(tmp_path / "old-state"))
    assert again.returncode == ExitCode.USAGE and "already has an audit chain" in again.stderr


def test_state_import_refuses_a_tampered_chain_and_imports_nothing(team_db: TeamDatabase, machine: Any,
                                                                   tmp_path: Path) -> None:
    log = local_state(tmp_path / "old-state")
    log.path.write_text(log.path.read_text().replace('"ann"', '"eve"'))
    ops = machine("ops", team_db.dsn(OWNER))
    result = ops.run("state", "import", str(tmp_path / "old-state"))
    assert result.returncode == ExitCode.AUDIT_BROKEN
    assert "does not verify (seq 2: hash mismatch" in result.stderr and "nothing imported" in result.stderr
    assert ops.run("status").stdout.strip() == "no releases yet"
    assert PostgresAudit(team_db.connect("bob")).head_hash() is None


# -- config ---------------------------------------------------------------------------


@pytest.mark.parametrize("approvals", [{"required": 2}, {"forbid_self_approval": True}])
def test_config_check_refuses_unauthenticated_identity_where_it_matters(machine: Any, approvals: dict[str, Any]) -> None:
    result = machine("ops", None, approvals=approvals, state={"backend": "local"}).run("config", "check")
    assert result.returncode == ExitCode.USAGE
    assert "needs verified approvers, but identity is 'local'" in result.stderr
    assert "set approvals.identity to forge or database" in result.stderr


def test_database_identity_needs_the_postgres_backend(machine: Any) -> None:
    result = machine("ops", None, approvals={"identity": "database"}, state={"backend": "local"}).run("config", "check")
    assert result.returncode == ExitCode.USAGE
    assert "approvals.identity 'database' needs state.backend 'postgres'" in result.stderr


def test_store_errors_are_state_backend_errors(team_db: TeamDatabase) -> None:
    team_db.owner_sql("INSERT INTO coordinator.schema_version (version) VALUES (99)")
    with pytest.raises(StateBackendError):
        _ = team_db.connect("alice").conn


def test_metrics_and_audit_show_read_the_shared_chain_from_any_machine(team_db: TeamDatabase, machine: Any) -> None:
    audit = PostgresAudit(team_db.connect("ci_bot"))
    audit.append(AuditEvent.DEPLOY_VERIFIED, operator="ci", release_id="shop-1.0.0", version="1.0.0",
                 environment="production", outcome="verified", data={"commit_time": datetime.now(UTC).isoformat()})
    laptop = machine("laptop", team_db.dsn("alice"))
    metrics = laptop.run("metrics", "--json")
    assert metrics.returncode == 0, metrics.stderr
    assert '"production"' in metrics.stdout
    shown = laptop.run("audit", "show")
    assert shown.returncode == 0 and "deploy.verified" in shown.stdout and "ci" in shown.stdout


# -- the gate policy ------------------------------------------------------------------


def test_the_owner_sets_the_gate_policy_and_everyone_reads_it(team_db: TeamDatabase, machine: Any) -> None:
    owner = machine("dba", team_db.dsn(OWNER))
    set_ = owner.run("state", "policy", "--approvers", "Alice, bob", "--bots", "ci_bot", "--required", "2",
                     "--forbid-self-approval")
    assert set_.returncode == 0, set_.stderr
    expected = ("required 2; approvers alice, bob; bots ci_bot; self-approval forbidden "
                f"(set by {OWNER})")
    assert expected in set_.stdout
    shown = machine("laptop", team_db.dsn("mallory")).run("state", "policy")
    assert shown.returncode == 0 and expected in shown.stdout
    partial = owner.run("state", "policy", "--allow-self-approval")  # the other fields stay
    assert "required 2; approvers alice, bob; bots ci_bot; self-approval allowed" in partial.stdout


def test_a_policy_name_that_is_no_login_is_refused_naming_it(team_db: TeamDatabase, machine: Any) -> None:
    result = machine("dba", team_db.dsn(OWNER)).run("state", "policy", "--approvers", "alice,bob; drop table x")
    assert result.returncode == ExitCode.USAGE
    assert "--approvers: 'bob; drop table x' is not a login or role name" in result.stderr
    shown = machine("laptop", team_db.dsn("bob")).run("state", "policy")
    assert "approvers any login" in shown.stdout
