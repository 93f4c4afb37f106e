"""Insider drills: the team-mode gate against people who do not use the coordinator honestly.

Each test plays one attack from issue 18 with nothing but a database login and raw SQL
(psycopg against the real throwaway PostgreSQL cluster, like `psql`), and asserts what
the operator would see afterwards: the database's refusal (its SQLSTATE and message),
the CLI's exit code and one-line reason, the gate still closed (`resume` exits 4), the
release record unchanged, and `audit verify` still passing.

The team: ci_bot (the CI job, a bot), alice and bob (approvers), mallory (a developer,
not an approver) and dave (a developer who started release 1.0.0 from his own machine; a
release the bot starts needs a CI run on record, `tests/drills/test_ci_releaser_drills.py`).
The owner's gate policy: two approvals from alice or bob, no self-approval, ci_bot never
approves.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from coordinator.audit import AuditEvent, canonical_json
from coordinator.errors import ExitCode
from coordinator.release import Approval, BuildInfo, Release, ReleaseStatus, Stage
from coordinator.state.pg_audit import PostgresAudit
from coordinator.state.postgres import Database, PostgresStore
from coordinator.state.schema import MIGRATIONS, SCHEMA, VERSION_TABLE
from coordinator.state.schema_v2 import IDENTITY_STATE, RECORD_STATE
from tests.sandbox.postgres import APP_ROLE, OWNER, PostgresCluster
from tests.pg import Machine, TeamDatabase, fresh_database, machine_factory, running_cluster

DIGEST = "sha256:" + "a" * 64
OTHER_DIGEST = "sha256:" + "e" * 64
APPROVALS = {"identity": "database", "required": 2, "forbid_self_approval": True, "approvers": ["alice", "bob"]}


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[PostgresCluster]:
    yield from running_cluster()


@pytest.fixture
def team_db(pg_cluster: PostgresCluster) -> TeamDatabase:
    """A migrated database whose owner has set the gate policy, with release 1.0.0 at the gate."""
    team = fresh_database(pg_cluster)
    owner(team).run("state", "policy", "--approvers", "alice,bob", "--bots", "ci_bot", "--required", "2",
                    "--forbid-self-approval")
    PostgresStore(team.connect("dave"), "shop").save(at_gate("1.0.0", releaser="dave"))
    return team


@pytest.fixture
def machines(tmp_path: Path) -> Any:
    return machine_factory(tmp_path)


def owner(team: TeamDatabase) -> Machine:
    return machine_factory(Path(team.cluster.root) / f"owner-{team.name}")("owner", team.dsn(OWNER), approvals=APPROVALS)


def at_gate(version: str, *, releaser: str, digest: str = DIGEST) -> Release:
    """A release that passed staging and waits at the production gate."""
    return Release(id=f"shop-{version}", project="shop", version=version, tag=f"v{version}", operator=releaser,
                   releaser=releaser, releaser_verified_by="database", commit_sha="c" * 40, smoke_result="passed",
                   status=ReleaseStatus.AWAITING_APPROVAL,
                   completed=[Stage.VALIDATE, Stage.TAG, Stage.BUILD, Stage.STAGE],
                   build=BuildInfo(run_id="7", run_url="http://127.0.0.1/run/7", conclusion="success",
                                   image="127.0.0.1:5000/shop", digest=digest))


def raw(team: TeamDatabase, login: str, *, options: str | None = None) -> psycopg.Connection[Any]:
    """A plain psql-like session: no coordinator code between the attacker and the server."""
    dsn = team.dsn(login)
    if options is not None:
        dsn += "&options=" + urllib.parse.quote(options)
    return psycopg.connect(dsn, autocommit=True)


def approve_sql(conn: psycopg.Connection[Any], identity: str, *, verified_by: str = "database", version: str = "1.0.0",
                digest: str = DIGEST) -> None:
    conn.execute("SELECT coordinator.record_approval(%s, %s, %s, NULL, %s, %s, '7', %s, 'passed', NULL)",
                 (f"shop-{version}", identity, verified_by, f"v{version}", "c" * 40, digest))


def refused(match: str) -> Any:
    """pytest.raises for one of the database's refusals; `assert_state` then checks its SQLSTATE."""
    return pytest.raises(psycopg.Error, match=match)


