"""`python -m bench.state_backend [--runs N]`: what the PostgreSQL state backend adds to a release.

Replays the coordinator's own bookkeeping of one release (no deploys, no CI: those cost
the same in both modes) against each backend, through the same classes the CLI uses:
three processes as in team mode (`release` to the gate, `approve`, `resume`), each
opening its store, taking the run lock, loading the record, and then saving the record
and appending audit records as often as the driver does. Local: files in a temporary
state dir. PostgreSQL: a throwaway cluster on 127.0.0.1 (tests.sandbox.postgres), (fsync on),
a non-superuser role, a new connection per process. Needs no world.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coordinator.audit import AuditEvent, AuditLog
from coordinator.release import Approval, BuildInfo, Release, STAGE_ORDER, Stage
from coordinator.state import AuditTrail, ReleaseRecords
from coordinator.store import ReleaseStore

RESULTS = Path(__file__).resolve().parent / "results" / "state_backend.json"
# Audit records a release writes besides approval.recorded (counted from a real release's trail).
AUDIT_EVENTS = [AuditEvent.RELEASE_STARTED, AuditEvent.VALIDATE_PASSED, AuditEvent.TAG_PUSHED,
                AuditEvent.BUILD_COMPLETED, AuditEvent.LOCK_ACQUIRED, AuditEvent.LOCK_RELEASED,
                AuditEvent.STAGE_DEPLOYED, AuditEvent.LOCK_ACQUIRED, AuditEvent.DEPLOY_STARTED,
                AuditEvent.LOCK_RELEASED, AuditEvent.DEPLOY_VERIFIED, AuditEvent.RELEASE_ANNOUNCED]

Opener = Callable[[], tuple[ReleaseRecords, AuditTrail, Callable[[], None]]]


def one_release(open_backend: Opener, version: str) -> float:
    """Seconds of bookkeeping for one release across release → approve → resume."""
    started = time.perf_counter()
    release_id = f"bench-{version}"
    stages = list(STAGE_ORDER)
    events = iter(AUDIT_EVENTS)
    # process 1: release, up to the gate
    store, audit, close = open_backend()
    with store.locked(f"release {version}", release_id=release_id):
        record = store.load(release_id) or Release(id=release_id, project="bench", version=version, tag=f"v{version}",
                                                   operator="ci")
        for stage in stages[:4]:
            store.save(record)  # intent
            record.mark_completed(stage)
            if stage is Stage.VALIDATE:
                record.commit_sha = "c" * 40
            if stage is Stage.BUILD:
                record.build = BuildInfo(run_id="1", run_url="", conclusion="success", image="r/bench", digest="sha256:" + "a" * 64)
                record.smoke_result = "passed"
            store.save(record)
            audit.append(next(events), operator="ci", release_id=release_id, version=version)
        store.save(record)  # stopped at the gate
    close()
    # process 2: approve
    store, audit, close = open_backend()
    with store.locked(f"approve {version}", release_id=release_id):
        loaded = store.load(release_id)
        assert loaded is not None and loaded.build is not None
        login = store.database_role()  # the database records the login as the approver (schema v2)
        approver = login or "alice"
        approval = Approval(operator=approver, confirmed_at=datetime.now(UTC), tag=loaded.tag,
                            commit_sha=loaded.commit_sha or "", run_id="1", digest=loaded.build.digest, smoke="passed",
                            verified_by="database" if login else "local")
        store.add_approval(loaded, approval)
        loaded.approvals.append(approval)
        audit.append(AuditEvent.APPROVAL_RECORDED, operator=approver, release_id=release_id, version=version)
        store.save(loaded)
    close()
    # process 3: resume to the end
    store, audit, close = open_backend()
    with store.locked(f"resume {version}", release_id=release_id):
        loaded = store.load(release_id)
        assert loaded is not None
        for stage in stages[4:]:
            store.save(loaded)
            loaded.mark_completed(stage)
            store.save(loaded)
        for event in events:
            audit.append(event, operator="ops", release_id=release_id, version=version)
        store.save(loaded)
    close()
    return time.perf_counter() - started


def local_opener(state_dir: Path) -> Opener:
    def open_backend() -> tuple[ReleaseRecords, AuditTrail, Callable[[], None]]:
        store = ReleaseStore(state_dir)
        store.ensure()
        return store, AuditLog(store.audit_path), lambda: None

    return open_backend


def postgres_opener(dsn: str) -> Opener:
    from coordinator.state.pg_audit import PostgresAudit
    from coordinator.state.postgres import Database, PostgresStore

    def open_backend() -> tuple[ReleaseRecords, AuditTrail, Callable[[], None]]:
        db = Database(dsn)
        return PostgresStore(db, "bench"), PostgresAudit(db), db.close

    return open_backend


def measure(open_backend: Opener, runs: int) -> list[float]:
    return [one_release(open_backend, f"1.{run}.0") for run in range(runs)]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.state_backend", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()

    from tests.sandbox.postgres import APP_ROLE, OWNER, PostgresCluster
    from coordinator.state.postgres import Database, migrate

    with tempfile.TemporaryDirectory(prefix="bench-state-") as tmp:
        local = measure(local_opener(Path(tmp)), args.runs)
    with PostgresCluster(durable=True) as cluster:
        owner = Database(cluster.dsn_for(OWNER), check_schema=False)
        migrate(owner, APP_ROLE)
        owner.close()
        postgres = measure(postgres_opener(cluster.add_member("bench")), args.runs)
    result: dict[str, Any] = {
        "runs": args.runs, "local_ms": round(statistics.median(local) * 1000, 1),
        "postgres_ms": round(statistics.median(postgres) * 1000, 1),
        "added_ms_per_release": round((statistics.median(postgres) - statistics.median(local)) * 1000, 1),
        "saves_per_release": 2 * len(STAGE_ORDER) + 3, "audit_appends_per_release": len(AUDIT_EVENTS) + 1,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    print(f"state bookkeeping per release (median of {args.runs}): local {result['local_ms']} ms, "
          f"postgres {result['postgres_ms']} ms, added {result['added_ms_per_release']} ms")
    if not args.no_save:
        RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
