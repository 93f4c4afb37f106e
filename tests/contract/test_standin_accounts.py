"""Team mode's forge calls: `GET /user`, `GET /orgs/{org}/teams`, `GET /teams/{id}/members/{username}`.

The stand-in answers them per token (each person runs with their own token) and every
response is checked strictly against the swagger document; the coordinator's client is
then driven against the same stand-in.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from coordinator.errors import ExitCode
from coordinator.forge import GiteaClient
from tests.contract.schema import SwaggerContract
from tests.contract.test_standin_contract import (  # noqa: F401  (fixtures)
    TOKEN, Forge, checked_client, contract, forge, template_origin)
from tests.pg import machine_factory

ALICE = "sandbox-token-alice-0001"
BOB = "sandbox-token-bob-0002"


def register(forge: Forge, login: str, token: str, teams: list[str]) -> None:
    response = forge.admin("users", {"login": login, "token": token, "teams": teams})
    assert response.status_code == 200, response.text


def api(forge: Forge, contract: SwaggerContract, token: str | None) -> httpx.Client:
    client = checked_client(forge.base_url, contract, token=token)
    client.base_url = httpx.URL(f"{forge.base_url}/api/v1")
    return client


@pytest.fixture
def people(forge: Forge) -> Forge:  # noqa: F811
    register(forge, "alice", ALICE, ["acme/release-managers"])
    register(forge, "bob", BOB, [])
    return forge


def test_get_user_answers_the_token_owner(people: Forge, contract: SwaggerContract) -> None:
    for token, login in ((ALICE, "alice"), (BOB, "bob"), (TOKEN, "sandbox-admin")):
        with api(people, contract, token) as client:
            response = client.get("/user")
        assert response.status_code == 200 and response.json()["login"] == login


def test_get_user_without_a_valid_token_is_401(people: Forge, contract: SwaggerContract) -> None:
    for token in (None, "sandbox-token-nobody"):
        with api(people, contract, token) as client:
            response = client.get("/user")
        assert response.status_code == 401 and set(response.json()) == {"message", "url"}


def test_org_teams_list_owners_and_registered_teams(people: Forge, contract: SwaggerContract) -> None:
    with api(people, contract, BOB) as client:
        teams = client.get("/orgs/acme/teams").json()
        assert sorted(t["name"] for t in teams) == ["Owners", "release-managers"]
        assert client.get("/orgs/nobody/teams").status_code == 404


def test_team_member_is_200_for_members_and_404_otherwise(people: Forge, contract: SwaggerContract) -> None:
    with api(people, contract, BOB) as client:
        team_id = next(t["id"] for t in client.get("/orgs/acme/teams").json() if t["name"] == "release-managers")
        member = client.get(f"/teams/{team_id}/members/alice")
        assert member.status_code == 200 and member.json()["login"] == "alice"
        assert client.get(f"/teams/{team_id}/members/bob").status_code == 404
        assert client.get("/teams/999/members/alice").status_code == 404


def test_reset_forgets_registered_people(people: Forge, contract: SwaggerContract) -> None:
    assert people.admin("reset").status_code == 200
    with api(people, contract, ALICE) as client:
        assert client.get("/user").status_code == 401


@pytest.mark.parametrize("payload", [{"login": "a b", "token": ALICE}, {"login": "carol", "token": "short"},
                                     {"login": "carol", "token": ALICE, "teams": ["no-slash"]}])
def test_registering_a_person_checks_the_payload(forge: Forge, payload: dict[str, Any]) -> None:  # noqa: F811
    assert forge.admin("users", payload).status_code == 422


def test_client_reads_identity_and_membership_from_the_standin(people: Forge) -> None:
    with GiteaClient(people.base_url, "acme", "sample", ALICE) as alice:
        assert alice.current_user() == "alice"
        team_id = alice.team_id("acme", "Release-Managers")  # Gitea compares team names case-insensitively
        assert team_id is not None
        assert alice.is_team_member(team_id, "alice") and not alice.is_team_member(team_id, "bob")
        assert alice.team_id("acme", "no-such-team") is None
        assert alice.team_id("nobody", "release-managers") is None


def test_approve_with_a_token_the_forge_refuses_exits_18_naming_the_token_variable(people: Forge,
                                                                                    tmp_path: Path) -> None:
    config = {"forge": {"url": people.base_url, "repo": "acme/sample"}, "approvals": {"identity": "forge"},
              "state": {"backend": "local"}}
    laptop = machine_factory(tmp_path)("laptop", None, **config)
    result = laptop.run("approve", "1.0.0", env={"COORDINATOR_FORGE_TOKEN": "sandbox-token-revoked"})
    assert result.returncode == ExitCode.IDENTITY_REFUSED == 18, result.stdout + result.stderr
    assert "forge refused the token from environment variable COORDINATOR_FORGE_TOKEN (HTTP 401 on GET /api/v1/user)" \
        in result.stderr
    assert "under approvals.identity forge each person runs with their own token" in result.stderr
    assert "sandbox-token-revoked" not in result.stdout + result.stderr
    works = laptop.run("approve", "1.0.0", env={"COORDINATOR_FORGE_TOKEN": ALICE})
    assert works.returncode == ExitCode.USAGE and "no release 1.0.0" in works.stderr  # identity passed; nothing to approve


# -- issue comments: what a forge approval is made of ------------------------------------------


def test_comments_are_attributed_to_the_token_owner_and_listed_oldest_first(people: Forge,
                                                                            contract: SwaggerContract) -> None:
    with api(people, contract, TOKEN) as admin:
        number = admin.post("/repos/acme/sample/issues", json={"title": "Approve v1.0.0 for production"}).json()["number"]
    for token, words in ((ALICE, "approve v1.0.0"), (BOB, "looks good")):
        with api(people, contract, token) as client:
            created = client.post(f"/repos/acme/sample/issues/{number}/comments", json={"body": words})
        assert created.status_code == 201
        assert created.json()["created_at"] == created.json()["updated_at"]
    with api(people, contract, BOB) as client:
        listed = client.get(f"/repos/acme/sample/issues/{number}/comments").json()
        issue = client.get(f"/repos/acme/sample/issues/{number}").json()
    assert [(c["user"]["login"], c["body"]) for c in listed] == [("alice", "approve v1.0.0"), ("bob", "looks good")]
    assert issue["comments"] == 2


def test_anyone_with_write_access_may_edit_a_comment_which_moves_updated_at_not_the_author(
        people: Forge, contract: SwaggerContract) -> None:
    with api(people, contract, TOKEN) as admin:
        number = admin.post("/repos/acme/sample/issues", json={"title": "Approve v1.0.0 for production"}).json()["number"]
    with api(people, contract, ALICE) as alice:
        comment = alice.post(f"/repos/acme/sample/issues/{number}/comments", json={"body": "not yet"}).json()
    time.sleep(1.1)  # Gitea's timestamps have whole seconds
    with api(people, contract, BOB) as bob:
        edited = bob.patch(f"/repos/acme/sample/issues/comments/{comment['id']}", json={"body": "approve v1.0.0"})
        again = bob.get(f"/repos/acme/sample/issues/comments/{comment['id']}").json()
        assert bob.get("/repos/acme/sample/issues/comments/999999").status_code == 404
    assert edited.status_code == 200
    assert again["user"]["login"] == "alice" and again["body"] == "approve v1.0.0"
    assert again["updated_at"] > again["created_at"] == comment["created_at"]


def test_a_comment_on_a_missing_issue_is_404(people: Forge, contract: SwaggerContract) -> None:
    with api(people, contract, ALICE) as client:
        assert client.post("/repos/acme/sample/issues/999/comments", json={"body": "approve"}).status_code == 404
