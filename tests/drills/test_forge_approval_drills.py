"""Forge approvals are evidence the forge attributes, re-verified at the gate.

Under `approvals.identity: forge` an approval counts only as an unedited comment
`approve <tag> <digest>` on the release's approval issue, written after staging by
someone who may approve *now*. These drills play the insider with raw HTTP (httpx to
the stand-in forge with their own token) and raw SQL, then read the gate through the
CLI: `resume` exits 4 and says how many approvals are still missing (the policy asks
for three, so the count stays visible). The stand-in forge and the PostgreSQL cluster
are real servers on 127.0.0.1; the release waits at the gate in the database, so no
Docker is needed: the gate stops before anything is deployed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from coordinator.errors import ExitCode
from coordinator.release import BuildInfo, Deployment, Release, ReleaseStatus, Stage
from coordinator.state.postgres import PostgresStore
from tests.sandbox.postgres import PostgresCluster
from tests.contract.test_standin_contract import (  # noqa: F401  (fixtures)
    TOKEN, Forge, contract, forge, template_origin)
from tests.pg import Machine, TeamDatabase, fresh_database, machine_factory

DIGEST = "sha256:" + "a" * 64
WORDS = f"approve v1.0.0 {DIGEST}"
TITLE = "Approve v1.0.0 for production"
TEAM = "acme/release-managers"
TOKENS = {"alice": "sandbox-token-drill-alice", "bob": "sandbox-token-drill-bob",
          "carol": "sandbox-token-drill-carol", "mallory": "sandbox-token-drill-mallory"}
APPROVALS = {"identity": "forge", "required": 3, "forbid_self_approval": True, "approvers": [TEAM]}


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[PostgresCluster]:
    with PostgresCluster() as cluster:
        for role in ("ci_bot", "alice", "bob", "carol", "mallory"):
            cluster.add_member(role)
        yield cluster


@dataclass
class Gate:
    forge: Forge
    db: TeamDatabase
    make: Any

    def machine(self, login: str) -> Machine:
        token = TOKEN if login == "ci_bot" else TOKENS[login]
        made: Machine = self.make(login, self.db.dsn(login), approvals=APPROVALS,
                                  forge={"url": self.forge.base_url, "repo": "acme/sample"})
        made.env["COORDINATOR_FORGE_TOKEN"] = token
        return made

    def http(self, login: str) -> httpx.Client:
        """The forge as a person sees it with their own token: no coordinator in between."""
        return httpx.Client(base_url=f"{self.forge.base_url}/api/v1/repos/acme/sample", timeout=10.0,
                            headers={"Authorization": f"token {TOKENS[login]}"})

    def issue(self) -> int:
        with self.http("bob") as client:
            found = [i["number"] for i in client.get("/issues", params={"state": "all"}).json() if i["title"] == TITLE]
        assert len(found) == 1, found
        return int(found[0])

    def comment(self, login: str, words: str = WORDS) -> dict[str, Any]:
        with self.http(login) as client:
            response = client.post(f"/issues/{self.issue()}/comments", json={"body": words})
        assert response.status_code == 201, response.text
        return dict(response.json())

    def missing(self) -> int:
        """How many approvals the gate still wants, as `resume` says (exit 4)."""
        resumed = self.machine("ci_bot").run("resume", "1.0.0")
        assert resumed.returncode == ExitCode.AWAITING_APPROVAL, resumed.stdout + resumed.stderr
        line = next(x for x in resumed.stderr.splitlines() if "awaits" in x)
        return int(line.split("awaits ")[1].split(" ")[0])


def at_gate(staged_at: datetime) -> Release:
    """Released by the CI token's owner (sandbox-admin), staged at `staged_at`, waiting at the gate."""
    return Release(id="shop-1.0.0", project="shop", version="1.0.0", tag="v1.0.0", operator="ci",
                   releaser="sandbox-admin", releaser_verified_by="forge", commit_sha="c" * 40, smoke_result="passed",
                   status=ReleaseStatus.AWAITING_APPROVAL, completed=[Stage.VALIDATE, Stage.TAG, Stage.BUILD, Stage.STAGE],
                   deployments={"staging": Deployment(environment="staging", finished_at=staged_at, outcome="verified")},
                   build=BuildInfo(run_id="7", run_url="http://127.0.0.1/run/7", conclusion="success",
                                   image="127.0.0.1:5000/shop", digest=DIGEST))


@pytest.fixture
def gate(forge: Forge, pg_cluster: PostgresCluster, tmp_path: Path) -> Gate:  # noqa: F811
    for login in ("alice", "bob", "carol"):
        assert forge.admin("users", {"login": login, "token": TOKENS[login], "teams": [TEAM]}).status_code == 200
    assert forge.admin("users", {"login": "mallory", "token": TOKENS["mallory"], "teams": []}).status_code == 200
    assert forge.admin("users", {"login": "sandbox-admin", "token": TOKEN, "teams": [TEAM]}).status_code == 200
    team = fresh_database(pg_cluster)
    PostgresStore(team.connect("ci_bot"), "shop").save(at_gate(datetime.now(UTC) - timedelta(seconds=5)))
    opened = Gate(forge, team, machine_factory(tmp_path))
    assert opened.missing() == 3  # the gate machine opened the approval issue
    return opened


def test_the_gate_opens_the_approval_issue_naming_the_words_to_comment(gate: Gate) -> None:
    with gate.http("mallory") as client:
        issue = client.get(f"/issues/{gate.issue()}").json()
    assert WORDS in issue["body"] and "An edited comment does not count" in issue["body"]
    assert gate.missing() == 3 and gate.issue()  # a second gate visit opens no second issue