def assert_state(excinfo: Any, sqlstate: str) -> None:
    assert excinfo.value.sqlstate == sqlstate, (excinfo.value.sqlstate, str(excinfo.value))


def gate_is_closed(machine: Machine, missing: int = 2) -> None:
    resumed = machine.run("resume", "1.0.0")
    assert resumed.returncode == ExitCode.AWAITING_APPROVAL, resumed.stdout + resumed.stderr
    assert f"v1.0.0 awaits {missing} approval(s) for production" in resumed.stderr


def audit_verifies(machine: Machine) -> None:
    verified = machine.run("audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert "audit chain intact" in verified.stdout


def approvals_in_db(team: TeamDatabase) -> list[tuple[str, str]]:
    with raw(team, "bob") as conn:
        return [(str(a), str(b)) for a, b in conn.execute(
            "SELECT identity, verified_by FROM coordinator.approvals ORDER BY id").fetchall()]


# -- role switch: identity is the login --------------------------------------------------------------


def test_approving_as_the_group_role_through_the_dsn_is_refused(team_db: TeamDatabase, machines: Any) -> None:
    switched = team_db.dsn("alice") + "&options=" + urllib.parse.quote(f"-crole={APP_ROLE}")
    result = machines("alice", switched, approvals=APPROVALS).run("approve", "1.0.0")
    assert result.returncode == ExitCode.IDENTITY_REFUSED == 18, result.stdout + result.stderr
    assert f"the database session of alice acts as role {APP_ROLE}: connect as your own login" in result.stderr
    with raw(team_db, "alice", options=f"-crole={APP_ROLE}") as conn:  # a modified client skips that check
        with refused(f"session of alice switched to role {APP_ROLE}") as excinfo:
            approve_sql(conn, APP_ROLE)
        assert_state(excinfo, IDENTITY_STATE)
    assert approvals_in_db(team_db) == []
    gate_is_closed(machines("carol", team_db.dsn("bob"), approvals=APPROVALS))


@pytest.mark.parametrize("write", ["save_release", "record_approval", "append_audit"])
def test_set_role_is_refused_for_every_write(team_db: TeamDatabase, write: str) -> None:
    calls = {
        "save_release": ("SELECT coordinator.save_release(%s)",
                         (json.dumps(at_gate("1.1.0", releaser=APP_ROLE).model_dump(mode="json")),)),
        "record_approval": ("SELECT coordinator.record_approval('shop-1.0.0', %s, 'database', NULL, 'v1.0.0', %s, '7',"
                            " %s, 'passed', NULL)", (APP_ROLE, "c" * 40, DIGEST)),
        "append_audit": ("SELECT coordinator.append_audit(%s)", ("{}",)),
    }
    statement, params = calls[write]
    with raw(team_db, "alice") as conn:
        conn.execute(f"SET ROLE {APP_ROLE}")
        with refused(f"session of alice switched to role {APP_ROLE}") as excinfo:
            conn.execute(statement.encode(), params)
        assert_state(excinfo, IDENTITY_STATE)


def test_a_session_of_a_nologin_role_is_refused(team_db: TeamDatabase) -> None:
    # Only a superuser can start one (SET SESSION AUTHORIZATION); the check still holds.
    with psycopg.connect(team_db.cluster.superuser_dsn(team_db.name), autocommit=True) as conn:
        conn.execute(f"SET SESSION AUTHORIZATION {APP_ROLE}")
        with refused(f"role {APP_ROLE} is not a login role") as excinfo:
            approve_sql(conn, APP_ROLE)
        assert_state(excinfo, IDENTITY_STATE)


# -- approvals are the database's, not the client's ----------------------------------------------


def test_inserted_approval_rows_naming_others_are_refused_and_the_gate_stays_closed(team_db: TeamDatabase,
                                                                                      machines: Any) -> None:
    with raw(team_db, "mallory") as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("""INSERT INTO coordinator.approvals (release_id, identity, verified_by, db_role, tag,
                                commit_sha, run_id, digest, smoke, confirmed_at)
                            VALUES ('shop-1.0.0', 'bob', 'forge', 'mallory', 'v1.0.0', %s, '7', %s, 'passed',
                                    now() + interval '1 year')""", ("c" * 40, DIGEST))
        for name, how in (("alice", "forge"), ("bob", "forge"), ("carol", "forge"), ("bob", "database")):
            with refused(f"approval names {name} \\({how}\\), but the login is mallory") as excinfo:
                approve_sql(conn, name, verified_by=how)
            assert_state(excinfo, IDENTITY_STATE)
    assert approvals_in_db(team_db) == []
    laptop = machines("mallory", team_db.dsn("mallory"), approvals=APPROVALS)
    gate_is_closed(laptop)
    audit_verifies(laptop)


def test_a_login_outside_the_policy_cannot_approve_even_if_its_config_allows_it(team_db: TeamDatabase,
                                                                                 machines: Any) -> None:
    lenient = {**APPROVALS, "approvers": [], "required": 1}  # mallory's own copy of the config
    result = machines("mallory", team_db.dsn("mallory"), approvals=lenient).run("approve", "1.0.0")
    assert result.returncode == ExitCode.IDENTITY_REFUSED, result.stdout + result.stderr
    assert "the database refused the approval of v1.0.0: mallory may not approve: the gate policy allows alice, bob" \
        in result.stderr
    assert approvals_in_db(team_db) == []
    gate_is_closed(machines("mallory2", team_db.dsn("mallory"), approvals=lenient))  # the owner's `required` wins


def test_the_ci_bot_never_approves(team_db: TeamDatabase) -> None:
    owner(team_db).run("state", "policy", "--approvers", "")  # even with any login allowed
    with raw(team_db, "ci_bot") as conn, refused("ci_bot is a bot account") as excinfo:
        approve_sql(conn, "ci_bot")
    assert_state(excinfo, IDENTITY_STATE)


def test_an_approval_of_another_artifact_is_refused(team_db: TeamDatabase) -> None:
    with raw(team_db, "alice") as conn, refused("but the release's artifact is v1.0.0 at sha256:aaa") as excinfo:
        approve_sql(conn, "alice", digest=OTHER_DIGEST)
    assert_state(excinfo, RECORD_STATE)


def test_one_login_approving_under_both_identity_modes_is_still_one_vote(team_db: TeamDatabase, machines: Any) -> None:
    with raw(team_db, "alice") as conn:
        approve_sql(conn, "alice", verified_by="database")
        approve_sql(conn, "Alice", verified_by="forge")  # a team switching modes mid-release is not locked out
        with pytest.raises(psycopg.errors.UniqueViolation):
            approve_sql(conn, "ALICE", verified_by="forge")
    assert approvals_in_db(team_db) == [("alice", "database"), ("alice", "forge")]
    gate_is_closed(machines("carol", team_db.dsn("bob"), approvals=APPROVALS), missing=1)
    # Under identity: forge rows count for nothing at all (tests/drills/test_forge_approval_drills.py).


def test_the_approval_time_is_the_servers(team_db: TeamDatabase) -> None:
    store = PostgresStore(team_db.connect("alice"), "shop")
    forged = Approval(operator="alice", confirmed_at=datetime.now(UTC) + timedelta(days=365), tag="v1.0.0",
                      commit_sha="c" * 40, run_id="7", digest=DIGEST, smoke="passed", verified_by="database")
    store.add_approval(at_gate("1.0.0", releaser="dave"), forged)
    with raw(team_db, "bob") as conn:
        row = conn.execute("SELECT confirmed_at <= now() AND confirmed_at > now() - interval '1 minute' "
                           "FROM coordinator.approvals").fetchone()
    assert row == (True,)


def test_an_approver_removed_from_the_policy_no_longer_counts_at_the_gate(team_db: TeamDatabase,
                                                                          machines: Any) -> None:
    team_db.cluster.execute("CREATE ROLE release_managers NOLOGIN")
    try:
        team_db.cluster.execute("GRANT release_managers TO alice", "GRANT release_managers TO bob")
        owner(team_db).run("state", "policy", "--approvers", "release_managers")
        for login in ("alice", "bob"):
            approved = machines(login, team_db.dsn(login), approvals={**APPROVALS, "approvers": []}).run("approve",
                                                                                                        "1.0.0")
            assert approved.returncode == 0, approved.stderr
        team_db.cluster.execute("REVOKE release_managers FROM bob")
        gate_is_closed(machines("carol", team_db.dsn("alice"), approvals={**APPROVALS, "approvers": []}), missing=1)
    finally:
        team_db.cluster.execute("DROP OWNED BY release_managers", "DROP ROLE release_managers")


# -- the release record: artifact and releaser are written once ---------------------------------


def test_a_revision_that_changes_the_releaser_or_the_digest_is_refused(team_db: TeamDatabase, machines: Any) -> None:
    recorded = at_gate("1.0.0", releaser="dave")
    swaps = {"releaser": recorded.model_copy(update={"releaser": "release-bot"}),
             "digest": recorded.model_copy(update={"build": recorded.build.model_copy(update={"digest": OTHER_DIGEST})}
                                           if recorded.build else None)}
    with raw(team_db, "alice") as conn:
        for what, revision in swaps.items():
            with refused("its artifact and releaser are written once") as excinfo:
                conn.execute("SELECT coordinator.save_release(%s)",
                             (json.dumps(revision.model_dump(mode="json")),))
            assert_state(excinfo, RECORD_STATE)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO coordinator.release_revisions (release_id, rev, project, body) "
                         "VALUES ('shop-1.0.0', 99, 'shop', '{}')")
    status = machines("bob", team_db.dsn("bob"), approvals=APPROVALS).run("status", "--json")
    shown = next(r for r in json.loads(status.stdout) if r["version"] == "1.0.0")
    assert shown["build"]["digest"] == DIGEST and shown["releaser"] == "dave"


