"""Who may approve (pure logic: the forge is a stub here; tests/contract and
tests/integration use the stand-in), and what production runs, summarised."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from coordinator.config import ApprovalConfig
from coordinator.errors import IdentityRefused
from coordinator.identity import Identity, check_may_approve
from coordinator.recognize import Live


class StubForge:
    def __init__(self, teams: dict[tuple[str, str], set[str]]) -> None:
        self.ids = {key: index for index, key in enumerate(teams, start=1)}
        self.members = {self.ids[key]: members for key, members in teams.items()}
        self.calls: list[str] = []

    def team_id(self, org: str, team: str) -> int | None:
        self.calls.append(f"team {org}/{team}")
        return self.ids.get((org, team))

    def is_team_member(self, team_id: int, login: str) -> bool:
        self.calls.append(f"member {team_id} {login}")
        return login in self.members.get(team_id, set())


def ctx(approvers: list[str], forge: StubForge | None = None) -> Any:
    approvals = ApprovalConfig(identity="forge", approvers=approvers)
    return SimpleNamespace(config=SimpleNamespace(approvals=approvals), forge=forge or StubForge({}))


def test_listed_login_may_approve_without_asking_the_forge() -> None:
    forge = StubForge({})
    check_may_approve(ctx(["alice"], forge), Identity("alice", "forge"))
    assert forge.calls == []


def test_member_of_a_listed_team_may_approve() -> None:
    forge = StubForge({("acme", "release-managers"): {"bob"}})
    check_may_approve(ctx(["alice", "acme/release-managers"], forge), Identity("bob", "forge"))
    assert forge.calls == ["team acme/release-managers", "member 1 bob"]


def test_outsider_is_refused_naming_who_may() -> None:
    forge = StubForge({("acme", "release-managers"): {"bob"}})
    with pytest.raises(IdentityRefused, match="mallory \\(forge token owner\\) may not approve: approvals.approvers "
                                              "allows alice, acme/release-managers"):
        check_may_approve(ctx(["alice", "acme/release-managers"], forge), Identity("mallory", "forge"))


def test_teams_are_not_consulted_for_a_database_identity() -> None:
    forge = StubForge({("acme", "release-managers"): {"bob"}})
    with pytest.raises(IdentityRefused):
        check_may_approve(ctx(["acme/release-managers"], forge), Identity("bob", "database"))
    assert forge.calls == []


def test_empty_approvers_lets_any_verified_identity_approve() -> None:
    check_may_approve(ctx([]), Identity("anyone", "forge"))


@pytest.mark.parametrize("settings", [{"required": 2}, {"forbid_self_approval": True}])
def test_local_identity_cannot_back_more_than_one_approver(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="needs verified approvers, but identity is 'local'"):
        ApprovalConfig(**settings)
    ApprovalConfig(identity="forge", **settings)


@pytest.mark.parametrize(("versions", "expected"), [
    ({"prod1": "1.1.0", "prod2": "1.1.0"}, "1.1.0"),
    ({"prod1": "1.1.0", "prod2": "1.0.0"}, "prod1 1.1.0, prod2 1.0.0"),
    ({"prod1": "1.1.0", "prod2": None}, "prod1 1.1.0, prod2 nothing"),
    ({"prod1": None}, None),
])
def test_live_summary(versions: dict[str, str | None], expected: str | None) -> None:
    assert Live(versions, {host: None for host in versions}).summary() == expected


def test_a_refused_approver_leaves_the_release_at_the_gate() -> None:
    from coordinator.driver import _status_after
    from coordinator.release import ReleaseStatus

    assert _status_after(IdentityRefused("self-approval"), ReleaseStatus.IN_PROGRESS) is ReleaseStatus.AWAITING_APPROVAL
