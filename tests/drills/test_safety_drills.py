"""Safety never waits on bookkeeping: drills through the CLI on the real world.

A full state dir, a stopped database or a killed lock session in the middle of a release must
not keep production on a broken release, keep a person from being paged, or let two deploys
run at once; what could not be written is spooled and appended by the next command, and a
digest that failed is not deployed again by accident. docs/safety.md describes the same.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from coordinator.errors import ExitCode
from coordinator.state.postgres import advisory_key
from tests.sandbox.coordinator_config import PRODUCTION_URL, sandbox_config, write_sandbox_config
from tests.sandbox.postgres import HOST, PostgresCluster, _bin
from tests.drills.conftest import (
    HEALTH_TIMEOUT_S,
    SANDBOX_RECORDS,
    PartSwitch,
    audit_events,
    empty_staging,
    escalations,
    host_record,
    inventory_copy,
    lock_status,
    one_line_error,
    push_variant,
    running_digest,
    to_production_gate,
    variant_at_the_gate,
)
from tests.integration.conftest import WORLD_DIR, ReleaseWorld
from tests.pg import TeamDatabase, WorldMachine as Machine, fresh_database, running_cluster

pytestmark = pytest.mark.world

PROD = "sample-prod1"
WAIT_S = 120.0


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.1)


def prod_runs_version(version: str) -> Callable[[], bool]:
    """True once the host record says `version` is being deployed (the deploy's intent, before its health wait)."""
    def check() -> bool:
        try:
            return (host_record(PROD).get("current") or {}).get("version") == version
        except (OSError, ValueError):
            return False
    return check


def started(argv: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            env=env)


@contextmanager
def reaped(process: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """`process`, killed and reaped on the way out if a step in between failed."""
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def finish(process: subprocess.Popen[str], timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
    try:
        out, err = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate(timeout=30)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def spool_entries(state_dir: Path) -> list[dict[str, Any]]:
    path = state_dir / "spool" / "pending.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_bytes().rstrip(b"\0").splitlines() if line.strip()]


def fill(directory: Path) -> Path:
    """Write zeros into `directory` until its filesystem refuses (ENOSPC), to the last byte."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (64 * 1024, 1):
            try:
                while os.write(fd, b"\0" * size):
                    pass
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


@pytest.fixture
def small_state_dir(release_world: ReleaseWorld) -> Iterator[Path]:
    """rw.state_dir on an 8 MiB tmpfs of its own, unmounted whatever happens.

    Nothing of the rollback's own playbook run lives there: ansible-runner's private dirs are
    outside the state dir (coordinator/runner_scratch.py), the run log is best effort."""
    state_dir = release_world.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(state_dir)], check=True, timeout=30)
    try:
        yield state_dir
    finally:
        subprocess.run(["umount", "-l", str(state_dir)], check=False, timeout=30)


# -- 1. local mode: the state dir's filesystem is full at the audit append --------------------

def test_a_full_state_dir_does_not_stop_the_rollback_or_the_page_and_the_spool_catches_up(
        release_world: ReleaseWorld, small_state_dir: Path, tmp_path: Path) -> None:
    rw = release_world
    variant_at_the_gate(rw, tmp_path, "broken-health")
    good = running_digest(PROD)  # still 1.0.0: the gate changes nothing in production

    resume = started([sys.executable, "-m", "coordinator", "-c", str(rw.config), "resume"],
                     {**os.environ, "COORDINATOR_OPERATOR": "release-manager"})
    try:
        wait_until(prod_runs_version("1.1.0"), "the broken release to reach production")
        filler = fill(small_state_dir)  # full during the health wait: every record after it fails
    finally:
        result = finish(resume)

    assert result.returncode == ExitCode.ROLLED_BACK, result.stdout + result.stderr
    assert "rolled back to 1.0.0" in one_line_error(result)
    assert "could not be written (No space left on device" in result.stderr
    assert f"kept in {small_state_dir / 'spool' / 'pending.jsonl'}: the next command appends it" in result.stderr
    [page] = escalations(rw)
    assert "ROLLED BACK v1.1.0 on production" in page
    assert running_digest(PROD) == good
    assert httpx.get(f"{PRODUCTION_URL}/version").text.strip() == "1.0.0"
    # What still fit (the audit log's last page) was written, and a later append in the same
    # command drains what waited; the new release record file needs space the disk does not have.
    kept = spool_entries(small_state_dir)
    assert [e["body"]["status"] for e in kept if e["kind"] == "release"] == ["rolled_back"]
    assert (small_state_dir / "spool" / "pending.jsonl").stat().st_mode & 0o777 == 0o600

    filler.unlink()  # space returns
    verified = rw.coordinator("audit", "verify")
    assert verified.returncode == ExitCode.OK, verified.stdout + verified.stderr
    assert f"appended {len(kept)} delayed record(s)" in verified.stderr
    assert "audit chain intact" in verified.stdout and "torn" not in verified.stdout
    shown = json.loads(rw.coordinator("audit", "show", "--json", "--limit", "500").stdout)
    of_1_1_0 = [e["event"] for e in shown if e.get("version") == "1.1.0"]
    assert of_1_1_0.index("deploy.started") < of_1_1_0.index("deploy.failed") < of_1_1_0.index("rollback.completed")
    late = [e for e in shown if "delayed" in e["data"]]
    assert {e["event"] for e in late} >= {e["event"] for e in kept if e["kind"] == "audit"}
    assert all(e["data"]["delayed"]["original_time"] <= e["ts"] for e in late)
    status = json.loads(rw.coordinator("status", "--json").stdout)
    assert next(r for r in status if r["version"] == "1.1.0")["status"] == "rolled_back"
    assert spool_entries(small_state_dir) == []


# -- 4. resume after a failed promote --------------------------------------------------------

def test_resume_of_a_digest_that_failed_is_refused_without_force_even_when_its_record_was_lost(
        release_world: ReleaseWorld, tmp_path: Path) -> None:
    rw = release_world
    variant_at_the_gate(rw, tmp_path, "broken-health")
    good = running_digest(PROD)  # still 1.0.0: the gate changes nothing in production
    before_failure = tmp_path / "state-at-the-gate"
    shutil.copytree(rw.state_dir, before_failure, ignore=shutil.ignore_patterns("coordinator.lock"))
    assert rw.coordinator("resume").returncode == ExitCode.ROLLED_BACK

    again = rw.coordinator("resume", "1.1.0")
    assert again.returncode == ExitCode.DIGEST_FAILED_BEFORE, again.stdout + again.stderr
    assert "failed in production (rolled_back): not deployed again" in one_line_error(again)
    assert "--force --reason TEXT" in one_line_error(again)

    # The failure's records are lost (restored from before it): the hosts still refuse the digest.
    for name in ("releases", "audit.jsonl"):
        target = rw.state_dir / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
        source = before_failure / name
        shutil.copytree(source, target) if source.is_dir() else shutil.copy2(source, target)
    created = container_created(PROD)
    lost = rw.coordinator("resume", "1.1.0")
    assert lost.returncode == ExitCode.DIGEST_FAILED_BEFORE, lost.stdout + lost.stderr
    error = one_line_error(lost)
    assert "production: prod1 refused" in error and "is marked bad on this host" in error, error
    assert "Nothing was changed" in error
    assert running_digest(PROD) == good and container_created(PROD) == created
    assert not any(info.get("held") for info in lock_status(rw, "production").values())

    forced = rw.coordinator("resume", "1.1.0", "--force", "--reason", "drill: try the bad digest once more")
    assert forced.returncode == ExitCode.ROLLED_BACK, forced.stdout + forced.stderr  # deployed, failed again
    assert "/health answered 404" in one_line_error(forced)
    assert running_digest(PROD) == good


# -- a rollback goes to the last verified release; a manual one never runs next to a release run

def test_a_failed_release_goes_back_to_the_last_verified_release_and_a_manual_rollback_waits_for_its_run(
        release_world: ReleaseWorld, tmp_path: Path) -> None:
    rw = release_world
    variant_at_the_gate(rw, tmp_path, "good")
    verified = running_digest(PROD)  # 1.0.0, verified by the coordinator
    # 1.1.0 reaches production, then its command is killed before verify: nobody ever verified it,
    # yet it is the host's "previous" release once 1.2.0 moves in.
    killed = rw.coordinator("resume", env={"COORDINATOR_FAILPOINT": "before:verify"})
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert host_record(PROD)["current"]["version"] == "1.1.0"
    push_variant(rw, "broken-health", "1.2.0")
    to_production_gate(rw, "1.2.0")

    resume = started([sys.executable, "-m", "coordinator", "-c", str(rw.config), "resume", "1.2.0"],
                     {**os.environ, "COORDINATOR_OPERATOR": "release-manager"})
    try:
        wait_until(prod_runs_version("1.2.0"), "the broken release to reach production")
        assert host_record(PROD)["previous"]["version"] == "1.1.0"
        refused = rw.coordinator("rollback", "production", "--reason", "drill: next to a live run")
    finally:
        result = finish(resume)

    assert refused.returncode == ExitCode.LOCKED, refused.stdout + refused.stderr
    error = one_line_error(refused)
    assert "in use by coordinator run " in error and f".{resume.pid}." in error and "(resume 1.2.0, since " in error, error
    assert "rerun `coordinator rollback production`" in error
    assert not [e for e in audit_events(rw) if e["data"].get("reason") == "drill: next to a live run"]

    assert result.returncode == ExitCode.ROLLED_BACK, result.stdout + result.stderr
    assert "rolled back to 1.0.0" in one_line_error(result)
    [page] = escalations(rw)
    assert "ROLLED BACK v1.2.0 on production" in page
    assert running_digest(PROD) == verified
    assert httpx.get(f"{PRODUCTION_URL}/version").text.strip() == "1.0.0"
    assert host_record(PROD)["current"]["version"] == "1.0.0"
    assert not any(info.get("held") for info in lock_status(rw, "production").values())


# -- one host, its SSH connection cut in the middle of the deploy call -------------------------

def test_an_ssh_drop_in_the_deploy_call_is_reported_as_unknown_and_the_lock_state_matches_the_host(
        release_world: ReleaseWorld, sshd_switch: PartSwitch, tmp_path: Path) -> None:
    rw = release_world
    # The one production host's deploy call lasts ~15 s: health must hold for a 15 s stability window.
    variant_at_the_gate(rw, tmp_path, "good", health_timeout_s=90,
                        **inventory_copy(tmp_path, "production", release_health_stable_seconds=15))
    resume = started([sys.executable, "-m", "coordinator", "-c", str(rw.config), "resume"],
                     {**os.environ, "COORDINATOR_OPERATOR": "release-manager"})
    with reaped(resume):
        wait_until(prod_runs_version("1.1.0"), "the deploy call to take the lock and move the host")
        sshd_switch.stop(cut_connections=True)  # sshd and every connection to it gone, mid-call
        try:
            result = finish(resume)
        finally:
            sshd_switch.start()

    assert result.returncode == ExitCode.HOST_UNREACHABLE, result.stdout + result.stderr
    error = one_line_error(result)
    assert "cannot reach prod1 over SSH" in error and "Nothing was changed" not in error, error
    assert "its state is unknown" in error and "may have taken this run's lock (id " in error, error
    assert "`coordinator lock status production`" in error and "`coordinator hosts check production`" in error
    [record] = [r for r in json.loads(rw.coordinator("status", "--json").stdout) if r["version"] == "1.1.0"]
    recorded = record["deployments"]["production"]["lock_id"]
    assert recorded and f"(id {recorded})" in error  # the record keeps the id the host may hold
    # The cut-off call took the lock and moved the host; its first health slice ended unverified, so
    # the lock stays held under this run's id: `lock status` says what the host holds.
    lock_file = SANDBOX_RECORDS / "locks" / f"{PROD}.lock" / "info.json"
    assert json.loads(lock_file.read_text())["lock_id"] == recorded
    lock = host_lock(rw)
    assert lock.get("held") and lock.get("lock_id") == recorded, lock
    assert host_record(PROD)["current"]["version"] == "1.1.0"

    again = rw.coordinator("resume")  # this machine's run is gone: resume re-enters its lock
    assert again.returncode == ExitCode.OK, again.stdout + again.stderr
    assert httpx.get(f"{PRODUCTION_URL}/version").text.strip() == "1.1.0"
    assert not host_lock(rw).get("held") and not lock_file.exists()


def host_lock(rw: ReleaseWorld) -> dict[str, Any]:
    """The production host's deploy lock as `coordinator lock status` reports it."""
    [lock] = lock_status(rw, "production").values()
    return lock


def container_created(name: str) -> str:
    return subprocess.run(["docker", "inspect", "--format", "{{.Created}}", name], capture_output=True, text=True,
                          check=True, timeout=30).stdout.strip()


# -- team mode: the database goes away, a lock session is killed -----------------------------

@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[PostgresCluster]:
    yield from running_cluster()


def team_machine(rw: ReleaseWorld, db: TeamDatabase, root: Path, name: str, role: str, **production: Any) -> Machine:
    directory = root / name
    directory.mkdir(parents=True, exist_ok=True)
    state_dir = directory / "state"
    environments = sandbox_config(rw.world_dir, state_dir)["environments"]
    environments["staging"] = {**environments["staging"], "health_timeout_s": HEALTH_TIMEOUT_S,
                               **empty_staging(directory)}
    environments["production"] = {**environments["production"], "health_timeout_s": HEALTH_TIMEOUT_S, **production}
    config = write_sandbox_config(directory / "coordinator.yml", WORLD_DIR, state_dir, state={"backend": "postgres"},
                                  environments=environments, approvals={"identity": "database"},
                                  notify={"announce": [rw.chat.url("json", "announce")],
                                          "escalate": [rw.chat.url("json", "escalate")]})
    env = {key: value for key, value in os.environ.items() if not key.startswith("COORDINATOR_")}
    env["COORDINATOR_DATABASE_URL"] = db.dsn(role)
    return Machine(name, config, state_dir, env, role)


def pg_ctl(cluster: PostgresCluster, action: str) -> None:
    """Stop or start the cluster's server, keeping its data (what an outage or a restart does)."""
    argv = [_bin("pg_ctl"), "-D", str(cluster.data_dir), "-w", "-t", "60"]
    if action == "stop":
        argv += ["-m", "fast", "stop"]
    else:
        argv += ["-l", str(cluster.root / "server.log"), "-o",
                 f"-c listen_addresses={HOST} -c port={cluster.port} -c unix_socket_directories={cluster.root} "
                 "-c fsync=off", "start"]
    completed = subprocess.run(cluster._as_server_user(argv), capture_output=True, text=True, timeout=90, check=False)
    assert completed.returncode == 0, completed.stderr


def to_gate(machine: Machine, approver: Machine, version: str) -> None:
    first = machine.run("release", version)
    assert first.returncode == ExitCode.AWAITING_APPROVAL, first.stdout + first.stderr
    approved = approver.run("approve", version, operator=approver.login)
    assert approved.returncode == ExitCode.OK, approved.stdout + approved.stderr


def test_database_stopped_in_the_health_wait_still_rolls_back_pages_and_catches_up(
        release_world: ReleaseWorld, pg_cluster: PostgresCluster, tmp_path: Path) -> None:
    rw = release_world
    db = fresh_database(pg_cluster)
    ops = team_machine(rw, db, tmp_path, "ops", "alice")
    other = team_machine(rw, db, tmp_path, "other", "bob")
    to_gate(ops, other, "1.0.0")
    assert ops.run("resume").returncode == ExitCode.OK
    good = running_digest(PROD)
    push_variant(rw, "broken-health", "1.1.0")
    to_gate(ops, other, "1.1.0")

    resume = ops.start("resume")
    try:
        wait_until(prod_runs_version("1.1.0"), "the broken release to reach production")
        pg_ctl(pg_cluster, "stop")
        try:
            result = finish(resume)
        finally:
            pg_ctl(pg_cluster, "start")
    finally:
        if resume.poll() is None:
            resume.kill()
            resume.wait(timeout=30)

    assert result.returncode == ExitCode.ROLLED_BACK, result.stdout + result.stderr
    assert "rolled back to 1.0.0" in one_line_error(result)
    assert "could not be written (state database 127.0.0.1:" in result.stderr
    [page] = escalations(rw)
    assert "ROLLED BACK v1.1.0 on production" in page
    assert running_digest(PROD) == good
    assert not any(info.get("held") for info in lock_status(rw, "production").values())
    kept = spool_entries(ops.state_dir)
    assert "deploy.failed" in [e.get("event") for e in kept] and "rollback.completed" in [e.get("event") for e in kept]
    assert [e["body"]["status"] for e in kept if e["kind"] == "release"] == ["rolled_back"]

    # The database is back, ops's records still wait in its spool: any other machine is told where.
    gone = "1.1.0: promote was in progress in run "
    for args in (("status",), ("audit", "verify")):
        seen = other.run(*args)
        assert seen.returncode == ExitCode.OK, seen.stdout + seen.stderr
        assert gone in seen.stderr and f".{resume.pid}." in seen.stderr, seen.stderr
        assert "which no longer runs" in seen.stderr and "run `coordinator status` on " in seen.stderr
    created = container_created(PROD)
    elsewhere = other.run("resume", "1.1.0")  # says so too; the hosts still refuse the digest they marked bad
    assert gone in elsewhere.stderr and f".{resume.pid}." in elsewhere.stderr, elsewhere.stderr
    assert elsewhere.returncode == ExitCode.DIGEST_FAILED_BEFORE, elsewhere.stdout + elsewhere.stderr
    assert running_digest(PROD) == good and container_created(PROD) == created

    verified = ops.run("audit", "verify")  # the database is back: the next command appends them
    assert verified.returncode == ExitCode.OK, verified.stdout + verified.stderr
    assert "delayed record(s)" in verified.stderr and "audit chain intact" in verified.stdout
    assert spool_entries(ops.state_dir) == []
    shown = json.loads(other.run("audit", "show", "--json", "--limit", "500").stdout)
    assert {e["event"] for e in shown if "delayed" in e["data"]} >= {"deploy.failed", "rollback.completed"}
    listed = other.run("status", "--json")
    assert next(r for r in json.loads(listed.stdout) if r["version"] == "1.1.0")["status"] == "rolled_back"
    assert gone not in listed.stderr  # appended: nothing waits anywhere now
    refused = other.run("resume", "1.1.0")  # from another machine: no second try of the bad digest
    assert refused.returncode == ExitCode.DIGEST_FAILED_BEFORE, refused.stdout + refused.stderr


def advisory_holders(cluster: PostgresCluster, database: str, name: str) -> list[tuple[int, str]]:
    """(backend pid, lock mode) of every session holding the advisory lock `name`, as the server sees them."""
    key = advisory_key(name)
    with psycopg.connect(cluster.superuser_dsn(database), autocommit=True) as conn:
        rows = conn.execute("""SELECT pid, mode FROM pg_locks WHERE locktype = 'advisory' AND granted
                               AND classid = %s::oid AND objid = %s::oid AND objsubid = 1""",
                            (key >> 32, key & 0xFFFF_FFFF)).fetchall()
    return [(int(pid), str(mode)) for pid, mode in rows]


def run_lock_holders(cluster: PostgresCluster, database: str, release_id: str) -> list[int]:
    """The backends holding the run lock of `release_id`."""
    return [pid for pid, _mode in advisory_holders(cluster, database, f"coordinator-run:{release_id}")]


def slow_pair_at_the_gate(rw: ReleaseWorld, db: TeamDatabase, tmp_path: Path) -> tuple[Machine, Machine]:
    """alice and bob, 1.0.0 in production, good 1.1.0 approved; production deploys and rollbacks
    take ~15 s to pass (health must hold for a 15 s stability window)."""
    slow = {"health_timeout_s": 90, **inventory_copy(tmp_path, "production", release_health_stable_seconds=15)}
    alice = team_machine(rw, db, tmp_path, "alice", "alice", **slow)
    bob = team_machine(rw, db, tmp_path, "bob", "bob", **slow)
    to_gate(alice, bob, "1.0.0")
    assert alice.run("resume").returncode == ExitCode.OK
    push_variant(rw, "good", "1.1.0")
    to_gate(alice, bob, "1.1.0")
    return alice, bob


def test_a_terminated_lock_session_stops_its_holder_and_the_second_resume_meets_the_host_lock(
        release_world: ReleaseWorld, pg_cluster: PostgresCluster, tmp_path: Path) -> None:
    rw = release_world
    db = fresh_database(pg_cluster)
    alice, bob = slow_pair_at_the_gate(rw, db, tmp_path)

    lock_file = SANDBOX_RECORDS / "locks" / f"{PROD}.lock" / "info.json"
    first = alice.start("resume")
    second: subprocess.CompletedProcess[str] | None = None
    try:
        wait_until(prod_runs_version("1.1.0"), "alice's deploy to start on the host")
        alice_lock = json.loads(lock_file.read_text())["lock_id"]
        [holder] = run_lock_holders(pg_cluster, db.name, "sample-1.1.0")
        with psycopg.connect(pg_cluster.superuser_dsn(db.name), autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (holder,))
        second = bob.run("resume", "1.1.0")  # takes the run lock alice lost, then meets her host lock
        still_hers = json.loads(lock_file.read_text())["lock_id"] if lock_file.exists() else None
        result = finish(first)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=30)

    assert second is not None
    assert second.returncode == ExitCode.LOCKED, second.stdout + second.stderr
    assert f"lock id {alice_lock}" in one_line_error(second)
    assert still_hers == alice_lock, "bob's deploy must never have taken the host lock"
    assert alice_lock.split(".")[-2] == str(first.pid)  # the host lock names alice's run
    assert result.returncode == ExitCode.RUN_LOCK_LOST, result.stdout + result.stderr
    assert "lost the run lock of sample-1.1.0 before recording promote as done" in one_line_error(result)
    # One deploy: the container was created once for 1.1.0 and runs it.
    assert host_record(PROD)["current"]["version"] == "1.1.0"
    assert httpx.get(f"{PRODUCTION_URL}/version").text.strip() == "1.1.0"


def env_lock_holders(cluster: PostgresCluster, database: str, environment: str) -> list[str]:
    """The lock modes held on `environment`'s deploy lock."""
    return [mode for _pid, mode in advisory_holders(cluster, database, f"coordinator-env:sample:{environment}")]


def test_a_manual_rollback_is_refused_next_to_a_live_release_run_and_goes_ahead_once_that_run_is_gone(
        release_world: ReleaseWorld, pg_cluster: PostgresCluster, tmp_path: Path) -> None:
    rw = release_world
    db = fresh_database(pg_cluster)
    alice, bob = slow_pair_at_the_gate(rw, db, tmp_path)
    good = running_digest(PROD)  # 1.0.0

    # alice's run dies right after promote (kill -9): her locks die with her session.
    with reaped(started(alice.argv("resume"), {**alice.env, "COORDINATOR_OPERATOR": "alice",
                                               "COORDINATOR_FAILPOINT": "after:promote"})) as first:
        wait_until(prod_runs_version("1.1.0"), "alice's deploy to start on the host")
        refused = bob.run("rollback", "production", "--reason", "drill: next to a live run")
        crashed = finish(first)

    assert refused.returncode == ExitCode.LOCKED, refused.stdout + refused.stderr
    error = one_line_error(refused)
    assert "production of sample is in use by coordinator run " in error, error
    assert f".{first.pid}." in error and " since " in error and "promote 1.1.0" in error, error
    assert "rerun `coordinator rollback production`" in error
    assert crashed.returncode == -signal.SIGKILL, crashed.stdout + crashed.stderr
    assert host_record(PROD)["current"]["version"] == "1.1.0"  # alice's deploy finished; bob's rollback never ran
    assert env_lock_holders(pg_cluster, db.name, "production") == []

    with reaped(bob.start("rollback", "production", "--reason", "drill: emergency")) as rollback:
        wait_until(lambda: env_lock_holders(pg_cluster, db.name, "production") == ["ExclusiveLock"],
                   "bob's rollback to hold production")
        meanwhile = alice.run("resume", "1.1.0")  # promote again: it acts on production, so it waits its turn
        done = finish(rollback)

    assert meanwhile.returncode == ExitCode.LOCKED, meanwhile.stdout + meanwhile.stderr
    assert "rollback production" in one_line_error(meanwhile) and "`coordinator resume 1.1.0`" in one_line_error(meanwhile)
    assert done.returncode == ExitCode.OK, done.stdout + done.stderr
    assert running_digest(PROD) == good and host_record(PROD)["current"]["version"] == "1.0.0"
    shown = json.loads(bob.run("audit", "show", "--json", "--limit", "500").stdout)
    reasons = [e["data"].get("reason") for e in shown if e["event"] == "rollback.completed"]
    assert reasons == ["drill: emergency"]
    assert env_lock_holders(pg_cluster, db.name, "production") == []
