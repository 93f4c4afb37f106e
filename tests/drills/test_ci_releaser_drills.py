"""The releaser of a release started from CI is the person who triggered the CI run.

The CI job runs `coordinator release` with the CI token, whose owner (`sandbox-admin` on the
stand-in forge) is a bot in the config. The person is read from the forge's record of the
run the release names (`--ci-run`, or `$GITHUB_RUN_ID`): here a "coordinator job" that a
person starts with the forge's workflow-dispatch endpoint and their own token. These drills
play the CI token holder pointing at runs that are not theirs to point at, and the approvers
the gate must not count, through the CLI against the stand-in forge (and PostgreSQL for the
team backend). No Docker: the release stops at validation (the sample checkout is no app),
and the gate is reached by advancing the saved record, keeping the releaser the CLI wrote.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from coordinator.errors import ExitCode
from coordinator.release import Approval, BuildInfo, Deployment, Release, ReleaseStatus, Stage
from coordinator.state.postgres import PostgresStore
from coordinator.state.schema_v2 import RECORD_STATE
from coordinator.store import ReleaseStore
from tests.sandbox.postgres import OWNER, PostgresCluster
from tests.contract.test_standin_contract import (  # noqa: F401  (fixtures)
    TOKEN, Forge, contract, forge, template_origin)
from tests.pg import Machine, fresh_database, machine_factory

DIGEST = "sha256:" + "a" * 64
TEAM = "acme/release-managers"
TOKENS = {"alice": "sandbox-token-ci-alice", "bob": "sandbox-token-ci-bob", "carol": "sandbox-token-ci-carol"}
APPROVALS = {"identity": "forge", "required": 2, "forbid_self_approval": True, "approvers": [TEAM],
             "bots": ["Sandbox-Admin"]}  # the CI token's owner; case-insensitive


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@dataclass
class CI:
    """The stand-in forge with its people, and coordinator machines pointed at it."""

    forge: Forge
    make: Any
    dsns: dict[str, str]
    shared_state: Path  # local backend: one state dir, as on the one machine everybody uses

    def machine(self, login: str, **overrides: Any) -> Machine:
        config: dict[str, Any] = {"approvals": APPROVALS, "forge": {"url": self.forge.base_url, "repo": "acme/sample"},
                                  "app": {"path": str(self.forge.origin.work), "test_command": ["true"],
                                          "uat_command": None},
                                  "state": {"backend": "postgres" if self.dsns else "local"},
                                  "state_dir": str(self.shared_state), **overrides}
        made: Machine = self.make(login, self.dsns.get(login), **config)
        made.env["COORDINATOR_FORGE_TOKEN"] = TOKEN if login == "ci" else TOKENS[login]
        return made

    def http(self, login: str, repo: str = "acme/sample") -> httpx.Client:
        """The forge as a person sees it with their own token: no coordinator in between."""
        return httpx.Client(base_url=f"{self.forge.base_url}/api/v1/repos/{repo}", timeout=10.0,
                            headers={"Authorization": f"token {TOKENS[login]}"})

    def dispatch(self, login: str, ref: str = "main", repo: str = "acme/sample") -> str:
        """`login` starts the coordinator job on `ref` from the forge; the run's id."""
        with self.http(login, repo) as client:
            response = client.post("/actions/workflows/coordinator.yml/dispatches", json={"ref": ref},
                                   params={"return_run_details": "true"})
        assert response.status_code == 200, response.text
        return str(response.json()["workflow_run_id"])

    def finish(self, run_id: str, repo: str = "acme/sample") -> None:
        assert self.forge.admin("finish_run", {"repo": repo, "run": int(run_id)}).status_code == 200

    def head(self) -> str:
        """The commit being released: the checkout's HEAD."""
        return git(self.forge.origin.work, "rev-parse", "HEAD")

    def other_commit_branch(self) -> str:
        """A commit on branch `feature` that is not the checkout's HEAD (the commit being released)."""
        work = self.forge.origin.work
        head = git(work, "rev-parse", "HEAD")
        self.forge.origin.commit("Something else")
        self.forge.origin.push("feature")
        git(work, "reset", "--quiet", "--hard", head)
        return "feature"

    def other_repository(self) -> str:
        """acme/other on the same forge, with a main branch."""
        bare = self.forge.origin.git_root / "acme" / "other.git"
        shutil.copytree(self.forge.origin.bare, bare)
        return "acme/other"


def refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == ExitCode.IDENTITY_REFUSED, result.stdout + result.stderr
    line = next(x for x in result.stderr.splitlines() if x.strip())
    assert all(word in line for word in words), line


def events(machine: Machine, name: str) -> list[dict[str, Any]]:
    shown = machine.run("audit", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    return [e for e in json.loads(shown.stdout) if e["event"] == name]


def start(ci: CI, run_id: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The CI job: `release 1.0.0` with the CI token; it stops at validation (exit 3) once started."""
    args = ("release", "1.0.0", "--ci-run", run_id) if run_id else ("release", "1.0.0")
    return ci.machine("ci").run(*args, env=env or None)


def to_the_gate(release: Release, staged_at: datetime, commit: str) -> Release:
    """What the stages would have added by the gate (tagging `commit`, the checkout's HEAD, which the CI
    job's run builds); the releaser fields stay as the CLI wrote them."""
    return release.model_copy(update={
        "commit_sha": commit, "smoke_result": "passed", "status": ReleaseStatus.AWAITING_APPROVAL,
        "completed": [Stage.VALIDATE, Stage.TAG, Stage.BUILD, Stage.STAGE],
        "deployments": {"staging": Deployment(environment="staging", finished_at=staged_at, outcome="verified")},
        "build": BuildInfo(run_id="7", run_url="http://127.0.0.1/run/7", conclusion="success",
                           image="127.0.0.1:5000/shop", digest=DIGEST)})


def register(forge: Forge) -> None:
    for login in ("alice", "bob", "carol"):
        assert forge.admin("users", {"login": login, "token": TOKENS[login], "teams": [TEAM]}).status_code == 200
    assert forge.admin("users", {"login": "sandbox-admin", "token": TOKEN, "teams": [TEAM]}).status_code == 200


@pytest.fixture
def ci(forge: Forge, tmp_path: Path) -> CI:  # noqa: F811
    register(forge)
    return CI(forge, machine_factory(tmp_path), {}, tmp_path / "state")


# -- who the releaser is ---------------------------------------------------------------------------


def test_a_ci_release_names_the_person_who_triggered_the_run_and_the_ci_identity(ci: CI) -> None:
    run_id = ci.dispatch("alice")
    started = start(ci, run_id)
    assert started.returncode == ExitCode.CHECK_FAILED, started.stdout + started.stderr  # started, then validated
    record = json.loads(ci.machine("bob").run("status", "--json").stdout)[0]
    assert (record["releaser"], record["releaser_verified_by"], record["ci_identity"], record["ci_run"]) == (
        "alice", "ci-run", "sandbox-admin", run_id)
    [audited] = events(ci.machine("bob"), "release.started")
    assert audited["data"]["releaser"] == "alice" and audited["data"]["ci_identity"] == "sandbox-admin"
    assert audited["data"]["ci_run"] == run_id and audited["data"]["ci_run_url"].endswith("/actions/runs/1")


def test_the_runs_id_variable_of_the_ci_job_points_at_the_run_like_the_option(ci: CI) -> None:
    run_id = ci.dispatch("carol")
    started = start(ci, "", GITHUB_RUN_ID=run_id)
    assert started.returncode == ExitCode.CHECK_FAILED, started.stdout + started.stderr
    assert json.loads(ci.machine("bob").run("status", "--json").stdout)[0]["releaser"] == "carol"


def test_a_person_releasing_from_their_own_machine_is_the_releaser(ci: CI) -> None:
    started = ci.machine("bob").run("release", "1.0.0")
    assert started.returncode == ExitCode.CHECK_FAILED, started.stdout + started.stderr
    record = json.loads(ci.machine("bob").run("status", "--json").stdout)[0]
    assert (record["releaser"], record["releaser_verified_by"], record["ci_identity"]) == ("bob", "forge", None)


# -- the CI token holder points at runs that are not theirs ----------------------------------------


def nothing_started(ci: CI) -> None:
    assert json.loads(ci.machine("bob").run("status", "--json").stdout) == []
    assert events(ci.machine("bob"), "release.started") == []


def test_a_bot_without_a_ci_run_is_refused_saying_how(ci: CI) -> None:
    refused(start(ci, ""), "sandbox-admin (forge token owner) is a bot (approvals.bots)", "--ci-run ID",
            "inside the CI job (it sets GITHUB_RUN_ID)")
    nothing_started(ci)


def test_a_completed_run_is_refused(ci: CI) -> None:
    run_id = ci.dispatch("alice")
    ci.finish(run_id)
    refused(start(ci, run_id), f"CI run {run_id} (--ci-run) has already completed (success)")
    nothing_started(ci)


def test_a_run_on_another_commit_is_refused(ci: CI) -> None:
    run_id = ci.dispatch("alice", ci.other_commit_branch())
    refused(start(ci, run_id), f"CI run {run_id} (--ci-run) runs commit", "but this release is of")
    nothing_started(ci)


def test_a_run_of_another_repository_is_refused(ci: CI) -> None:
    run_id = ci.dispatch("alice", repo=ci.other_repository())
    refused(start(ci, run_id), f"CI run {run_id} (--ci-run) does not exist in acme/sample")
    nothing_started(ci)


def test_a_run_that_does_not_exist_is_refused(ci: CI) -> None:
    refused(start(ci, "424242"), "CI run 424242 (--ci-run) does not exist in acme/sample")
    nothing_started(ci)


def test_a_run_id_variable_pointing_at_someone_elses_run_for_another_commit_is_refused(ci: CI) -> None:
    run_id = ci.dispatch("carol", ci.other_commit_branch())
    refused(start(ci, "", GITHUB_RUN_ID=run_id), f"CI run {run_id} ($GITHUB_RUN_ID) runs commit")
    nothing_started(ci)


def test_a_run_a_bot_triggered_names_no_releaser(ci: CI) -> None:
    with httpx.Client(base_url=f"{ci.forge.base_url}/api/v1/repos/acme/sample", timeout=10.0,
                      headers={"Authorization": f"token {TOKEN}"}) as bot:
        response = bot.post("/actions/workflows/coordinator.yml/dispatches", json={"ref": "main"},
                            params={"return_run_details": "true"})
    run_id = str(response.json()["workflow_run_id"])
    refused(start(ci, run_id), f"CI run {run_id} (--ci-run) was triggered by sandbox-admin, a bot (approvals.bots)")
    nothing_started(ci)


def test_a_run_id_that_is_no_number_is_a_usage_error(ci: CI) -> None:
    result = start(ci, "7; rm -rf /")
    assert result.returncode == ExitCode.USAGE and "--ci-run: '7; rm -rf /' is not a CI run id" in result.stderr


# -- the gate: the triggering person, the bot and the CI identity never count -----------------------


def missing(ci: CI) -> int:
    resumed = ci.machine("ci").run("resume", "1.0.0")
    assert resumed.returncode == ExitCode.AWAITING_APPROVAL, resumed.stdout + resumed.stderr
    line = next(x for x in resumed.stderr.splitlines() if "awaits" in x)
    return int(line.split("awaits ")[1].split(" ")[0])


@pytest.fixture
def gate(ci: CI) -> CI:
    """Release 1.0.0 started by the CI job in alice's run, advanced to the production gate."""
    assert start(ci, ci.dispatch("alice")).returncode == ExitCode.CHECK_FAILED
    store = ReleaseStore(ci.shared_state)
    started = store.load("shop-1.0.0")
    assert started is not None and started.releaser == "alice"
    store.save(to_the_gate(started, datetime.now(UTC) - timedelta(seconds=5), ci.head()))
    assert missing(ci) == 2  # the gate machine opened the approval issue
    return ci


def comment(ci: CI, login: str) -> None:
    """`login` comments the approval words from the forge's web page (raw HTTP, their own token)."""
    headers = {"Authorization": f"token {TOKENS.get(login, TOKEN)}"}
    with httpx.Client(base_url=f"{ci.forge.base_url}/api/v1/repos/acme/sample", timeout=10.0, headers=headers) as client:
        issue = next(i["number"] for i in client.get("/issues").json() if i["title"] == "Approve v1.0.0 for production")
        assert client.post(f"/issues/{issue}/comments", json={"body": f"approve v1.0.0 {DIGEST}"}).status_code == 201


def test_the_triggering_person_and_the_bot_are_refused_and_two_others_pass_the_gate(gate: CI) -> None:
    refused(gate.machine("alice").run("approve", "1.0.0"),
            "alice (forge token owner) started this release and self-approval is forbidden")
    refused(gate.machine("ci").run("approve", "1.0.0"),
            "sandbox-admin (forge token owner) is a bot (approvals.bots): bots never approve")
    assert missing(gate) == 2
    comment(gate, "alice")  # from the web page, where no coordinator refuses anything
    comment(gate, "sandbox-admin")
    assert missing(gate) == 2
    assert gate.machine("bob").run("approve", "1.0.0").returncode == 0
    assert missing(gate) == 1
    assert gate.machine("carol").run("approve", "1.0.0").returncode == 0
    store = ReleaseStore(gate.shared_state)  # a record of alice's approval, as a hand-edit or old client leaves it
    record = store.load("shop-1.0.0")
    assert record is not None and record.build is not None
    record.approvals.append(Approval(operator="alice", confirmed_at=datetime.now(UTC), tag="v1.0.0",
                                     commit_sha=gate.head(), run_id="7", digest=DIGEST, smoke="passed",
                                     verified_by="forge"))
    store.save(record)
    assert len(record.valid_approvals()) == 3  # matching the artifact is not being counted
    promoted = gate.machine("bob").run("resume", "1.0.0")  # the gate opens; no hosts here, so the deploy fails
    assert promoted.returncode == ExitCode.USAGE and "inventory" in promoted.stderr, promoted.stderr  # past the gate
    [deploy] = events(gate.machine("bob"), "deploy.started")
    assert deploy["data"]["approved_by"] == ["bob", "carol"]  # exactly who the gate counted


def test_the_ci_identity_never_counts_even_when_it_is_not_a_listed_bot(gate: CI) -> None:
    config = gate.machine("ci", approvals={**APPROVALS, "bots": []})
    refused(config.run("approve", "1.0.0"),
            "sandbox-admin (forge token owner) is the CI identity that started this release: it never approves")
    comment(gate, "sandbox-admin")
    resumed = config.run("resume", "1.0.0")
    assert resumed.returncode == ExitCode.AWAITING_APPROVAL and "awaits 2 approval(s)" in resumed.stderr


def test_a_hand_edited_local_record_does_not_make_the_releaser_an_approver(gate: CI) -> None:
    path = gate.shared_state / "releases" / "shop-1.0.0.json"
    body = json.loads(path.read_text())
    body.update(releaser="mallory", ci_identity=None, releaser_verified_by="forge")
    path.write_text(json.dumps(body))
    shown = json.loads(gate.machine("ci").run("status", "--json").stdout)[0]
    assert (shown["releaser"], shown["ci_identity"]) == ("mallory", None)  # the file says what it was told
    refused(gate.machine("alice").run("approve", "1.0.0"),
            "alice (forge token owner) started this release and self-approval is forbidden")  # the audit still says alice
    comment(gate, "alice")
    comment(gate, "bob")
    assert missing(gate) == 1


# -- the gate re-reads the recorded run: a modified client cannot hide who triggered it ---------------


@pytest.fixture
def bobs_release(ci: CI) -> tuple[CI, ReleaseStore, Release]:
    """1.0.0 started by bob from his machine (the audit names bob), its record at the gate, ready to rewrite
    as a modified client holding the CI token would have written it from the start."""
    assert ci.machine("bob").run("release", "1.0.0").returncode == ExitCode.CHECK_FAILED
    store = ReleaseStore(ci.shared_state)
    started = store.load("shop-1.0.0")
    assert started is not None
    return ci, store, to_the_gate(started, datetime.now(UTC) - timedelta(seconds=5), ci.head())


def test_a_record_naming_another_releaser_for_alices_run_still_refuses_alice(
        bobs_release: tuple[CI, ReleaseStore, Release]) -> None:
    ci, store, release = bobs_release
    store.save(release.model_copy(update={"releaser": "mallory", "releaser_verified_by": "ci-run",
                                          "ci_identity": "sandbox-admin", "ci_run": ci.dispatch("alice")}))
    refused(ci.machine("alice").run("approve", "1.0.0"),
            "alice (forge token owner) started this release and self-approval is forbidden")  # the forge says so
    assert missing(ci) == 2  # the gate machine opens the approval issue
    comment(ci, "alice")
    comment(ci, "carol")
    assert missing(ci) == 1


def test_a_release_a_bot_started_with_no_run_on_record_keeps_the_gate_shut(
        bobs_release: tuple[CI, ReleaseStore, Release]) -> None:
    ci, store, release = bobs_release
    store.save(release.model_copy(update={"releaser": "mallory", "ci_identity": "sandbox-admin", "ci_run": None}))
    refused(ci.machine("carol").run("approve", "1.0.0"),
            "v1.0.0 was started by sandbox-admin, a bot (approvals.bots), with no CI run on record")
    refused(ci.machine("ci").run("resume", "1.0.0"), "with no CI run on record")


def test_a_record_naming_a_run_of_another_commit_keeps_the_gate_shut(
        bobs_release: tuple[CI, ReleaseStore, Release]) -> None:
    ci, store, release = bobs_release
    run_id = ci.dispatch("carol", ci.other_commit_branch())
    store.save(release.model_copy(update={"ci_identity": "sandbox-admin", "ci_run": run_id}))
    refused(ci.machine("alice").run("approve", "1.0.0"), f"the CI run {run_id} recorded for v1.0.0 ran commit")


# -- team mode: the database keeps the releaser the CI job named, once -------------------------------


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[PostgresCluster]:
    with PostgresCluster() as cluster:
        for role in ("ci_bot", "alice", "bob", "carol"):
            cluster.add_member(role)
        yield cluster


@pytest.fixture
def team(forge: Forge, pg_cluster: PostgresCluster, tmp_path: Path) -> CI:  # noqa: F811
    register(forge)
    database = fresh_database(pg_cluster)
    dsns = {"ci": database.dsn("ci_bot"), **{login: database.dsn(login) for login in TOKENS}, "owner": database.dsn(OWNER)}
    team = CI(forge, machine_factory(tmp_path), dsns, tmp_path / "unused-state")
    owner = team.make("owner", dsns["owner"], forge={"url": forge.base_url, "repo": "acme/sample"})
    assert owner.run("state", "policy", "--bots", "ci_bot", "--forbid-self-approval").returncode == 0
    return team


def team_approvals() -> dict[str, Any]:
    return {**APPROVALS, "bots": []}  # the database's policy names the bot here


def test_team_mode_a_bot_login_without_a_ci_run_is_refused(team: CI) -> None:
    refused(team.machine("ci", approvals=team_approvals()).run("release", "1.0.0"),
            "database login ci_bot is a bot (state policy --bots)", "--ci-run ID")


def test_team_mode_the_database_keeps_the_triggering_person_as_releaser_once(team: CI) -> None:
    run_id = team.dispatch("alice")
    started = team.machine("ci", approvals=team_approvals()).run("release", "1.0.0", "--ci-run", run_id)
    assert started.returncode == ExitCode.CHECK_FAILED, started.stdout + started.stderr
    with psycopg.connect(team.dsns["ci"], autocommit=True) as conn:
        row = conn.execute("SELECT started_by, releaser FROM coordinator.releases WHERE release_id = 'shop-1.0.0'").fetchone()
        assert row == ("ci_bot", "alice")
        body = conn.execute("SELECT body FROM coordinator.release_revisions WHERE release_id = 'shop-1.0.0' "
                            "ORDER BY rev DESC LIMIT 1").fetchone()[0]
        assert (body["ci_identity"], body["ci_run"]) == ("sandbox-admin", run_id)
        body["releaser"] = "bob"  # the CI token holder's own client names another releaser afterwards
        with pytest.raises(psycopg.Error, match="its artifact and releaser are written once") as caught:
            conn.execute("SELECT coordinator.save_release(%s)", (json.dumps(body),))
        assert caught.value.sqlstate == RECORD_STATE
    store = PostgresStore(psycopg_database(team.dsns["ci"]), "shop")
    started_record = store.load("shop-1.0.0")
    assert started_record is not None
    store.save(to_the_gate(started_record, datetime.now(UTC) - timedelta(seconds=5), team.head()))
    refused(team.machine("alice", approvals=team_approvals()).run("approve", "1.0.0"),
            "alice (forge token owner) started this release and self-approval is forbidden")


def psycopg_database(dsn: str) -> Any:
    from coordinator.state.postgres import Database

    return Database(dsn)