def test_naming_another_releaser_at_the_start_does_not_allow_self_approval(team_db: TeamDatabase,
                                                                            machines: Any) -> None:
    with raw(team_db, "alice") as conn:  # alice starts 1.1.0 with a client that claims the bot started it
        conn.execute("SELECT coordinator.save_release(%s)",
                     (json.dumps(at_gate("1.1.0", releaser="release-bot").model_dump(mode="json")),))
        with refused("alice started release shop-1.1.0 and self-approval is forbidden") as excinfo:
            approve_sql(conn, "alice", version="1.1.0")
        assert_state(excinfo, IDENTITY_STATE)
    result = machines("alice", team_db.dsn("alice"), approvals=APPROVALS).run("approve", "1.1.0")
    assert result.returncode == ExitCode.IDENTITY_REFUSED  # the client reads the database's row, as the database does
    assert "alice (database role) started this release and self-approval is forbidden" in result.stderr


# -- the audit chain: the server hashes, checks the link and the writer ----------------------------


def next_record(team: TeamDatabase, login: str, **fields: Any) -> dict[str, Any]:
    """A well-formed next record for `login`, before the attacker's changes in `fields`."""
    with raw(team, login) as conn:
        head = conn.execute("SELECT seq, hash FROM coordinator.audit_records ORDER BY seq DESC LIMIT 1").fetchone()
    return {"seq": head[0] + 1 if head else 1, "ts": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "event": "lock.acquired", "operator": login, "release_id": None, "version": None, "environment": None,
            "outcome": None, "data": {}, "prev_hash": head[1] if head else None, "writer": login, **fields}