def test_a_cli_approval_and_a_web_comment_each_count_once(gate: Gate) -> None:
    alice = gate.machine("alice")
    approved = alice.run("approve", "1.0.0")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert "alice (forge token owner) approved v1.0.0" in approved.stdout
    again = alice.run("approve", "1.0.0")
    assert again.returncode == ExitCode.IDENTITY_REFUSED and "alice (forge token owner) has already approved" in again.stderr
    gate.comment("bob")  # from the forge's web page: the same words
    gate.comment("bob")  # twice is still bob once
    assert gate.missing() == 1
    with gate.http("bob") as client:
        authors = [c["user"]["login"] for c in client.get(f"/issues/{gate.issue()}/comments").json()]
    assert authors == ["alice", "bob", "bob"]
    assert gate.machine("bob").run("audit", "verify").returncode == 0
    shown = json.loads(gate.machine("bob").run("audit", "show", "--json").stdout)
    recorded = next(e for e in shown if e["event"] == "approval.recorded")
    assert recorded["operator"] == recorded["writer"] == "alice"
    assert f"/issues/{gate.issue()}#issuecomment-" in recorded["data"]["evidence"]


def test_a_database_row_without_a_comment_counts_for_nothing(gate: Gate) -> None:
    with psycopg.connect(gate.db.dsn("carol"), autocommit=True) as conn:  # carol's own login, but no forge comment
        conn.execute("SELECT coordinator.record_approval('shop-1.0.0', 'carol', 'forge', NULL, 'v1.0.0', %s, '7', %s,"
                     " 'passed', NULL)", ("c" * 40, DIGEST))
    status = json.loads(gate.machine("bob").run("status", "--json").stdout)
    assert [(a["operator"], a["verified_by"]) for a in status[0]["approvals"]] == [("carol", "forge")]
    assert gate.missing() == 3


def test_a_comment_edited_by_someone_else_does_not_count(gate: Gate) -> None:
    original = gate.comment("bob", "looking at it now")
    time.sleep(1.1)  # the forge's timestamps have whole seconds
    with gate.http("mallory") as client:  # write access lets her edit bob's comment into an approval
        edited = client.patch(f"/issues/comments/{original['id']}", json={"body": WORDS})
    assert edited.status_code == 200 and edited.json()["user"]["login"] == "bob" and edited.json()["body"] == WORDS
    assert gate.missing() == 3


def test_an_outsiders_comment_does_not_count(gate: Gate) -> None:
    gate.comment("mallory")
    assert gate.missing() == 3


def test_a_comment_for_another_digest_does_not_count(gate: Gate) -> None:
    gate.comment("bob", "approve v1.0.0 sha256:" + "e" * 64)
    gate.comment("carol", WORDS + " please")
    assert gate.missing() == 3


def test_an_approval_older_than_staging_does_not_count(gate: Gate) -> None:
    gate.comment("alice")
    later = at_gate(datetime.now(UTC) + timedelta(seconds=30))  # staging ran again after alice commented
    PostgresStore(gate.db.connect("ci_bot"), "shop").save(later)
    assert gate.missing() == 3


def test_an_approver_removed_from_the_team_no_longer_counts(gate: Gate) -> None:
    assert gate.machine("alice").run("approve", "1.0.0").returncode == 0
    gate.comment("bob")
    assert gate.missing() == 1
    assert gate.forge.admin("users", {"login": "alice", "token": TOKENS["alice"], "teams": []}).status_code == 200
    assert gate.missing() == 2


def test_the_releaser_and_the_bots_of_the_owners_policy_do_not_count(gate: Gate) -> None:
    with httpx.Client(base_url=f"{gate.forge.base_url}/api/v1/repos/acme/sample", timeout=10.0,
                      headers={"Authorization": f"token {TOKEN}"}) as ci_token:  # the CI token's owner started it
        assert ci_token.post(f"/issues/{gate.issue()}/comments", json={"body": WORDS}).status_code == 201
    owner = machine_factory(Path(gate.db.cluster.root) / "owner")("owner", gate.db.dsn("coordinator_owner"))
    assert owner.run("state", "policy", "--bots", "carol").returncode == 0
    gate.comment("carol")
    assert gate.missing() == 3


def test_one_person_with_one_login_and_one_token_is_one_vote_whatever_they_try(gate: Gate) -> None:
    alice = gate.machine("alice")
    assert alice.run("approve", "1.0.0").returncode == 0
    again = alice.run("approve", "1.0.0", "--reason", "as bob", env={"COORDINATOR_OPERATOR": "bob"})
    assert again.returncode == ExitCode.IDENTITY_REFUSED and "alice (forge token owner) has already approved" in again.stderr
    gate.comment("alice")  # again, from the web page
    with psycopg.connect(gate.db.dsn("alice"), autocommit=True) as conn:
        conn.execute("SELECT coordinator.record_approval('shop-1.0.0', 'alice', 'database', NULL, 'v1.0.0', %s, '7',"
                     " %s, 'passed', NULL)", ("c" * 40, DIGEST))  # a second row under the other identity mode
        for claimed in ("bob", "carol"):
            with pytest.raises(psycopg.Error, match=f"approval names {claimed} \\(forge\\), but the login is alice"):
                conn.execute("SELECT coordinator.record_approval('shop-1.0.0', %s, 'forge', NULL, 'v1.0.0', %s, '7',"
                             " %s, 'passed', NULL)", (claimed, "c" * 40, DIGEST))
    assert gate.missing() == 2
