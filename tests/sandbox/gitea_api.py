"""The stand-in's Gitea API: requests in, replies out, no sockets.

`ForgeAPI.handle(Request) -> Reply` is everything the HTTP server calls, which keeps the
quirks (what Gitea 1.26 does that its swagger does not say, see GITEA-NOTES.md) in one
readable place and testable without a network. Rendering is `gitea_render`'s job,
storage `gitea_store`'s, git access `gitea_git`'s.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tests.sandbox import gitea_git as git
from tests.sandbox import gitea_render as render
from tests.sandbox.gitea_render import RepoView
from tests.sandbox.gitea_store import (Artifact, CIConfig, Comment, CommitStatus, Issue, Label, Milestone, Release,
                                 RepoState, Run, Store, now_iso)
from tests.sandbox.gitea_users import Users

DEFAULT_LIMIT = 30
MAX_LIMIT = 50
STATUS_STATES = ("pending", "success", "error", "failure", "warning", "skipped")
_HEX_COLOR = re.compile(r"#?[0-9a-fA-F]{6}")


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query string
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""

    def json(self) -> dict[str, Any]:
        if not self.body.strip():
            return {}
        try:
            value = json.loads(self.body)
        except json.JSONDecodeError as exc:
            raise ApiError(422, f"request body is not JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise ApiError(422, "request body must be a JSON object")
        return value


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    """Answered as Gitea's `{"message", "url"}` error body with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_reply(status: int, value: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(value).encode(), {"Content-Type": "application/json;charset=utf-8",
                                                      **(headers or {})})


def discover_repos(git_root: Path) -> dict[str, Path]:
    """`{owner}/{repo}` for every bare repo at `git_root/{owner}/{repo}.git`."""
    if not git_root.is_dir():
        return {}
    return {f"{path.parent.name}/{path.name.removesuffix('.git')}": path
            for path in sorted(git_root.glob("*/*.git")) if path.is_dir() and not path.name.startswith(".")}


def repo_id(full_name: str) -> int:
    return zlib.crc32(full_name.encode()) % 900_000 + 100


