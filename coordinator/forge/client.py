"""The Gitea (and Forgejo) API calls the coordinator makes, and nothing more.

Each method reads or changes one thing and interprets the forge's quirks so callers do
not have to: an empty combined status is "no CI reported", never green; `/git/refs/` is
a prefix match; an unknown issue label is an error, not an empty list; creating a release
that exists is refused (409) and `upsert_release` never makes a duplicate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from coordinator.errors import ConfigError, ForgeError
from coordinator.forge._http import (
    HttpSession,
    RetryableStatus,
    RetryPolicy,
    check_token,
    decode_json,
    origin,
    segment,
)
from coordinator.forge.models import (
    CombinedStatus,
    GitRef,
    Issue,
    IssueComment,
    Label,
    Milestone,
    Release,
    Tag,
)

API_PREFIX = "/api/v1"


class ReleaseExists(ForgeError):
    """A release for this tag already exists (Gitea answered 409)."""


class LabelMissing(ConfigError):
    """The configured blocker label does not exist on the forge: configuration, not an outage.

    Retrying cannot help (the forge answered, the label is not there), so it is never a
    ForgeError, which would read as "forge unreachable, resume later".
    """


def api_root(base_url: object) -> str:
    """`https://git.example.com` (or …/api/v1) → `https://git.example.com/api/v1`."""
    root = str(base_url).strip().rstrip("/")
    return root if root.endswith(API_PREFIX) else root + API_PREFIX


class GiteaClient:
    """One repository on a Gitea or Forgejo server, authenticated by an API token.

    The token travels only in the `Authorization: token …` header. `transport` lets tests
    put an `httpx.MockTransport` in place of the network; `sleep`/`clock` let them skip
    the waits between retries.
    """

    def __init__(
        self,
        base_url: object,
        owner: str,
        repo: str,
        token: str,
        *,
        timeout: float = 10.0,
        ca_file: Path | str | None = None,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        service: str = "forge",
        token_source: str | None = None,
    ) -> None:
        self.owner = owner
        self.repo = repo
        self.http = HttpSession(
            api_root(base_url),
            service=service,
            auth_header=f"token {check_token(token, service=service)}",
            token_source=token_source,
            timeout=timeout,
            ca_file=Path(ca_file) if ca_file else None,
            transport=transport,
            retry=retry,
            sleep=sleep,
            clock=clock,
        )
        self.repo_path = f"/repos/{segment(owner)}/{segment(repo)}"

    def __repr__(self) -> str:
        return f"GiteaClient({self.http.base_url!r}, {self.owner}/{self.repo})"

    @property
    def web_url(self) -> str:
        """The repository's page, for links a person follows."""
        return f"{self.http.base_url.removesuffix(API_PREFIX)}/{segment(self.owner)}/{segment(self.repo)}"

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> GiteaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers ------------------------------------------------------------------------

    def _get_or_none(self, path: str, *, params: dict[str, Any] | None = None) -> Any | None:
        response = self.http.request("GET", path, params=params, ok=(200, 404))
        if response.status_code == 404:
            return None
        return decode_json(self.http, "GET", path, response)

    # -- commits, tags and refs ---------------------------------------------------------

    def combined_status(self, ref: str) -> CombinedStatus:
        """Combined CI status of `ref` (prefer a full sha: Gitea resolves branch names first)."""
        path = f"{self.repo_path}/commits/{segment(ref)}/status"
        data = self.http.get_json(path, params={"limit": 50})
        return CombinedStatus.model_validate(data)

    def get_tag(self, name: str) -> Tag | None:
        data = self._get_or_none(f"{self.repo_path}/tags/{segment(name)}")
        return None if data is None else Tag.model_validate(data)

    def get_ref(self, ref: str) -> GitRef | None:
        """Exactly `ref` (`tags/v1.0.0` or `refs/tags/v1.0.0`), never a longer name it prefixes."""
        short = ref.removeprefix("refs/")
        wanted = f"refs/{short}"
        path = f"{self.repo_path}/git/refs/{'/'.join(segment(part) for part in short.split('/'))}"
        data = self._get_or_none(path)
        # One exact match comes back as an object, anything else as an array of every
        # ref that starts with the name (tags/v1.0.0 also matches tags/v1.0.0-rc1).
        candidates = data if isinstance(data, list) else [data] if data else []
        for item in candidates:
            if isinstance(item, dict) and item.get("ref") == wanted:
                return GitRef.model_validate(item)
        return None

    # -- labels and issues --------------------------------------------------------------

    def labels(self) -> list[Label]:
        return [Label.model_validate(item) for item in self.http.paginate(f"{self.repo_path}/labels")]

    def label_exists(self, name: str) -> bool:
        return any(label.name == name for label in self.labels())

    def open_issues_with_label(self, label: str) -> list[Issue]:
        """Open issues (never pull requests) carrying `label`.

        Gitea silently drops label names it does not know and would then list every open
        issue or none, so a missing label is an error here, not an empty answer.
        """
        if "," in label:
            raise ForgeError(f"label {label!r} contains a comma, which the issue filter cannot express: rename the label")
        if not self.label_exists(label):
            raise LabelMissing(
                f"label {label!r} does not exist in {self.owner}/{self.repo}: create it at {self.web_url}/labels "
                f"(New Label, name {label}), or set forge.blocker_label to the label your team uses for blockers"
            )
        params = {"state": "open", "labels": label, "type": "issues"}
        issues = [Issue.model_validate(item) for item in self.http.paginate(f"{self.repo_path}/issues", params=params)]
        return [issue for issue in issues if label in issue.labels and not issue.is_pull_request]

    def close_issue(self, number: int) -> None:
        """Close an issue; closing is absolute state, so a retry is harmless. Gitea answers 201."""
        self.http.request(
            "PATCH", f"{self.repo_path}/issues/{segment(number)}",
            json_body={"state": "closed"}, ok=(200, 201), idempotent=True,
        )

    def issues_titled(self, title: str) -> list[Issue]:
        """Issues (open or closed, never pull requests) titled exactly `title`."""
        params = {"state": "all", "type": "issues", "q": title}
        issues = [Issue.model_validate(item) for item in self.http.paginate(f"{self.repo_path}/issues", params=params)]
        return [issue for issue in issues if issue.title == title and not issue.is_pull_request]

    def create_issue(self, title: str, body: str) -> Issue:
        """Not retried: a repeated create would open a second issue (readers accept every exact title)."""
        path = f"{self.repo_path}/issues"
        response = self.http.request("POST", path, json_body={"title": title, "body": body}, ok=(201,), idempotent=False)
        return Issue.model_validate(decode_json(self.http, "POST", path, response))

    def issue_comments(self, number: int) -> list[IssueComment]:
        """Every comment on issue `number`, oldest first, as the forge attributes them."""
        data = self.http.get_json(f"{self.repo_path}/issues/{segment(number)}/comments")
        return [IssueComment.model_validate(item) for item in data] if isinstance(data, list) else []

    def comment_on_issue(self, number: int, body: str) -> IssueComment:
        """As the token's owner; not retried (a repeat would post twice)."""
        path = f"{self.repo_path}/issues/{segment(number)}/comments"
        response = self.http.request("POST", path, json_body={"body": body}, ok=(201,), idempotent=False)
        return IssueComment.model_validate(decode_json(self.http, "POST", path, response))

    # -- milestones ---------------------------------------------------------------------

    def find_milestone(self, title: str) -> Milestone | None:
        """The milestone titled exactly `title`, open or closed (the `name` filter is fuzzy)."""
        params = {"state": "all", "name": title}
        for item in self.http.paginate(f"{self.repo_path}/milestones", params=params):
            milestone = Milestone.model_validate(item)
            if milestone.title == title:
                return milestone
        return None

    def issues_in_milestone(self, milestone: Milestone, state: str = "open") -> list[Issue]:
        """Issues (not pull requests) of one milestone in `state` (open, closed or all)."""
        # Gitea resolves `milestones` by name first, then by id; a name with a comma would
        # be split, so fall back to the id then. Either way, results are checked by id.
        selector = str(milestone.id) if "," in milestone.title else milestone.title
        params = {"state": state, "type": "issues", "milestones": selector}
        issues = [Issue.model_validate(item) for item in self.http.paginate(f"{self.repo_path}/issues", params=params)]
        return [i for i in issues if i.milestone_id == milestone.id and not i.is_pull_request]

    def close_milestone(self, milestone_id: int) -> None:
        self.http.request(
            "PATCH", f"{self.repo_path}/milestones/{segment(milestone_id)}",
            json_body={"state": "closed"}, ok=(200, 201), idempotent=True,
        )

    # -- releases -----------------------------------------------------------------------

    def release_by_tag(self, tag: str) -> Release | None:
        """The published release for `tag`, or None (Gitea hides drafts here too)."""
        data = self._get_or_none(f"{self.repo_path}/releases/tags/{segment(tag)}")
        return None if data is None else Release.model_validate(data)

    def create_release(
        self, tag: str, name: str, body: str, target_commitish: str, *, prerelease: bool = False
    ) -> Release:
        """Create the release for `tag`; raises ReleaseExists when one is already there.

        A create that timed out (or hit a gateway error) may still have happened, so before
        trying again we look the release up by tag and return it if it is there.
        """
        path = f"{self.repo_path}/releases"
        payload = {
            "tag_name": tag, "name": name, "body": body, "draft": False,
            "prerelease": prerelease, "target_commitish": target_commitish,
        }
        attempts = 0
        ambiguous = False
        try:
            for attempt in self.http.retrying():
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    if ambiguous:
                        existing = self.release_by_tag(tag)
                        if existing is not None:
                            return existing
                    ambiguous = True
                    response = self.http.send_once("POST", path, json_body=payload)
        except RetryableStatus as exc:
            raise self.http.status_error("POST", path, exc.response) from None
        except httpx.TransportError as exc:
            raise self.http.transport_error("POST", path, exc, attempts) from None
        if response.status_code == 409:
            error = self.http.status_error("POST", path, response)
            raise ReleaseExists(error.message, endpoint=self.http.endpoint("POST", path), status=409)
        if response.status_code != 201:
            raise self.http.status_error("POST", path, response)
        return Release.model_validate(decode_json(self.http, "POST", path, response))

    def update_release(self, release_id: int, *, name: str, body: str) -> Release:
        path = f"{self.repo_path}/releases/{segment(release_id)}"
        response = self.http.request("PATCH", path, json_body={"name": name, "body": body}, idempotent=True)
        return Release.model_validate(decode_json(self.http, "PATCH", path, response))

    def upsert_release(
        self, tag: str, name: str, body: str, target_commitish: str, *, prerelease: bool = False
    ) -> Release:
        """The release for `tag` with this name and body: updated if it exists, else created."""
        existing = self.release_by_tag(tag)
        if existing is None:
            try:
                return self.create_release(tag, name, body, target_commitish, prerelease=prerelease)
            except ReleaseExists:
                existing = self.release_by_tag(tag)
                if existing is None:
                    raise ForgeError(
                        f"a release for {tag} exists but cannot be read (a draft?): publish or delete it on the forge",
                        endpoint=f"GET {self.repo_path}/releases/tags/{tag}", status=404,
                    ) from None
        if existing.name == name and existing.body == body:
            return existing
        return self.update_release(existing.id, name=name, body=body)

    # -- who is acting (team mode) ------------------------------------------------------

    def current_user(self) -> str:
        """The login of the token's owner (`GET /user`): the identity behind an approval."""
        data = self.http.get_json("/user")
        login = data.get("login") if isinstance(data, dict) else None
        if not isinstance(login, str) or not login:
            raise ForgeError("forge GET /user answered without a login: is this the right API URL?", endpoint="GET /user")
        return login

    def team_id(self, org: str, team: str) -> int | None:
        """The id of `org`'s team named `team` (case-insensitive, as Gitea compares), or None."""
        try:
            for item in self.http.paginate(f"/orgs/{segment(org)}/teams"):
                if isinstance(item, dict) and str(item.get("name", "")).lower() == team.lower():
                    return int(item["id"])
        except ForgeError as exc:
            if exc.status == 404:  # no such organization (or not visible to this token)
                return None
            raise
        return None

    def is_team_member(self, team_id: int, login: str) -> bool:
        """Gitea answers the member (200) or 404 when `login` is not in the team."""
        return self._get_or_none(f"/teams/{segment(team_id)}/members/{segment(login)}") is not None

    def download(self, url: str) -> bytes:
        """Fetch a release asset or other file by absolute URL, following redirects.

        The token goes only to the forge's own origin (httpx drops it on redirects to
        another host, such as a signed storage URL).
        """
        same_origin = origin(url) == origin(self.http.base_url)
        response = self.http.request("GET", url, follow_redirects=True, send_auth=same_origin)
        return response.content


#: Forgejo serves the same API for everything this client does (Actions differ; see
#: coordinator.ci.forgejo_actions).
ForgejoClient = GiteaClient
