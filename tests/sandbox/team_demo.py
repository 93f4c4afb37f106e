"""`scripts/demo --team`: team mode on the local world.

A throwaway PostgreSQL cluster on 127.0.0.1 holds the shared state; its owner sets the
gate policy the database enforces (`state policy`, with the CI job's login as a bot). Three
"machines" (own directory, config and state dir) act in turn: carol starts the coordinator
job on the forge, and CI releases 1.0.0 to the gate in that run (carol is the releaser); alice
and bob, each with their own forge token and database role, approve (alice's second
approval under another --operator label is refused: one token counts once); bob resumes
and promotes; anyone verifies the one audit chain; CI asking to release 1.0.0 again is
told it is already released. The cluster is stopped and removed at the end, also on failure.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tests.sandbox.coordinator_config import write_sandbox_config
from tests.sandbox.demo import AWAITING_APPROVAL, coordinator, fresh_world, head_of
from tests.sandbox.forge_seed import (create_milestone_with_issues, ensure_label, forge_client, register_person,
                                 start_coordinator_job, wait_for_green)
from tests.sandbox.postgres import OWNER, PostgresCluster
from tests.sandbox.receiver import Receiver

IDENTITY_REFUSED = 18
APPROVALS = {"identity": "forge", "required": 2, "forbid_self_approval": True, "approvers": ["acme/release-managers"]}


def team_demo() -> None:
    world_dir, machines_dir, checkout = fresh_world("team-demo")
    with PostgresCluster() as cluster, Receiver() as chat, forge_client(world_dir) as forge:
        notify = {"announce": [chat.url("json", "announce")], "escalate": [chat.url("json", "escalate")]}

        def machine(name: str) -> Path:
            return write_sandbox_config(machines_dir / name / "coordinator.yml", world_dir, machines_dir / name / "state",
                                        notify=notify, approvals=APPROVALS, state={"backend": "postgres"})

        ci, alice, bob = machine("ci"), machine("alice-laptop"), machine("bob-laptop")
        world_token = (world_dir / "forge-token").read_text(encoding="utf-8").strip()
        env = {
            "ci": {"COORDINATOR_DATABASE_URL": cluster.add_member("ci_release"), "COORDINATOR_FORGE_TOKEN": world_token},
            "alice": {"COORDINATOR_DATABASE_URL": cluster.add_member("alice"),
                      "COORDINATOR_FORGE_TOKEN": register_person("alice", ["acme/release-managers"])},
            "bob": {"COORDINATOR_DATABASE_URL": cluster.add_member("bob"),
                    "COORDINATOR_FORGE_TOKEN": register_person("bob", ["acme/release-managers"])},
        }
        print(f"demo: PostgreSQL on 127.0.0.1:{cluster.port}; machines in {machines_dir}", flush=True)
        owner_env = {"COORDINATOR_DATABASE_URL": cluster.dsn_for(OWNER)}
        coordinator(ci, "state", "init", operator="dba", expect=0, env=owner_env)
        coordinator(ci, "state", "policy", "--approvers", "alice,bob", "--bots", "ci_release", "--required", "2",
                    "--forbid-self-approval", operator="dba", expect=0, env=owner_env)
        ensure_label(forge)
        create_milestone_with_issues(forge, "1.0.0", ["Serve /health", "Serve /version"])
        wait_for_green(forge, head_of(checkout))
        started = time.monotonic()
        job = start_coordinator_job(register_person("carol", ["acme/release-managers"]))  # carol starts the CI job
        coordinator(ci, "release", "1.0.0", "--ci-run", job, operator="ci", expect=AWAITING_APPROVAL, env=env["ci"])
        coordinator(alice, "status", operator="alice", expect=0, env=env["alice"])
        coordinator(alice, "approve", "1.0.0", operator="alice", expect=0, env=env["alice"])
        coordinator(alice, "approve", "1.0.0", operator="bob", expect=IDENTITY_REFUSED, env=env["alice"])
        coordinator(bob, "approve", "1.0.0", operator="bob", expect=0, env=env["bob"])
        coordinator(bob, "resume", operator="bob", expect=0, env=env["bob"])
        took = time.monotonic() - started
        coordinator(alice, "audit", "verify", operator="alice", expect=0, env=env["alice"])
        coordinator(ci, "release", "1.0.0", operator="ci", expect=0, env=env["ci"])
        print(f"\ndemo: team release of 1.0.0 across three machines took {took:.1f}s; "
              f"{len(chat.messages)} chat message(s) received", flush=True)


if __name__ == "__main__":
    team_demo()
    sys.exit(0)
