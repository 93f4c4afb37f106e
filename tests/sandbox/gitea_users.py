"""Who the stand-in's tokens belong to, and its organizations' teams (team mode).

Gitea answers `GET /user` with the token owner's account and team membership through
`/orgs/{org}/teams` and `/teams/{id}/members/{username}`; the stand-in keeps that
mapping here. The world's own token belongs to `sandbox-admin`; tests register more
people with `POST /_standin/users {"login", "token", "teams": ["org/team", …]}`.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

from tests.sandbox.gitea_render import ADMIN_ID, ADMIN_LOGIN, user

OWNERS_TEAM = "Owners"


@dataclass
class Team:
    id: int
    org: str
    name: str
    members: set[str] = field(default_factory=set)


@dataclass
class Users:
    """token → login, login → id, and teams by id; seeded with the admin and each org's Owners team."""

    admin_token: str
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)
    teams: dict[int, Team] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.tokens = {self.admin_token: ADMIN_LOGIN}
        self.ids = {ADMIN_LOGIN: ADMIN_ID}
        self.teams = {}

    def login_for(self, token: str) -> str | None:
        for known, login in self.tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return login
        return None

    def add(self, login: str, token: str, teams: list[str]) -> None:
        """Register (or re-register) `login`: its teams become exactly `teams`, so a test can remove a member."""
        self.ids.setdefault(login, len(self.ids) + 1)
        self.tokens[token] = login
        for team in self.teams.values():
            team.members.discard(login)
        for entry in teams:
            org, name = entry.split("/", 1)
            self.team(org, name).members.add(login)

    def team(self, org: str, name: str) -> Team:
        found = next((t for t in self.teams.values() if t.org == org and t.name.lower() == name.lower()), None)
        if found is None:
            found = Team(len(self.teams) + 1, org, name)
            self.teams[found.id] = found
        return found

    def org_teams(self, org: str) -> list[Team]:
        """Every org has its Owners team (the admin), then the teams registered for it."""
        self.team(org, OWNERS_TEAM).members.add(ADMIN_LOGIN)
        return sorted((t for t in self.teams.values() if t.org == org), key=lambda t: t.id)

    def user_json(self, base_url: str, login: str) -> dict[str, Any]:
        return user(base_url, login, self.ids[login])

    def known_user_json(self, base_url: str, login: str) -> dict[str, Any]:
        """Like `user_json`, for a login a record names (a run's actor) that a reset may have forgotten."""
        return user(base_url, login, self.ids.get(login, len(self.ids) + 1000))


def organization(base_url: str, org: str, org_id: int) -> dict[str, Any]:
    return {"id": org_id, "name": org, "username": org, "full_name": "", "email": "", "description": "",
            "website": "", "location": "", "visibility": "public", "repo_admin_change_team_access": True,
            "avatar_url": f"{base_url}/avatars/{org}"}


def team(base_url: str, item: Team, org_id: int) -> dict[str, Any]:
    owners = item.name == OWNERS_TEAM
    units = ["repo.code", "repo.issues", "repo.pulls", "repo.releases", "repo.wiki", "repo.actions"]
    return {"id": item.id, "name": item.name, "description": "", "organization": organization(base_url, item.org, org_id),
            "includes_all_repositories": owners, "permission": "owner" if owners else "write", "units": units,
            "units_map": {unit: "owner" if owners else "write" for unit in units}, "can_create_org_repo": owners,
            "visibility": "public"}