FORGED = {
    "approval naming bob": ({"event": "approval.recorded", "operator": "bob", "release_id": "shop-1.0.0"},
                            IDENTITY_STATE, "approval.recorded names bob for shop-1.0.0, but mallory recorded no such"),
    "another writer": ({"writer": "bob"}, IDENTITY_STATE, "names writer bob, but the login is mallory"),
    "a hash of its own": ({"hash": "junk"}, RECORD_STATE, "has field hash"),
    "an unknown event": ({"event": "gate.bypassed"}, RECORD_STATE, "is malformed"),
    "a time next year": ({"ts": "2099-01-01T00:00:00.000000Z"}, RECORD_STATE, "more than 10 minutes from the server"),
    "a seq off the head": ({"seq": 7}, RECORD_STATE, "does not link to the chain head"),
    "a forked prev_hash": ({"prev_hash": "f" * 64}, RECORD_STATE, "does not link to the chain head"),
}


@pytest.mark.parametrize("attack", sorted(FORGED))
def test_forged_and_junk_audit_records_are_refused_and_the_chain_still_verifies(team_db: TeamDatabase,
                                                                                machines: Any, attack: str) -> None:
    PostgresAudit(team_db.connect("alice")).append(AuditEvent.RELEASE_STARTED, operator="alice")
    changes, sqlstate, message = FORGED[attack]
    with raw(team_db, "mallory") as conn, refused(message) as excinfo:
        conn.execute("SELECT coordinator.append_audit(%s)", (canonical_json(next_record(team_db, "mallory", **changes)),))
    assert_state(excinfo, sqlstate)
    laptop = machines("bob", team_db.dsn("bob"), approvals=APPROVALS)
    audit_verifies(laptop)
    after = PostgresAudit(team_db.connect("bob")).append(AuditEvent.LOCK_ACQUIRED, operator="bob")
    assert after.seq == 2  # appends still work: nothing junk got in
    audit_verifies(laptop)


