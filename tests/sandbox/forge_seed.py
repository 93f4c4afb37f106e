"""Put the stand-in forge into the state a real team's Gitea would be in before a release:
the release-blocker label exists, CI has reported on the release commit, and a milestone
named after the version holds the issues the release closes. Uses the public Gitea API only.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.sandbox.coordinator_config import FORGE_URL

REPO_API = f"{FORGE_URL}/api/v1/repos/acme/sample"


def forge_client(world_dir: Path) -> httpx.Client:
    token = (world_dir / "forge-token").read_text(encoding="utf-8").strip()
    return httpx.Client(headers={"Authorization": f"token {token}"}, timeout=10.0)


def ensure_label(client: httpx.Client, name: str = "release-blocker", color: str = "#e11d21") -> int:
    for label in client.get(f"{REPO_API}/labels").json():
        if label["name"] == name:
            return int(label["id"])
    response = client.post(f"{REPO_API}/labels", json={"name": name, "color": color})
    response.raise_for_status()
    return int(response.json()["id"])


def create_milestone_with_issues(client: httpx.Client, title: str, issue_titles: list[str]) -> int:
    response = client.post(f"{REPO_API}/milestones", json={"title": title})
    response.raise_for_status()
    milestone_id = int(response.json()["id"])
    for issue_title in issue_titles:
        client.post(f"{REPO_API}/issues", json={"title": issue_title, "milestone": milestone_id}).raise_for_status()
    return milestone_id


def open_issue(client: httpx.Client, title: str, labels: list[int] | None = None) -> int:
    response = client.post(f"{REPO_API}/issues", json={"title": title, "labels": labels or []})
    response.raise_for_status()
    return int(response.json()["number"])


def set_commit_status(client: httpx.Client, sha: str, state: str, context: str = "ci/standin") -> None:
    client.post(f"{REPO_API}/statuses/{sha}", json={"state": state, "context": context}).raise_for_status()


def wait_for_green(client: httpx.Client, sha: str, timeout_s: float = 20.0) -> None:
    """The stand-in's branch CI reports shortly after a push; wait for it (bounded)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = client.get(f"{REPO_API}/commits/{sha}/status").json()
        if body.get("total_count", 0) > 0 and body.get("state") == "success":
            return
        time.sleep(0.2)
    raise TimeoutError(f"no green CI status on {sha[:12]} after {timeout_s:.0f}s")


def register_person(login: str, teams: list[str] | None = None, token: str | None = None) -> str:
    """Give `login` their own token on the stand-in (and org/team memberships); returns the token.

    Team mode verifies approvers by the token they run with (`GET /user`), so each person
    in a test or the demo needs one. Not Gitea API: the stand-in's admin endpoint."""
    token = token or f"sandbox-token-person-{login}"
    response = httpx.post(f"{FORGE_URL}/_standin/users", json={"login": login, "token": token, "teams": teams or []},
                          timeout=10.0)
    response.raise_for_status()
    return token


def start_coordinator_job(token: str, ref: str = "main") -> str:
    """Start the "coordinator job" on `ref` as the token's owner (Gitea's workflow dispatch) and return the
    run's id: `release --ci-run ID` names its trigger as the releaser, as a release in a real CI job would."""
    response = httpx.post(f"{REPO_API}/actions/workflows/coordinator.yml/dispatches", json={"ref": ref},
                          params={"return_run_details": "true"}, headers={"Authorization": f"token {token}"},
                          timeout=10.0)
    response.raise_for_status()
    return str(response.json()["workflow_run_id"])
