"""Team mode on the real local world: coordinator processes on different "machines" (own
working directory, own config, own state dir, own database role or forge token) share one
PostgreSQL database (a real throwaway cluster) and complete one release together.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from coordinator.errors import ExitCode
from tests.sandbox.coordinator_config import write_sandbox_config
from tests.sandbox.forge_seed import register_person, wait_for_green
from tests.sandbox.postgres import OWNER, PostgresCluster
from tests.integration.conftest import WORLD_DIR, ReleaseWorld, running_digest
from tests.pg import TeamDatabase, WorldMachine as Machine, fresh_database, running_cluster

pytestmark = pytest.mark.world

TOKENS = {"alice": "sandbox-token-team-alice", "bob": "sandbox-token-team-bob", "mallory": "sandbox-token-team-mallory"}


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[PostgresCluster]:
    yield from running_cluster()


@dataclass
class Team:
    rw: ReleaseWorld
    db: TeamDatabase | None
    root: Path

    def machine(self, name: str, *, role: str | None = None, token: str | None = None, **config: Any) -> Machine:
        directory = self.root / name
        state_dir = directory / "state"
        overrides: dict[str, Any] = {"notify": {"announce": [self.rw.chat.url("json", "announce")],
                                                "escalate": [self.rw.chat.url("json", "escalate")]}}
        if self.db is not None:
            overrides["state"] = {"backend": "postgres"}
        overrides.update(config)
        path = write_sandbox_config(directory / "coordinator.yml", WORLD_DIR, state_dir, **overrides)
        env = {key: value for key, value in os.environ.items() if not key.startswith("COORDINATOR_")}
        if role is not None and self.db is not None:
            env["COORDINATOR_DATABASE_URL"] = self.db.dsn(role)
        if token is not None:
            env["COORDINATOR_FORGE_TOKEN"] = token
        return Machine(name, path, state_dir, env)


@pytest.fixture
def team(release_world: ReleaseWorld, pg_cluster: PostgresCluster, tmp_path: Path) -> Team:
    return Team(release_world, fresh_database(pg_cluster), tmp_path / "machines")


@pytest.fixture
def local_team(release_world: ReleaseWorld, tmp_path: Path) -> Team:
    """Machines with their own local state dirs, no shared database."""
    return Team(release_world, None, tmp_path / "machines")


def events(machine: Machine) -> list[dict[str, Any]]:
    shown = machine.run("audit", "show", "--json", "--limit", "500")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def status_of(machine: Machine, version: str) -> dict[str, Any]:
    listed = machine.run("status", "--json")
    assert listed.returncode == 0, listed.stderr
    return next(r for r in json.loads(listed.stdout) if r["version"] == version)


# -- one release across three machines ------------------------------------------------------


def test_release_approve_and_resume_on_three_machines_share_one_record_and_one_chain(team: Team) -> None:
    approvals = {"identity": "database", "forbid_self_approval": True, "approvers": ["alice", "bob"]}
    ci = team.machine("ci", role="ci_bot", approvals=approvals)
    laptop = team.machine("laptop", role="alice", approvals=approvals)
    other = team.machine("other-laptop", role="bob", approvals=approvals)

    first = ci.run("release", "1.0.0")
    assert first.returncode == ExitCode.AWAITING_APPROVAL, first.stdout + first.stderr
    assert status_of(laptop, "1.0.0")["status"] == "awaiting_approval"

    not_approver = ci.run("approve", "1.0.0")
    assert not_approver.returncode == ExitCode.IDENTITY_REFUSED
    assert "ci_bot (database role) may not approve: approvals.approvers allows alice, bob" in not_approver.stderr

    approved = laptop.run("approve", "1.0.0", operator="someone-else")
    assert approved.returncode == 0, approved.stderr
    assert "alice (database role) approved v1.0.0" in approved.stdout
    twice = laptop.run("approve", "1.0.0", operator="bob")
    assert twice.returncode == ExitCode.IDENTITY_REFUSED and "alice (database role) has already approved" in twice.stderr

    resumed = other.run("resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    record = status_of(ci, "1.0.0")
    assert record["status"] == "completed"
    assert running_digest("sample-prod1") == record["build"]["digest"]
    assert [(a["operator"], a["verified_by"], a["label"]) for a in record["approvals"]] == \
        [("alice", "database", "someone-else")]

    verified = ci.run("audit", "verify")
    assert verified.returncode == 0, verified.stderr
    trail = events(other)
    assert f"audit chain intact: {len(trail)} record(s)" in verified.stdout
    approval = next(e for e in trail if e["event"] == "approval.recorded")
    assert approval["operator"] == "alice"
    assert approval["data"]["identity_verified_by"] == "database" and approval["data"]["operator_label"] == "someone-else"
    assert {e["operator"] for e in trail if e["event"] == "release.started"} == {"ci"}
    assert next(e for e in trail if e["event"] == "release.started")["data"]["releaser"] == "ci_bot"
    assert {e["operator"] for e in trail if e["event"] == "deploy.verified"} == {"other-laptop"}
    for machine in (ci, laptop, other):  # nothing release-related lives on any machine
        assert not (machine.state_dir / "releases").exists() and not (machine.state_dir / "audit.jsonl").exists()

    again = ci.run("release", "1.0.0")
    assert again.returncode == 0 and "v1.0.0 is already released" in again.stdout and "nothing to redo" in again.stdout
    assert len(events(laptop)) == len(trail), "recognising a done release must not write anything"


# -- forge identity: tokens, teams, one vote per identity, no self-approval ------------------


def test_forge_identity_counts_each_token_once_and_refuses_outsiders_and_the_releaser(team: Team) -> None:
    world_token = (WORLD_DIR / "forge-token").read_text().strip()
    register_person("alice", ["acme/release-managers"], TOKENS["alice"])
    register_person("bob", ["acme/release-managers"], TOKENS["bob"])
    register_person("mallory", [], TOKENS["mallory"])
    register_person("sandbox-admin", ["acme/release-managers"], world_token)  # the CI token's owner is in the team too
    approvals = {"identity": "forge", "required": 2, "forbid_self_approval": True, "approvers": ["acme/release-managers"]}
    ci = team.machine("ci", role="ci_bot", token=world_token, approvals=approvals)
    alice = team.machine("alice-laptop", role="alice", token=TOKENS["alice"], approvals=approvals)
    bob = team.machine("bob-laptop", role="bob", token=TOKENS["bob"], approvals=approvals)
    mallory = team.machine("mallory-laptop", role="mallory", token=TOKENS["mallory"], approvals=approvals)

    assert ci.run("release", "1.0.0").returncode == ExitCode.AWAITING_APPROVAL

    outsider = mallory.run("approve", "1.0.0", operator="alice")
    assert outsider.returncode == ExitCode.IDENTITY_REFUSED
    assert "mallory (forge token owner) may not approve: approvals.approvers allows acme/release-managers" in outsider.stderr
    self_approval = ci.run("approve", "1.0.0", operator="ops-lead")
    assert self_approval.returncode == ExitCode.IDENTITY_REFUSED
    assert "sandbox-admin (forge token owner) started this release and self-approval is forbidden" in self_approval.stderr

    assert alice.run("approve", "1.0.0").returncode == 0
    same_token = alice.run("approve", "1.0.0", operator="bob")  # a different label, the same token
    assert same_token.returncode == ExitCode.IDENTITY_REFUSED
    assert "alice (forge token owner) has already approved" in same_token.stderr
    still = alice.run("resume")
    assert still.returncode == ExitCode.AWAITING_APPROVAL and "awaits 1 approval" in still.stderr

    assert bob.run("approve", "1.0.0").returncode == 0
    done = ci.run("resume")
    assert done.returncode == 0, done.stdout + done.stderr
    record = status_of(bob, "1.0.0")
    assert sorted((a["operator"], a["verified_by"]) for a in record["approvals"]) == [("alice", "forge"), ("bob", "forge")]
    assert running_digest("sample-prod1") == record["build"]["digest"]
    recorded = [e for e in events(ci) if e["event"] == "approval.recorded"]
    assert [(e["operator"], e["data"]["identity_verified_by"]) for e in recorded] == [("alice", "forge"), ("bob", "forge")]
    assert ci.run("audit", "verify").returncode == 0


# -- a release done elsewhere, and moving local state into the database -----------------------


def test_release_done_on_another_machine_is_recognised_and_its_state_imports(team: Team, local_team: Team) -> None:
    ci = local_team.machine("ci")  # single-machine mode: local files, local identity
    first = ci.run("release", "1.0.0")
    assert first.returncode == ExitCode.AWAITING_APPROVAL, first.stdout + first.stderr
    assert ci.run("approve", "1.0.0", operator="ops-lead").returncode == 0
    assert ci.run("resume").returncode == 0
    digest = json.loads((ci.state_dir / "releases" / "sample-1.0.0.json").read_text())["build"]["digest"]
    before = len(team.rw.chat.messages)

    laptop = local_team.machine("laptop")  # another machine, no shared records
    again = laptop.run("release", "1.0.0")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "v1.0.0 is already released: forge release" in again.stdout
    assert f"production (prod1) runs its digest {digest}; nothing to do" in again.stdout
    assert not list((laptop.state_dir / "releases").glob("*.json")), "nothing was started on the laptop"
    assert not (laptop.state_dir / "audit.jsonl").exists()
    assert len(team.rw.chat.messages) == before, "nothing was announced again"

    shared = team.machine("shared", role=OWNER)  # history written elsewhere is vouched for by the owner only
    imported = shared.run("state", "import", str(ci.state_dir))
    assert imported.returncode == 0, imported.stderr
    local_head = json.loads((ci.state_dir / "audit.jsonl").read_text().splitlines()[-1])["hash"]
    assert local_head in imported.stdout
    elsewhere = team.machine("elsewhere", role="bob")
    verified = elsewhere.run("audit", "verify")
    assert verified.returncode == 0 and f"head {local_head}" in verified.stdout
    assert status_of(elsewhere, "1.0.0")["status"] == "completed"
    recognised = elsewhere.run("release", "1.0.0")
    assert recognised.returncode == 0 and "v1.0.0 is already released" in recognised.stdout


def test_gate_summary_shows_what_production_runs_even_without_local_records(team: Team, local_team: Team) -> None:
    from tests.sandbox import sample

    ci = local_team.machine("ci")
    assert ci.run("release", "1.0.0").returncode == ExitCode.AWAITING_APPROVAL
    assert ci.run("approve", "1.0.0", operator="ops-lead").returncode == 0
    assert ci.run("resume").returncode == 0
    rw = team.rw
    sample.bump(rw.checkout, "1.1.0", "### Changed\n- Faster start-up.")
    wait_for_green(rw.forge, rw.head())
    laptop = local_team.machine("laptop")  # knows nothing of 1.0.0
    gate = laptop.run("release", "1.1.0")
    assert gate.returncode == ExitCode.AWAITING_APPROVAL, gate.stdout + gate.stderr
    assert "live there now     1.0.0" in gate.stdout