def test_junk_text_and_raw_inserts_never_reach_the_chain(team_db: TeamDatabase, machines: Any) -> None:
    with raw(team_db, "mallory") as conn:
        for junk in ("not json", "[1, 2]", canonical_json({**next_record(team_db, "mallory"), "data": "x"})):
            with refused("audit record") as excinfo:
                conn.execute("SELECT coordinator.append_audit(%s)", (junk,))
            assert_state(excinfo, RECORD_STATE)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO coordinator.audit_records (seq, hash, prev_hash, line) VALUES (1, 'junk', NULL, '{}')")
    audit_verifies(machines("bob", team_db.dsn("bob"), approvals=APPROVALS))


def test_the_writer_is_hashed_and_shown_whatever_operator_label_a_client_sends(team_db: TeamDatabase,
                                                                               machines: Any) -> None:
    written = PostgresAudit(team_db.connect("mallory")).append(AuditEvent.LOCK_ACQUIRED, operator="bob")
    assert written.writer == "mallory"
    shown = machines("alice", team_db.dsn("alice"), approvals=APPROVALS).run("audit", "show")
    assert shown.returncode == 0 and "bob (written by mallory)" in shown.stdout
    team_db.owner_sql("UPDATE coordinator.audit_records SET line = replace(line, '\"writer\":\"mallory\"', "
                      "'\"writer\":\"bob\"')")  # even the owner cannot re-attribute it unnoticed
    broken = machines("bob", team_db.dsn("bob"), approvals=APPROVALS).run("audit", "verify")
    assert broken.returncode == ExitCode.AUDIT_BROKEN and "broken at seq 1: hash mismatch" in broken.stderr


