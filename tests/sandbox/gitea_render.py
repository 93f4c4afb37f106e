"""Turn the stand-in's records into the JSON Gitea 1.26 sends, field for field.

Only this module knows Gitea's field names and URL shapes, so a difference from the
swagger document is fixed in one place (the contract tests check every response).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.sandbox import gitea_git
from tests.sandbox.gitea_store import EPOCH, Artifact, Comment, CommitStatus, Issue, Label, Milestone, Release, RepoState, Run

ADMIN_LOGIN = "sandbox-admin"
ADMIN_ID = 1
STANDIN_VERSION = "1.26.3+standin"
JOB_NAME = "build"
WORKFLOW_PATH = ".gitea/workflows/release.yml"


@dataclass(frozen=True)
class RepoView:
    """Where a repository lives: what every URL in a response is built from."""

    base_url: str  # http://127.0.0.1:45300
    owner: str
    name: str
    repo_id: int

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def api(self) -> str:
        return f"{self.base_url}/api/v1/repos/{self.full_name}"

    @property
    def html(self) -> str:
        return f"{self.base_url}/{self.full_name}"


def user(base_url: str, login: str = ADMIN_LOGIN, user_id: int = ADMIN_ID) -> dict[str, Any]:
    return {"id": user_id, "login": login, "login_name": "", "source_id": 0, "full_name": "", "email":
            f"{login}@sandbox.invalid", "avatar_url": f"{base_url}/avatars/{login}", "html_url": f"{base_url}/{login}",
            "language": "", "is_admin": user_id == ADMIN_ID, "last_login": EPOCH, "created": EPOCH,
            "restricted": False, "active": True, "prohibit_login": False, "location": "", "website": "",
            "description": "", "visibility": "public", "followers_count": 0, "following_count": 0,
            "starred_repos_count": 0}


def repository(view: RepoView, state: RepoState, default_branch: str) -> dict[str, Any]:
    open_issues = sum(1 for i in state.issues if not i.is_pull and i.state == "open")
    open_pulls = sum(1 for i in state.issues if i.is_pull and i.state == "open")
    return {
        "id": view.repo_id, "owner": user(view.base_url, view.owner, 2), "name": view.name,
        "full_name": view.full_name, "description": "", "empty": False, "private": False, "fork": False,
        "template": False, "mirror": False, "size": 0, "language": "", "languages_url": f"{view.api}/languages",
        "html_url": view.html, "url": view.api, "link": "", "ssh_url": f"git@127.0.0.1:{view.full_name}.git",
        "clone_url": f"{view.html}.git", "original_url": "", "website": "", "stars_count": 0, "forks_count": 0,
        "watchers_count": 0, "open_issues_count": open_issues, "open_pr_counter": open_pulls,
        "release_counter": len([r for r in state.releases if not r.draft]), "default_branch": default_branch,
        "archived": False, "created_at": EPOCH, "updated_at": EPOCH, "archived_at": EPOCH,
        "permissions": {"admin": True, "push": True, "pull": True}, "has_code": True, "has_issues": True,
        "internal_tracker": {"enable_time_tracker": False, "allow_only_contributors_to_track_time": True,
                             "enable_issue_dependencies": True},
        "has_wiki": False, "has_pull_requests": True, "has_projects": False, "projects_mode": "all",
        "has_releases": True, "has_packages": False, "has_actions": True, "ignore_whitespace_conflicts": False,
        "allow_merge_commits": True, "allow_rebase": True, "allow_rebase_explicit": True,
        "allow_squash_merge": True, "allow_fast_forward_only_merge": True, "allow_rebase_update": True,
        "allow_manual_merge": False, "autodetect_manual_merge": False, "default_delete_branch_after_merge": False,
        "default_merge_style": "merge", "default_allow_maintainer_edit": False, "avatar_url": "", "internal": False,
        "mirror_interval": "", "object_format_name": "sha1", "mirror_updated": EPOCH, "topics": [], "licenses": [],
    }


def tag(view: RepoView, item: gitea_git.TagRef) -> dict[str, Any]:
    return {"name": item.name, "message": item.message, "id": item.object_sha,
            "commit": {"url": f"{view.api}/git/commits/{item.commit_sha}", "sha": item.commit_sha,
                       "created": item.created},
            "zipball_url": f"{view.html}/archive/{item.name}.zip",
            "tarball_url": f"{view.html}/archive/{item.name}.tar.gz"}


def reference(view: RepoView, ref: gitea_git.Ref) -> dict[str, Any]:
    kind = "tags" if ref.object_type == "tag" else "commits"
    return {"ref": ref.name, "url": f"{view.api}/git/{ref.name}",
            "object": {"type": ref.object_type, "sha": ref.object_sha, "url": f"{view.api}/git/{kind}/{ref.object_sha}"}}


def commit_status(view: RepoView, item: CommitStatus) -> dict[str, Any]:
    # Creating takes `state`; the stored object answers `status` (a Gitea quirk).
    return {"id": item.id, "status": item.state, "target_url": item.target_url, "description": item.description,
            "url": f"{view.api}/statuses/{item.sha}", "context": item.context,
            "creator": user(view.base_url), "created_at": item.created_at, "updated_at": item.created_at}


def combined_state(latest: list[CommitStatus]) -> str:
    """Worst state wins; since 1.26 `warning` counts as failure; nothing reported is pending."""
    states = {s.state for s in latest}
    if not states:
        return "pending"
    if "error" in states:
        return "error"
    if states & {"failure", "warning"}:
        return "failure"
    if "pending" in states:
        return "pending"
    return "success"


def combined_status(view: RepoView, sha: str, latest: list[CommitStatus], repo_json: dict[str, Any]) -> dict[str, Any]:
    return {"state": combined_state(latest), "sha": sha, "total_count": len(latest),
            "statuses": [commit_status(view, s) for s in latest] or None,  # Gitea sends null, not []
            "repository": repo_json, "commit_url": f"{view.api}/commits/{sha}",
            "url": f"{view.api}/commits/{sha}/status"}


def label(view: RepoView, item: Label) -> dict[str, Any]:
    return {"id": item.id, "name": item.name, "exclusive": item.exclusive, "is_archived": False,
            "color": item.color.lstrip("#"), "description": item.description, "url": f"{view.api}/labels/{item.id}"}


def milestone(item: Milestone, state: RepoState) -> dict[str, Any]:
    members = [i for i in state.issues if i.milestone_id == item.id]
    return {"id": item.id, "title": item.title, "description": item.description, "state": item.state,
            "open_issues": sum(1 for i in members if i.state == "open"),
            "closed_issues": sum(1 for i in members if i.state == "closed"),
            "created_at": item.created_at, "updated_at": item.updated_at, "closed_at": item.closed_at,
            "due_on": item.due_on}


def issue(view: RepoView, item: Issue, state: RepoState) -> dict[str, Any]:
    labels = [label(view, lab) for lab in state.labels if lab.id in item.label_ids]
    ms = next((m for m in state.milestones if m.id == item.milestone_id), None)
    kind = "pulls" if item.is_pull else "issues"
    body: dict[str, Any] = {
        "id": item.id, "url": f"{view.api}/issues/{item.number}", "html_url": f"{view.html}/{kind}/{item.number}",
        "number": item.number, "user": user(view.base_url), "original_author": "", "original_author_id": 0,
        "title": item.title, "body": item.body, "ref": "", "assets": [], "labels": labels,
        "milestone": milestone(ms, state) if ms else None, "assignee": None, "assignees": None,
        "state": item.state, "is_locked": False,
        "comments": sum(1 for c in state.comments if c.issue_number == item.number), "created_at": item.created_at,
        "updated_at": item.updated_at, "closed_at": item.closed_at, "due_date": None, "time_estimate": 0,
        "pull_request": None, "repository": {"id": view.repo_id, "name": view.name, "owner": view.owner,
                                             "full_name": view.full_name},
        "pin_order": 0, "content_version": 0,
    }
    if item.is_pull:
        body["pull_request"] = {"merged": False, "merged_at": None, "draft": False, "html_url": body["html_url"]}
    return body


def release(view: RepoView, item: Release) -> dict[str, Any]:
    return {"id": item.id, "tag_name": item.tag_name, "target_commitish": item.target_commitish,
            "name": item.name, "body": item.body, "url": f"{view.api}/releases/{item.id}",
            "html_url": f"{view.html}/releases/tag/{item.tag_name}",
            "tarball_url": f"{view.html}/archive/{item.tag_name}.tar.gz",
            "zipball_url": f"{view.html}/archive/{item.tag_name}.zip",
            "upload_url": f"{view.api}/releases/{item.id}/assets", "draft": item.draft,
            "prerelease": item.prerelease, "created_at": item.created_at,
            "published_at": item.created_at, "author": user(view.base_url), "assets": []}


def run(view: RepoView, item: Run, repo_json: dict[str, Any], actor: dict[str, Any] | None = None) -> dict[str, Any]:
    """`actor` is the user who triggered the run (the stand-in has no re-runs, so it is also `trigger_actor`)."""
    who = actor or user(view.base_url)
    body: dict[str, Any] = {
        "id": item.id, "url": f"{view.api}/actions/runs/{item.id}",
        "html_url": f"{view.html}/actions/runs/{item.run_number}", "display_title": item.title,
        "path": f"{item.workflow}@{item.ref}", "event": item.event, "run_attempt": 1, "run_number": item.run_number,
        "head_sha": item.head_sha, "status": item.status, "actor": who,
        "trigger_actor": who, "repository": repo_json, "head_repository": repo_json,
        "repository_id": view.repo_id, "started_at": item.started_at, "completed_at": item.completed_at,
    }
    if item.ref.startswith("refs/heads/"):
        body["head_branch"] = item.ref.removeprefix("refs/heads/")  # tag runs omit it
    if item.status == "completed" and item.conclusion:
        body["conclusion"] = item.conclusion  # absent until completed
    return body


def job(view: RepoView, item: Run) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": item.job_id, "url": f"{view.api}/actions/jobs/{item.job_id}",
        "html_url": f"{view.html}/actions/runs/{item.run_number}/jobs/0", "run_id": item.id,
        "run_url": f"{view.api}/actions/runs/{item.id}", "name": JOB_NAME, "labels": ["ubuntu-latest"],
        "run_attempt": 1, "head_sha": item.head_sha, "status": item.status, "runner_id": 1,
        "runner_name": "standin-runner", "created_at": item.created_at, "started_at": item.started_at,
        "completed_at": item.completed_at,
        "steps": [{"name": "Build and push the image", "number": 1, "status": item.status,
                   "started_at": item.started_at, "completed_at": item.completed_at,
                   **({"conclusion": item.conclusion} if item.conclusion else {})}],
    }
    if item.ref.startswith("refs/heads/"):
        body["head_branch"] = item.ref.removeprefix("refs/heads/")
    if item.status == "completed" and item.conclusion:
        body["conclusion"] = item.conclusion
    return body


def artifact(view: RepoView, item: Artifact, parent: Run, size: int) -> dict[str, Any]:
    return {"id": item.id, "name": item.name, "size_in_bytes": size, "url": f"{view.api}/actions/artifacts/{item.id}",
            "archive_download_url": f"{view.api}/actions/artifacts/{item.id}/zip", "expired": False,
            "created_at": item.created_at, "updated_at": item.created_at, "expires_at": item.expires_at,
            "workflow_run": {"id": parent.id, "repository_id": view.repo_id, "head_sha": parent.head_sha}}


def comment(view: RepoView, item: Comment, author: dict[str, Any]) -> dict[str, Any]:
    return {"id": item.id, "html_url": f"{view.html}/issues/{item.issue_number}#issuecomment-{item.id}",
            "pull_request_url": "", "issue_url": f"{view.api}/issues/{item.issue_number}", "user": author,
            "original_author": "", "original_author_id": 0, "body": item.body, "assets": [],
            "created_at": item.created_at, "updated_at": item.updated_at}