class ForgeAPI:
    """Gitea's REST API for the repositories under `git_root`, plus the admin endpoints."""

    def __init__(self, store: Store, git_root: Path, token: str, base_url: Callable[[], str],
                 blob_secret: bytes, on_reset: Callable[[], None]) -> None:
        self.store = store
        self.git_root = git_root
        self.token = token
        self.base_url = base_url
        self.blob_secret = blob_secret
        self.on_reset = on_reset
        self.users = Users(token)
        table: list[tuple[str, str, Callable[..., Reply]]] = [
            ("GET", r"", self.get_repo),
            ("GET", r"/commits/(?P<ref>.+)/status", self.get_combined_status),
            ("GET", r"/commits/(?P<ref>.+)/statuses", self.list_statuses),
            ("GET", r"/statuses/(?P<ref>[^/]+)", self.list_statuses),
            ("POST", r"/statuses/(?P<sha>[^/]+)", self.create_status),
            ("GET", r"/tags", self.list_tags),
            ("GET", r"/tags/(?P<tag>.+)", self.get_tag),
            ("GET", r"/git/refs", self.get_refs),
            ("GET", r"/git/refs/(?P<ref>.+)", self.get_refs),
            ("GET", r"/labels", self.list_labels),
            ("POST", r"/labels", self.create_label),
            ("GET", r"/issues", self.list_issues),
            ("POST", r"/issues", self.create_issue),
            ("GET", r"/issues/(?P<index>\d+)", self.get_issue),
            ("GET", r"/issues/(?P<index>\d+)/comments", self.list_comments),
            ("POST", r"/issues/(?P<index>\d+)/comments", self.create_comment),
            ("GET", r"/issues/comments/(?P<comment_id>\d+)", self.get_comment),
            ("PATCH", r"/issues/comments/(?P<comment_id>\d+)", self.edit_comment),
            ("PATCH", r"/issues/(?P<index>\d+)", self.edit_issue),
            ("GET", r"/milestones", self.list_milestones),
            ("POST", r"/milestones", self.create_milestone),
            ("GET", r"/milestones/(?P<key>[^/]+)", self.get_milestone),
            ("PATCH", r"/milestones/(?P<key>[^/]+)", self.edit_milestone),
            ("GET", r"/releases", self.list_releases),
            ("POST", r"/releases", self.create_release),
            ("GET", r"/releases/tags/(?P<tag>.+)", self.get_release_by_tag),
            ("GET", r"/releases/(?P<id>\d+)", self.get_release),
            ("PATCH", r"/releases/(?P<id>\d+)", self.edit_release),
            ("DELETE", r"/releases/(?P<id>\d+)", self.delete_release),
            ("GET", r"/actions/runs", self.list_runs),
            ("GET", r"/actions/runs/(?P<run>\d+)", self.get_run),
            ("GET", r"/actions/runs/(?P<run>\d+)/jobs", self.list_jobs),
            ("GET", r"/actions/runs/(?P<run>\d+)/artifacts", self.list_artifacts),
            ("GET", r"/actions/jobs/(?P<job>\d+)", self.get_job),
            ("GET", r"/actions/jobs/(?P<job>\d+)/logs", self.get_job_logs),
            ("GET", r"/actions/artifacts/(?P<artifact>\d+)", self.get_artifact),
            ("GET", r"/actions/artifacts/(?P<artifact>\d+)/zip", self.download_artifact),
            ("POST", r"/actions/workflows/(?P<workflow>[^/]+)/dispatches", self.dispatch_workflow),
        ]
        self._routes = [(m, re.compile(p + r"\Z"), h) for m, p, h in table]
        # Outside /repos/{owner}/{repo}: who a token belongs to, and team membership.
        account_table: list[tuple[str, str, Callable[..., Reply]]] = [
            ("GET", r"/user", self.get_user),
            ("GET", r"/orgs/(?P<org>[^/]+)/teams", self.list_org_teams),
            ("GET", r"/teams/(?P<team_id>\d+)/members/(?P<username>[^/]+)", self.get_team_member),
        ]
        self._account_routes = [(m, re.compile(p + r"\Z"), h) for m, p, h in account_table]

    # -- dispatch ----------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        """Answer one request; handlers run under the store lock, so each sees (and leaves)
        a consistent state while the CI threads work."""
        try:
            with self.store.lock:
                return self._dispatch(request)
        except ApiError as exc:
            return self.error(exc.status, exc.message)
        except git.GitUnavailable as exc:
            return self.error(500, f"git: {exc.message}")

    def error(self, status: int, message: str) -> Reply:
        body: dict[str, Any] = {"message": message, "url": f"{self.base_url()}/api/swagger"}
        if status == 404:
            body["errors"] = [message]
        return json_reply(status, body)

    def _dispatch(self, request: Request) -> Reply:
        path = request.path
        if path.startswith("/_standin/"):
            return self._admin(request)
        if not path.startswith("/api/v1/"):
            raise ApiError(404, f"{path} is not served here; the API is under /api/v1")
        path = path.removeprefix("/api/v1")
        if self._inject_500(path):
            raise ApiError(500, "stand-in: injected internal error (fail_500_count)")
        if path == "/version" and request.method == "GET":
            return json_reply(200, {"version": render.STANDIN_VERSION})
        for method, pattern, handler in self._account_routes:
            found = pattern.match(path)
            if found and method == request.method:
                self._authenticate(request)
                return handler(request, **found.groupdict())
        match = re.match(r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)(?P<rest>/.*)?\Z", path)
        if not match:
            raise ApiError(404, f"{request.method} {path} is not implemented by the stand-in")
        self._authenticate(request)
        full_name = f"{match['owner']}/{match['repo']}"
        bare = discover_repos(self.git_root).get(full_name)
        if bare is None:
            raise ApiError(404, f"repository {full_name} does not exist")
        rest = (match["rest"] or "").rstrip("/")
        allowed = []
        for method, pattern, handler in self._routes:
            found = pattern.match(rest)
            if found:
                if method == request.method:
                    view = RepoView(self.base_url(), match["owner"], match["repo"], repo_id(full_name))
                    return handler(request, view, bare, **found.groupdict())
                allowed.append(method)
        if allowed:
            raise ApiError(405, f"{request.method} is not allowed on {path} (allowed: {', '.join(allowed)})")
        raise ApiError(404, f"{request.method} {path} is not implemented by the stand-in")

    def _authenticate(self, request: Request) -> None:
        """Header tokens only: a token in the query string is refused, never accepted."""
        if {"token", "access_token"} & set(request.query):
            raise ApiError(401, "tokens in the query string are not accepted; send 'Authorization: token <t>'")
        if self._login(request) is None:
            raise ApiError(401, "token is required: send 'Authorization: token <t>' with a valid token")

    def _login(self, request: Request) -> str | None:
        """The login the request's token belongs to (the world's token is sandbox-admin's)."""
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() not in ("token", "bearer"):
            return None
        return self.users.login_for(value.strip())

    # -- accounts and teams (team mode) -------------------------------------------------

    def get_user(self, request: Request) -> Reply:
        login = self._login(request)
        assert login is not None  # authenticated
        return json_reply(200, self.users.user_json(self.base_url(), login))

    def _org_id(self, org: str) -> int:
        owners = {name.split("/", 1)[0] for name in discover_repos(self.git_root)}
        if org not in owners | {t.org for t in self.users.teams.values()}:
            raise ApiError(404, f"organization {org} does not exist")
        return repo_id(org)

    def list_org_teams(self, request: Request, org: str) -> Reply:
        from tests.sandbox.gitea_users import team

        org_id = self._org_id(org)
        items = [team(self.base_url(), item, org_id) for item in self.users.org_teams(org)]
        page, headers = self._page(request, items)
        return json_reply(200, page, headers)

    def get_team_member(self, request: Request, team_id: str, username: str) -> Reply:
        found = self.users.teams.get(int(team_id))
        if found is None:
            raise ApiError(404, f"team {team_id} does not exist")
        if username not in found.members:
            raise ApiError(404, f"user {username} is not a member of team {found.name}")
        return json_reply(200, self.users.user_json(self.base_url(), username))

    # -- helpers -----------------------------------------------------------------------

    def _state(self, view: RepoView) -> RepoState:
        return self.store.repo(view.full_name)

    def _repo_json(self, view: RepoView, bare: Path) -> dict[str, Any]:
        return render.repository(view, self._state(view), git.default_branch(bare))

    def _page(self, request: Request, items: list[Any], *, link: bool = True) -> tuple[list[Any], dict[str, str]]:
        """Gitea's paging: 1-based `page`, `limit` default 30 silently capped at 50, the
        total in `X-Total-Count` and neighbouring pages in `Link`."""
        page = max(_int(request.query.get("page"), 1), 1)
        limit = _int(request.query.get("limit"), DEFAULT_LIMIT)
        limit = DEFAULT_LIMIT if limit <= 0 else min(limit, MAX_LIMIT)
        total = len(items)
        headers = {"X-Total-Count": str(total)}
        last = max((total + limit - 1) // limit, 1)
        if link:
            links = []
            base = f"{self.base_url()}{request.path}"

            def url(number: int) -> str:
                return f"{base}?{urlencode({**request.query, 'limit': limit, 'page': number})}"

            if page < last:
                links += [f'<{url(page + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
            if page > 1:
                links += [f'<{url(1)}>; rel="first"', f'<{url(min(page - 1, last))}>; rel="prev"']
            if links:
                headers["Link"] = ",".join(links)
        return items[(page - 1) * limit: page * limit], headers

    def _commit_for(self, bare: Path, ref: str) -> str:
        sha = git.resolve_commit(bare, ref)
        if sha is None:
            raise ApiError(404, f"no branch, tag or commit named {ref!r}")
        return sha

    # -- repository, statuses ----------------------------------------------------------

    def get_repo(self, request: Request, view: RepoView, bare: Path) -> Reply:
        return json_reply(200, self._repo_json(view, bare))

    def _statuses_for(self, view: RepoView, sha: str) -> list[CommitStatus]:
        return sorted((s for s in self._state(view).statuses if s.sha == sha), key=lambda s: -s.id)

    def get_combined_status(self, request: Request, view: RepoView, bare: Path, ref: str) -> Reply:
        sha = self._commit_for(bare, ref)
        latest: dict[str, CommitStatus] = {}
        for status in self._statuses_for(view, sha):
            latest.setdefault(status.context, status)
        return json_reply(200, render.combined_status(view, sha, list(latest.values()), self._repo_json(view, bare)))

    def list_statuses(self, request: Request, view: RepoView, bare: Path, ref: str) -> Reply:
        sha = self._commit_for(bare, ref)
        wanted = request.query.get("state")
        items = [s for s in self._statuses_for(view, sha) if not wanted or s.state == wanted]
        page, headers = self._page(request, items)
        return json_reply(200, [render.commit_status(view, s) for s in page], headers)

    def create_status(self, request: Request, view: RepoView, bare: Path, sha: str) -> Reply:
        form = request.json()
        state = form.get("state")
        if state not in STATUS_STATES:
            raise ApiError(400, f"state {state!r} is invalid; use one of {', '.join(STATUS_STATES)}")
        full_sha = git.resolve_commit(bare, sha) if re.fullmatch(r"[0-9a-f]{7,64}", sha) else None
        if full_sha is None:
            raise ApiError(404, f"commit {sha!r} does not exist")
        with self.store.change():
            status = CommitStatus(id=self.store.new_id(), sha=full_sha, state=state,
                                  context=str(form.get("context") or "default"),
                                  description=str(form.get("description") or ""),
                                  target_url=str(form.get("target_url") or ""))
            self._state(view).statuses.append(status)
        return json_reply(201, render.commit_status(view, status))

    # -- tags and refs -----------------------------------------------------------------

    def list_tags(self, request: Request, view: RepoView, bare: Path) -> Reply:
        page, headers = self._page(request, git.list_tags(bare), link=False)  # /tags sends no Link
        return json_reply(200, [render.tag(view, t) for t in page], headers)

    def get_tag(self, request: Request, view: RepoView, bare: Path, tag: str) -> Reply:
        found = git.get_tag(bare, tag)
        if found is None:
            raise ApiError(404, f"tag {tag!r} does not exist")
        return json_reply(200, render.tag(view, found))

    def get_refs(self, request: Request, view: RepoView, bare: Path, ref: str = "") -> Reply:
        """A prefix match: one exact hit is an object, anything else an array."""
        wanted = "refs/" + ref.removeprefix("refs/") if ref else "refs/"
        hits = [r for r in git.list_refs(bare) if r.name.startswith(wanted)]
        if not hits:
            raise ApiError(404, f"no ref starts with {wanted!r}")
        if len(hits) == 1 and hits[0].name == wanted:
            return json_reply(200, render.reference(view, hits[0]))
        return json_reply(200, [render.reference(view, r) for r in hits])

    # -- labels and issues -------------------------------------------------------------

    def list_labels(self, request: Request, view: RepoView, bare: Path) -> Reply:
        page, headers = self._page(request, self._state(view).labels)
        return json_reply(200, [render.label(view, lab) for lab in page], headers)

    def create_label(self, request: Request, view: RepoView, bare: Path) -> Reply:
        form = request.json()
        name, color = str(form.get("name") or "").strip(), str(form.get("color") or "")
        if not name:
            raise ApiError(422, "name is required")
        if not _HEX_COLOR.fullmatch(color):
            raise ApiError(422, f"color {color!r} is invalid; use a hex colour such as #e11d21")
        with self.store.change():
            item = Label(id=self.store.new_id(), name=name, color=color.lstrip("#"),
                         description=str(form.get("description") or ""), exclusive=bool(form.get("exclusive")))
            self._state(view).labels.append(item)
        return json_reply(201, render.label(view, item))

    def list_issues(self, request: Request, view: RepoView, bare: Path) -> Reply:
        state = self._state(view)
        wanted_state = request.query.get("state") or "open"
        items = [i for i in state.issues if wanted_state == "all" or i.state == wanted_state]
        kind = request.query.get("type")
        if kind == "issues":
            items = [i for i in items if not i.is_pull]
        elif kind == "pulls":
            items = [i for i in items if i.is_pull]
        names = [n.strip() for n in request.query.get("labels", "").split(",") if n.strip()]
        # Unknown names are silently dropped; if none is left there is no label filter at all.
        label_ids = {lab.id for lab in state.labels if lab.name in names}
        if label_ids:
            items = [i for i in items if label_ids <= set(i.label_ids)]
        keys = [k.strip() for k in request.query.get("milestones", "").split(",") if k.strip()]
        milestone_ids = {m.id for m in state.milestones if m.title in keys or str(m.id) in keys}
        if milestone_ids:
            items = [i for i in items if i.milestone_id in milestone_ids]
        items.sort(key=lambda i: -i.id)  # newest first
        page, headers = self._page(request, items)
        return json_reply(200, [render.issue(view, i, state) for i in page], headers)

    def create_issue(self, request: Request, view: RepoView, bare: Path) -> Reply:
        form = request.json()
        title = str(form.get("title") or "").strip()
        if not title:
            raise ApiError(422, "title is required")
        state = self._state(view)
        label_ids = [int(x) for x in form.get("labels") or []]
        unknown = set(label_ids) - {lab.id for lab in state.labels}
        if unknown:
            raise ApiError(422, f"label ids {sorted(unknown)} do not exist in {view.full_name}")
        milestone_id = self._milestone_id(state, form.get("milestone"))
        with self.store.change():
            closed = bool(form.get("closed"))
            item = Issue(id=self.store.new_id(), number=len(state.issues) + 1, title=title,
                         body=str(form.get("body") or ""), state="closed" if closed else "open",
                         label_ids=label_ids, milestone_id=milestone_id,
                         is_pull=bool(form.get("pull_request")),  # stand-in extension for seeding PRs
                         closed_at=now_iso() if closed else None)
            state.issues.append(item)
        return json_reply(201, render.issue(view, item, state))

    def _find_issue(self, view: RepoView, index: str) -> Issue:
        found = next((i for i in self._state(view).issues if i.number == int(index)), None)
        if found is None:
            raise ApiError(404, f"issue #{index} does not exist in {view.full_name}")
        return found

    def _milestone_id(self, state: RepoState, value: Any) -> int | None:
        if value in (None, 0):
            return None
        if not any(m.id == int(value) for m in state.milestones):
            raise ApiError(422, f"milestone id {value} does not exist")
        return int(value)

    def get_issue(self, request: Request, view: RepoView, bare: Path, index: str) -> Reply:
        return json_reply(200, render.issue(view, self._find_issue(view, index), self._state(view)))

    def edit_issue(self, request: Request, view: RepoView, bare: Path, index: str) -> Reply:
        """Answers 201, not 200: a Gitea quirk clients must accept."""
        form = request.json()
        item = self._find_issue(view, index)
        state = self._state(view)
        if "state" in form and form["state"] not in ("open", "closed"):
            raise ApiError(422, f"state {form['state']!r} is invalid; use open or closed")
        with self.store.change():
            if "title" in form and form["title"]:
                item.title = str(form["title"])
            if "body" in form and form["body"] is not None:
                item.body = str(form["body"])
            if "milestone" in form:
                item.milestone_id = self._milestone_id(state, form["milestone"])
            if form.get("state") and form["state"] != item.state:
                item.state = form["state"]
                item.closed_at = now_iso() if item.state == "closed" else None
            item.updated_at = now_iso()
        return json_reply(201, render.issue(view, item, state))

    # -- issue comments (team mode: approvals are comments the forge attributes) -------------

    def _render_comment(self, view: RepoView, item: Comment) -> dict[str, Any]:
        author = (self.users.user_json(self.base_url(), item.user) if item.user in self.users.ids
                  else render.user(view.base_url))
        return render.comment(view, item, author)

    def _find_comment(self, view: RepoView, comment_id: str) -> Comment:
        found = next((c for c in self._state(view).comments if c.id == int(comment_id)), None)
        if found is None:
            raise ApiError(404, f"comment {comment_id} does not exist in {view.full_name}")
        return found

    def list_comments(self, request: Request, view: RepoView, bare: Path, index: str) -> Reply:
        """Oldest first and unpaginated, as Gitea answers this endpoint."""
        number = self._find_issue(view, index).number
        items = [c for c in self._state(view).comments if c.issue_number == number]
        return json_reply(200, [self._render_comment(view, c) for c in items])

    def create_comment(self, request: Request, view: RepoView, bare: Path, index: str) -> Reply:
        body = str(request.json().get("body") or "")
        number = self._find_issue(view, index).number
        login = self._login(request)
        assert login is not None  # authenticated
        with self.store.change():
            item = Comment(id=self.store.new_id(), issue_number=number, user=login, body=body)
            self._state(view).comments.append(item)
        return json_reply(201, self._render_comment(view, item))

    def get_comment(self, request: Request, view: RepoView, bare: Path, comment_id: str) -> Reply:
        return json_reply(200, self._render_comment(view, self._find_comment(view, comment_id)))

    def edit_comment(self, request: Request, view: RepoView, bare: Path, comment_id: str) -> Reply:
        """Any token with write access may edit anyone's comment (Gitea's rule); the author stays."""
        item = self._find_comment(view, comment_id)
        body = request.json().get("body")
        with self.store.change():
            if body is not None:
                item.body = str(body)
            item.updated_at = now_iso()
        return json_reply(200, self._render_comment(view, item))

    # -- milestones --------------------------------------------------------------------

    def list_milestones(self, request: Request, view: RepoView, bare: Path) -> Reply:
        state = self._state(view)
        wanted = request.query.get("state") or "open"
        name = request.query.get("name", "").lower()
        # `name` is a case-insensitive *contains* match, as in Gitea: compare titles exactly.
        items = [m for m in state.milestones if (wanted == "all" or m.state == wanted) and name in m.title.lower()]
        page, headers = self._page(request, items)
        return json_reply(200, [render.milestone(m, state) for m in page], headers)

    def create_milestone(self, request: Request, view: RepoView, bare: Path) -> Reply:
        form = request.json()
        title = str(form.get("title") or "").strip()
        if not title:
            raise ApiError(422, "title is required")
        state = self._state(view)
        with self.store.change():
            closed = form.get("state") == "closed"
            item = Milestone(id=self.store.new_id(), title=title, description=str(form.get("description") or ""),
                             state="closed" if closed else "open", due_on=form.get("due_on"),
                             closed_at=now_iso() if closed else None)
            state.milestones.append(item)
        return json_reply(201, render.milestone(item, state))

    def _find_milestone(self, view: RepoView, key: str) -> Milestone:
        """By id first, then by exact title (Gitea's "id or name")."""
        milestones = self._state(view).milestones
        found = next((m for m in milestones if key.isdigit() and m.id == int(key)), None)
        found = found or next((m for m in milestones if m.title == key), None)
        if found is None:
            raise ApiError(404, f"milestone {key!r} does not exist in {view.full_name}")
        return found

    def get_milestone(self, request: Request, view: RepoView, bare: Path, key: str) -> Reply:
        return json_reply(200, render.milestone(self._find_milestone(view, key), self._state(view)))

    def edit_milestone(self, request: Request, view: RepoView, bare: Path, key: str) -> Reply:
        form = request.json()
        item = self._find_milestone(view, key)
        if "state" in form and form["state"] not in ("open", "closed"):
            raise ApiError(422, f"state {form['state']!r} is invalid; use open or closed")
        with self.store.change():
            if form.get("title"):
                item.title = str(form["title"])
            if "description" in form and form["description"] is not None:
                item.description = str(form["description"])
            if "due_on" in form:
                item.due_on = form["due_on"]
            if form.get("state") and form["state"] != item.state:
                item.state = form["state"]
                item.closed_at = now_iso() if item.state == "closed" else None
            item.updated_at = now_iso()
        return json_reply(200, render.milestone(item, self._state(view)))

    # -- releases ----------------------------------------------------------------------

    def list_releases(self, request: Request, view: RepoView, bare: Path) -> Reply:
        items = sorted(self._state(view).releases, key=lambda r: -r.id)
        if "draft" in request.query:
            items = [r for r in items if r.draft == (request.query["draft"] == "true")]
        if "pre-release" in request.query:
            items = [r for r in items if r.prerelease == (request.query["pre-release"] == "true")]
        page, headers = self._page(request, items)
        return json_reply(200, [render.release(view, r) for r in page], headers)

    def create_release(self, request: Request, view: RepoView, bare: Path) -> Reply:
        """201; 409 when the tag already has a release. A tag only in git becomes the
        release at its commit; a new tag needs `target_commitish` and, unless the
        release is a draft, is created in git there."""
        form = request.json()
        tag_name = str(form.get("tag_name") or "").strip()
        if not tag_name:
            raise ApiError(422, "tag_name is required")
        state = self._state(view)
        draft = bool(form.get("draft"))
        target = str(form.get("target_commitish") or "")
        with self.store.change():
            if any(r.tag_name == tag_name for r in state.releases):
                raise ApiError(409, f"release for tag {tag_name!r} already exists; edit it instead")
            existing = git.get_tag(bare, tag_name)
            if existing is None:
                if not target:
                    raise ApiError(404, f"tag {tag_name!r} does not exist; push it first or give target_commitish")
                commit = git.resolve_commit(bare, target)
                if commit is None:
                    raise ApiError(422, f"target_commitish {target!r} is not a branch, tag or commit")
                if not draft:
                    git.create_lightweight_tag(bare, tag_name, commit)
            item = Release(id=self.store.new_id(), tag_name=tag_name,
                           target_commitish=target or git.default_branch(bare), name=str(form.get("name") or ""),
                           body=str(form.get("body") or ""), draft=draft, prerelease=bool(form.get("prerelease")))
            state.releases.append(item)
        return json_reply(201, render.release(view, item))

    def _find_release(self, view: RepoView, release_id: str) -> Release:
        found = next((r for r in self._state(view).releases if r.id == int(release_id)), None)
        if found is None:
            raise ApiError(404, f"release {release_id} does not exist in {view.full_name}")
        return found

    def get_release_by_tag(self, request: Request, view: RepoView, bare: Path, tag: str) -> Reply:
        found = next((r for r in self._state(view).releases if r.tag_name == tag), None)
        if found is None:
            raise ApiError(404, f"no release for tag {tag!r}")
        return json_reply(200, render.release(view, found))

    def get_release(self, request: Request, view: RepoView, bare: Path, id: str) -> Reply:  # noqa: A002
        return json_reply(200, render.release(view, self._find_release(view, id)))

    def edit_release(self, request: Request, view: RepoView, bare: Path, id: str) -> Reply:  # noqa: A002
        form = request.json()
        item = self._find_release(view, id)
        with self.store.change():
            for key in ("name", "body", "target_commitish", "tag_name"):
                if form.get(key) is not None and (key in ("name", "body") or form[key]):
                    setattr(item, key, str(form[key]))
            for key in ("draft", "prerelease"):
                if form.get(key) is not None:
                    setattr(item, key, bool(form[key]))
        return json_reply(200, render.release(view, item))

    def delete_release(self, request: Request, view: RepoView, bare: Path, id: str) -> Reply:  # noqa: A002
        item = self._find_release(view, id)
        with self.store.change():
            self._state(view).releases.remove(item)  # the git tag stays, as in Gitea
        return Reply(204)

    # -- actions -----------------------------------------------------------------------

    def list_runs(self, request: Request, view: RepoView, bare: Path) -> Reply:
        q = request.query
        runs = sorted(self._state(view).runs, key=lambda r: -r.id)  # newest first
        if q.get("event"):
            runs = [r for r in runs if r.event == q["event"]]
        if q.get("head_sha"):
            runs = [r for r in runs if r.head_sha == q["head_sha"]]
        if q.get("branch"):
            # Gitea compares with refs/heads/<branch>, so this never matches a tag run.
            runs = [r for r in runs if r.ref == f"refs/heads/{q['branch']}"]
        if q.get("status"):
            runs = [r for r in runs if q["status"] in (r.status, r.conclusion)]
        repo_json = self._repo_json(view, bare)
        page, headers = self._page(request, runs)
        return json_reply(200, {"total_count": len(runs),
                                "workflow_runs": [self._render_run(view, r, repo_json) for r in page]}, headers)

    def _render_run(self, view: RepoView, item: Run, repo_json: dict[str, Any]) -> dict[str, Any]:
        actor = self.users.known_user_json(self.base_url(), item.actor) if item.actor else None
        return render.run(view, item, repo_json, actor)

    def _find_run(self, view: RepoView, run_id: str) -> Run:
        found = next((r for r in self._state(view).runs if r.id == int(run_id)), None)
        if found is None:
            raise ApiError(404, f"run {run_id} does not exist in {view.full_name}")
        return found

    def get_run(self, request: Request, view: RepoView, bare: Path, run: str) -> Reply:
        return json_reply(200, self._render_run(view, self._find_run(view, run), self._repo_json(view, bare)))

    def dispatch_workflow(self, request: Request, view: RepoView, bare: Path, workflow: str) -> Reply:
        """Start a run of `workflow` on `ref` as the token's owner (its `actor`): a "coordinator job" that
        stays in progress, building nothing, until `POST /_standin/finish_run` ends it. 204, or 200 with
        RunDetails when `return_run_details` is true, as Gitea 1.26 answers."""
        if not re.fullmatch(r"[A-Za-z0-9_.-]+\.ya?ml", workflow):
            raise ApiError(404, f"workflow {workflow} does not exist (name a file under .gitea/workflows)")
        form = request.json()
        ref = form.get("ref")
        if not isinstance(ref, str) or not ref.strip():
            raise ApiError(422, "ref is required: the branch or tag to run the workflow on")
        inputs = form.get("inputs", {})
        if not isinstance(inputs, dict) or not all(isinstance(v, str) for v in inputs.values()):
            raise ApiError(422, "inputs must map names to strings")
        name = ref.removeprefix("refs/heads/").removeprefix("refs/tags/")
        sha = git.resolve_commit(bare, name)
        if sha is None:
            raise ApiError(404, f"no branch or tag named {ref!r}")
        full_ref = ref if ref.startswith("refs/") else (
            f"refs/tags/{name}" if git.get_tag(bare, name) is not None and name not in git.branch_heads(bare)
            else f"refs/heads/{name}")
        actor = self._login(request)
        assert actor is not None  # authenticated
        with self.store.change():
            state = self._state(view)
            item = Run(id=self.store.new_id(), run_number=len(state.runs) + 1, job_id=self.store.new_id(),
                       event="workflow_dispatch", head_sha=sha, ref=full_ref, title=f"{workflow} dispatched by {actor}",
                       status="in_progress", started_at=now_iso(), actor=actor, workflow=workflow)
            state.runs.append(item)
        if request.query.get("return_run_details", "").lower() != "true":
            return Reply(204)
        return json_reply(200, {"workflow_run_id": item.id, "run_url": f"{view.api}/actions/runs/{item.id}",
                                "html_url": f"{view.html}/actions/runs/{item.run_number}"})

    def list_jobs(self, request: Request, view: RepoView, bare: Path, run: str) -> Reply:
        item = self._find_run(view, run)
        return json_reply(200, {"total_count": 1, "jobs": [render.job(view, item)]})

    def _run_of_job(self, view: RepoView, job_id: str) -> Run:
        found = next((r for r in self._state(view).runs if r.job_id == int(job_id)), None)
        if found is None:
            raise ApiError(404, f"job {job_id} does not exist in {view.full_name}")
        return found

    def get_job(self, request: Request, view: RepoView, bare: Path, job: str) -> Reply:
        return json_reply(200, render.job(view, self._run_of_job(view, job)))

    def get_job_logs(self, request: Request, view: RepoView, bare: Path, job: str) -> Reply:
        item = self._run_of_job(view, job)
        return Reply(200, item.log.encode(), {"Content-Type": "text/plain;charset=utf-8"})

    def list_artifacts(self, request: Request, view: RepoView, bare: Path, run: str) -> Reply:
        item = self._find_run(view, run)
        wanted = request.query.get("name")
        found = [a for a in self._state(view).artifacts if a.run_id == item.id and (not wanted or a.name == wanted)]
        return json_reply(200, {"total_count": len(found),
                                "artifacts": [render.artifact(view, a, item, len(_zip(a.files))) for a in found]})

    def _find_artifact(self, view: RepoView, artifact_id: str) -> Artifact:
        found = next((a for a in self._state(view).artifacts if a.id == int(artifact_id)), None)
        if found is None:
            raise ApiError(404, f"artifact {artifact_id} does not exist in {view.full_name}")
        return found

    def get_artifact(self, request: Request, view: RepoView, bare: Path, artifact: str) -> Reply:
        item = self._find_artifact(view, artifact)
        parent = self._find_run(view, str(item.run_id))
        return json_reply(200, render.artifact(view, item, parent, len(_zip(item.files))))

    def download_artifact(self, request: Request, view: RepoView, bare: Path, artifact: str) -> Reply:
        """302 to a signed blob URL on this server, like Gitea's storage redirect."""
        item = self._find_artifact(view, artifact)
        location = f"{self.base_url()}/_standin/blobs/{item.id}?sig={self._sign(item.id)}"
        return Reply(302, b"", {"Location": location})

    def _sign(self, artifact_id: int) -> str:
        return hmac.new(self.blob_secret, str(artifact_id).encode(), hashlib.sha256).hexdigest()

    # -- admin (not Gitea) -------------------------------------------------------------

    def _admin(self, request: Request) -> Reply:
        path = request.path
        blob = re.fullmatch(r"/_standin/blobs/(\d+)", path)
        if blob and request.method == "GET":
            return self._serve_blob(int(blob[1]), request.query.get("sig", ""))
        if "authorization" in request.headers:  # optional, but a wrong one is refused
            self._authenticate(request)
        if path == "/_standin/reset" and request.method == "POST":
            self.on_reset()
            self.users.reset()
            return json_reply(200, {"reset": True})
        if path == "/_standin/users" and request.method == "POST":
            return self._add_user(request.json())
        if path == "/_standin/finish_run" and request.method == "POST":
            return self._finish_run(request.json())
        if path == "/_standin/config" and request.method == "POST":
            return self._configure(request.json())
        if path == "/_standin/config" and request.method == "GET":
            return json_reply(200, self.store.snapshot()["config"])
        if path == "/_standin/state" and request.method == "GET":
            return json_reply(200, self.store.snapshot())
        raise ApiError(404, f"{request.method} {path}: unknown admin endpoint")

    def _inject_500(self, path: str) -> bool:
        """Spend one injected 500 if this path matches `fail_500_path` (caller holds the lock)."""
        config: CIConfig = self.store.config
        if config.fail_500_count <= 0 or not re.search(config.fail_500_path, path):
            return False
        with self.store.change():
            config.fail_500_count -= 1
        return True

    def _configure(self, form: dict[str, Any]) -> Reply:
        known = {"branch_ci": bool, "ci_delay_s": float, "fail_next_run": bool, "fail_500_count": int,
                 "fail_500_path": str}
        unknown = set(form) - set(known)
        if unknown:
            raise ApiError(422, f"unknown config keys {sorted(unknown)}; known: {sorted(known)}")
        with self.store.change():
            for key, kind in known.items():
                if key in form:
                    if kind is float and (not isinstance(form[key], int | float) or form[key] < 0):
                        raise ApiError(422, f"{key} must be a number >= 0, got {form[key]!r}")
                    if kind is bool and not isinstance(form[key], bool):
                        raise ApiError(422, f"{key} must be true or false, got {form[key]!r}")
                    if kind is int and (isinstance(form[key], bool) or not isinstance(form[key], int) or form[key] < 0):
                        raise ApiError(422, f"{key} must be a whole number >= 0, got {form[key]!r}")
                    if kind is str and not _is_regex(form[key]):
                        raise ApiError(422, f"{key} must be a regular expression string, got {form[key]!r}")
                    setattr(self.store.config, key, kind(form[key]))
            config: CIConfig = self.store.config
        return json_reply(200, asdict(config))

    def _finish_run(self, form: dict[str, Any]) -> Reply:
        """End a dispatched run (the coordinator job finished): `{"repo", "run", "conclusion"}`."""
        repo, run_id, conclusion = form.get("repo"), form.get("run"), form.get("conclusion", "success")
        if conclusion not in ("success", "failure", "cancelled"):
            raise ApiError(422, f"conclusion must be success, failure or cancelled, got {conclusion!r}")
        found = next((r for r in self.store.repo(str(repo)).runs if r.id == run_id), None)
        if found is None or found.event != "workflow_dispatch":
            raise ApiError(404, f"no dispatched run {run_id!r} in {repo!r}")
        with self.store.change():
            found.status, found.conclusion, found.completed_at = "completed", str(conclusion), now_iso()
        return json_reply(200, {"run": found.id, "conclusion": found.conclusion})

    def _add_user(self, form: dict[str, Any]) -> Reply:
        """Register a person: their login, the token they will send, and their org/team memberships."""
        login, token, teams = form.get("login"), form.get("token"), form.get("teams", [])
        if not isinstance(login, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", login):
            raise ApiError(422, f"login must be a user name, got {login!r}")
        if not isinstance(token, str) or len(token) < 8:
            raise ApiError(422, "token must be a string of at least 8 characters")
        if not isinstance(teams, list) or not all(isinstance(t, str) and t.count("/") == 1 for t in teams):
            raise ApiError(422, "teams must be a list of 'org/team' names")
        self.users.add(login, token, teams)
        return json_reply(200, {"login": login, "teams": sorted(teams)})

    def _serve_blob(self, artifact_id: int, sig: str) -> Reply:
        if not hmac.compare_digest(sig, self._sign(artifact_id)):
            raise ApiError(403, "bad or missing blob signature; follow the URL the zip endpoint redirects to")
        with self.store.lock:
            found = next((a for state in self.store.repos.values() for a in state.artifacts if a.id == artifact_id),
                         None)
        if found is None:
            raise ApiError(404, f"artifact {artifact_id} has expired or does not exist")
        return Reply(200, _zip(found.files), {"Content-Type": "application/zip",
                                              "Content-Disposition": f'attachment; filename="{found.name}.zip"'})


def _zip(files: dict[str, str]) -> bytes:
    """Deterministic zip (fixed timestamps), so the size in listings equals the download."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in sorted(files.items()):
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), text)
    return buffer.getvalue()


def _is_regex(value: object) -> bool:
    try:
        re.compile(value) if isinstance(value, str) else None
    except re.error:
        return False
    return isinstance(value, str)


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default