# -- search_path: the functions cannot be fooled by the caller's objects --------------------------


def test_a_temporary_policy_table_does_not_shadow_the_owners(team_db: TeamDatabase) -> None:
    team_db.cluster.execute(f"GRANT TEMPORARY ON DATABASE {team_db.name} TO mallory")
    with raw(team_db, "mallory") as conn:
        conn.execute("CREATE TEMP TABLE gate_policy AS SELECT * FROM coordinator.gate_policy")
        conn.execute("UPDATE pg_temp.gate_policy SET approvers = '{mallory}', forbid_self_approval = false")
        conn.execute("SET search_path = pg_temp, coordinator, public")
        with refused("mallory may not approve: the gate policy allows alice, bob") as excinfo:
            approve_sql(conn, "mallory")
        assert_state(excinfo, IDENTITY_STATE)


def test_application_roles_cannot_call_the_internal_identity_helper_or_change_the_policy(team_db: TeamDatabase,
                                                                                        machines: Any) -> None:
    with raw(team_db, "mallory") as conn:
        for statement in ("UPDATE coordinator.gate_policy SET approvers = '{mallory}'",
                          "SELECT coordinator.acting_login()"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement.encode())
    result = machines("mallory", team_db.dsn("mallory"), approvals=APPROVALS).run(
        "state", "policy", "--approvers", "mallory")
    assert result.returncode == ExitCode.STATE_BACKEND
    assert "only the schema owner's login may set the gate policy" in result.stderr


# -- migrating a version-1 database: what was forged there counts for nothing ---------------------


def v1_database(cluster: PostgresCluster) -> TeamDatabase:
    team = fresh_database(cluster, migrated=False)
    db = Database(team.dsn(OWNER), check_schema=False)
    try:
        with db.conn.transaction():
            db.conn.execute(f"CREATE SCHEMA {SCHEMA}".encode())
            db.conn.execute(VERSION_TABLE.encode())
            for statement in MIGRATIONS[0](APP_ROLE):
                db.conn.execute(statement.encode())
            db.conn.execute(f"INSERT INTO {SCHEMA}.schema_version (version) VALUES (1)".encode())
    finally:
        db.close()
    return team


def test_state_migrate_moves_a_v1_database_and_its_forged_rows_stop_counting(pg_cluster: PostgresCluster,
                                                                              machines: Any) -> None:
    team = v1_database(pg_cluster)
    record = at_gate("1.0.0", releaser="dave")
    with raw(team, "mallory") as conn:  # version 1 let any login write this
        conn.execute("INSERT INTO coordinator.release_revisions (release_id, rev, project, body) VALUES (%s, 1, 'shop', %s)",
                     (record.id, json.dumps(record.model_dump(mode="json"))))
        for name in ("alice", "bob"):
            conn.execute("""INSERT INTO coordinator.approvals (release_id, identity, verified_by, tag, commit_sha,
                                run_id, digest, smoke, confirmed_at)
                            VALUES ('shop-1.0.0', %s, 'forge', 'v1.0.0', %s, '7', %s, 'passed', now())""",
                         (name, "c" * 40, DIGEST))
    migrated = machines("owner", team.dsn(OWNER), approvals=APPROVALS).run("state", "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "schema version 1 → 2" in migrated.stdout
    laptop = machines("bob", team.dsn("bob"), approvals={**APPROVALS, "identity": "forge"})
    shown = next(r for r in json.loads(laptop.run("status", "--json").stdout) if r["version"] == "1.0.0")
    assert [(a["operator"], a["verified_by"]) for a in shown["approvals"]] == \
        [("alice", "forge unchecked"), ("bob", "forge unchecked")]
    gate_is_closed(machines("bob2", team.dsn("bob"), approvals=APPROVALS))
    audit_verifies(laptop)
