"""Every request the forge client and the forge-backed CI providers send, and every canned
answer our tests feed them, must match the published API documents.

Each scenario drives real client code against a scripted server; the exchanges it records
are then checked against Gitea's swagger (main and 1.26.3) and Forgejo's. A scenario that
passes here but fails against the document means our tests model a forge that does not
exist. Documented quirks the swagger cannot express are listed in QUIRKS, each with why.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from coordinator.ci import RunConclusion, RunStatus, make_provider
from coordinator.forge import GiteaClient
from tests.scripted_api import Call, ScriptedAPI, reply
from tests.contract.schema import SPECS_DIR, SwaggerContract

REPO = "/api/v1/repos/acme/sample"
SHA = "0123456789abcdef0123456789abcdef01234567"
DIGEST = "sha256:" + "ab" * 32
TIME = "2026-05-01T10:00:00Z"
USER = {"id": 1, "login": "release-bot", "full_name": "", "email": "bot@forge.test"}

GITEA_DOCS = ("gitea-swagger-v1.json", "gitea-swagger-v1.26.3.json")
FORGEJO_DOC = "forgejo-swagger-v1.json"


@pytest.fixture(scope="module")
def contracts() -> dict[str, SwaggerContract]:
    return {name: SwaggerContract.load(SPECS_DIR / name) for name in (*GITEA_DOCS, FORGEJO_DOC)}


# -- canned bodies, shaped like what Gitea sends ------------------------------------------


def label(label_id: int, name: str) -> dict[str, Any]:
    return {"id": label_id, "name": name, "color": "ee0701", "description": "", "exclusive": False,
            "is_archived": False, "url": f"https://forge.test{REPO}/labels/{label_id}"}


def milestone(milestone_id: int, title: str, state: str = "open") -> dict[str, Any]:
    return {"id": milestone_id, "title": title, "description": "", "state": state, "open_issues": 1,
            "closed_issues": 0, "created_at": TIME, "updated_at": TIME, "closed_at": None, "due_on": None}


def issue(number: int, *, labels: list[dict[str, Any]] | None = None, mile: dict[str, Any] | None = None,
          state: str = "open") -> dict[str, Any]:
    return {"id": 100 + number, "number": number, "title": f"issue {number}", "body": "", "state": state,
            "html_url": f"https://forge.test/acme/sample/issues/{number}", "url": f"https://forge.test{REPO}/issues/{number}",
            "user": USER, "labels": labels or [], "milestone": mile, "assignees": None, "comments": 0,
            "created_at": TIME, "updated_at": TIME, "closed_at": None, "pull_request": None, "is_locked": False}


def release(*, body: str = "notes") -> dict[str, Any]:
    return {"id": 7, "tag_name": "v1.0.0", "target_commitish": SHA, "name": "v1.0.0", "body": body,
            "url": f"https://forge.test{REPO}/releases/7", "html_url": "https://forge.test/acme/sample/releases/tag/v1.0.0",
            "tarball_url": "", "zipball_url": "", "upload_url": "", "draft": False, "prerelease": False,
            "created_at": TIME, "published_at": TIME, "author": USER, "assets": []}


def combined_status(state: str, statuses: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {"state": state, "sha": SHA, "total_count": len(statuses or []), "statuses": statuses,
            "commit_url": f"https://forge.test{REPO}/commits/{SHA}", "url": f"https://forge.test{REPO}/commits/{SHA}/status"}


def commit_status(context: str, status: str) -> dict[str, Any]:
    return {"id": 1, "status": status, "context": context, "target_url": "https://ci.test/1", "description": "",
            "url": "", "created_at": TIME, "updated_at": TIME, "creator": USER}


def workflow_run(run_id: int, *, status: str, conclusion: str | None, head_branch: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": run_id, "run_number": run_id, "run_attempt": 1, "event": "push", "status": status, "head_sha": SHA,
        "display_title": "release", "path": "build.yml@refs/tags/v1.0.0",
        "html_url": f"https://forge.test/acme/sample/actions/runs/{run_id}",
        "url": f"https://forge.test{REPO}/actions/runs/{run_id}", "started_at": TIME,
        "completed_at": "1970-01-01T00:00:00Z", "repository_id": 1,
    }
    if conclusion is not None:
        body["conclusion"] = conclusion
    if head_branch is not None:
        body["head_branch"] = head_branch
    return body


def manifest_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("artifact-manifest.json", json.dumps(
            {"image": "127.0.0.1:45000/acme/sample", "tag": "v1.0.0", "digest": DIGEST, "commit": SHA}))
    return buffer.getvalue()


# -- scenarios: each drives one piece of client code ----------------------------------------

Scenario = Callable[[ScriptedAPI], None]


def client(api: ScriptedAPI) -> GiteaClient:
    return GiteaClient("https://forge.test", "acme", "sample", "tok", transport=api.transport(), sleep=lambda _: None)


def combined_status_green(api: ScriptedAPI) -> None:
    api.on("GET", f"{REPO}/commits/{SHA}/status",
           reply(200, combined_status("success", [commit_status("ci/standin", "success")])))
    assert client(api).combined_status(SHA).is_success


def combined_status_empty_126(api: ScriptedAPI) -> None:
    api.on("GET", f"{REPO}/commits/{SHA}/status", reply(200, combined_status("pending", None)))
    assert not client(api).combined_status(SHA).reported


def get_tag(api: ScriptedAPI) -> None:
    api.on("GET", f"{REPO}/tags/v1.0.0", reply(200, {
        "name": "v1.0.0", "message": "v1.0.0\n", "id": "f" * 40,
        "commit": {"sha": SHA, "url": f"https://forge.test{REPO}/git/commits/{SHA}", "created": TIME},
        "zipball_url": "", "tarball_url": ""}))
    api.on("GET", f"{REPO}/tags/v9.9.9", reply(404, {"message": "tag not found", "url": ""}))
    forge = client(api)
    assert forge.get_tag("v1.0.0") is not None and forge.get_tag("v9.9.9") is None


def get_ref_prefix_match(api: ScriptedAPI) -> None:
    refs = [{"ref": f"refs/tags/{name}", "url": f"https://forge.test{REPO}/git/refs/tags/{name}",
             "object": {"type": "commit", "sha": SHA, "url": ""}} for name in ("v1.0.0", "v1.0.0-rc1")]
    api.on("GET", f"{REPO}/git/refs/tags/v1.0.0", reply(200, refs))
    assert client(api).get_ref("tags/v1.0.0") is not None


def get_ref_exact_object(api: ScriptedAPI) -> None:
    ref = {"ref": "refs/tags/v2.0.0", "url": "", "object": {"type": "tag", "sha": SHA, "url": ""}}
    api.on("GET", f"{REPO}/git/refs/tags/v2.0.0", reply(200, ref))
    assert client(api).get_ref("tags/v2.0.0") is not None


def blocker_issues(api: ScriptedAPI) -> None:
    blocker = label(1, "release-blocker")
    api.on("GET", f"{REPO}/labels", reply(200, [blocker, label(2, "bug")]))
    api.on("GET", f"{REPO}/issues", reply(200, [issue(3, labels=[blocker])]))
    assert [i.number for i in client(api).open_issues_with_label("release-blocker")] == [3]


def milestone_issues_closed(api: ScriptedAPI) -> None:
    mile = milestone(2, "1.0.0")
    api.on("GET", f"{REPO}/milestones", reply(200, [mile]))
    api.on("GET", f"{REPO}/issues", reply(200, [issue(5, mile=mile)]))
    api.on("PATCH", f"{REPO}/issues/5", reply(201, issue(5, mile=mile, state="closed")))
    api.on("PATCH", f"{REPO}/milestones/2", reply(200, milestone(2, "1.0.0", "closed")))
    forge = client(api)
    found = forge.find_milestone("1.0.0")
    assert found is not None
    for item in forge.issues_in_milestone(found):
        forge.close_issue(item.number)
    forge.close_milestone(found.id)


def upsert_release_creates(api: ScriptedAPI) -> None:
    api.on("GET", f"{REPO}/releases/tags/v1.0.0", reply(404, {"message": "release not found", "url": ""}))
    api.on("POST", f"{REPO}/releases", reply(201, release()))
    assert client(api).upsert_release("v1.0.0", "v1.0.0", "notes", SHA).id == 7


def upsert_release_updates_after_conflict(api: ScriptedAPI) -> None:
    api.on("GET", f"{REPO}/releases/tags/v1.0.0", reply(404, {"message": "release not found", "url": ""}),
           reply(200, release(body="old")))
    api.on("POST", f"{REPO}/releases", reply(409, {"message": "release v1.0.0 already exists", "url": ""}))
    api.on("PATCH", f"{REPO}/releases/7", reply(200, release()))
    assert client(api).upsert_release("v1.0.0", "v1.0.0", "notes", SHA).body == "notes"


def create_release_timeout_then_lookup(api: ScriptedAPI) -> None:
    api.on("POST", f"{REPO}/releases", httpx.ReadTimeout("timed out"))
    api.on("GET", f"{REPO}/releases/tags/v1.0.0", reply(200, release()))
    assert client(api).create_release("v1.0.0", "v1.0.0", "notes", SHA).id == 7


def gitea_actions_run_and_artifact(api: ScriptedAPI) -> None:
    api.on("GET", f"{REPO}/actions/runs", reply(200, {"total_count": 2, "workflow_runs": [
        workflow_run(9, status="in_progress", conclusion=None, head_branch="main"),
        workflow_run(8, status="completed", conclusion="success", head_branch=None)]}))
    api.on("GET", f"{REPO}/actions/runs/8", reply(200, workflow_run(8, status="completed", conclusion="success",
                                                                     head_branch=None)))
    api.on("GET", f"{REPO}/actions/runs/8/artifacts", reply(200, {"total_count": 1, "artifacts": [{
        "id": 31, "name": "artifact-manifest", "size_in_bytes": 180, "expired": False,
        "url": f"https://forge.test{REPO}/actions/artifacts/31",
        "archive_download_url": f"https://forge.test{REPO}/actions/artifacts/31/zip",
        "created_at": TIME, "updated_at": TIME, "expires_at": TIME}]}))
    api.on("GET", f"{REPO}/actions/artifacts/31/zip", reply(302, headers={"Location": "https://forge.test/blobs/31?sig=x"}))
    api.on("GET", "/blobs/31", reply(200, content=manifest_zip()))
    provider = make_provider("gitea-actions", base_url="https://forge.test", owner="acme", repo="sample", token="tok",
                             transport=api.transport())
    found = provider.find_tag_run("v1.0.0", SHA)
    assert found is not None
    assert provider.fetch_artifact_manifest(provider.get_run(found.id)).digest == DIGEST


def commit_status_provider(api: ScriptedAPI) -> None:
    api.on("GET", f"{REPO}/commits/{SHA}/status",
           reply(200, combined_status("success", [commit_status("ci/woodpecker/tag/build", "success")])))
    api.on("GET", f"{REPO}/releases/tags/v1.0.0", reply(200, {**release(), "assets": [{
        "id": 3, "name": "artifact-manifest.zip", "size": 200, "download_count": 0, "created_at": TIME, "uuid": "u",
        "browser_download_url": "https://forge.test/acme/sample/releases/download/v1.0.0/artifact-manifest.zip"}]}))
    api.on("GET", "/acme/sample/releases/download/v1.0.0/artifact-manifest.zip", reply(200, content=manifest_zip()))
    provider = make_provider("commit-status", base_url="https://forge.test", owner="acme", repo="sample", token="tok",
                             transport=api.transport())
    found = provider.find_tag_run("v1.0.0", SHA)
    assert found is not None and found.conclusion is RunConclusion.SUCCESS
    assert provider.fetch_artifact_manifest(found).commit == SHA


def approver_identity_and_team(api: ScriptedAPI) -> None:
    """Team mode: who owns the token, and whether that login is in an org's team."""
    api.on("GET", "/api/v1/user", reply(200, {**USER, "login": "alice"}))
    team = {"id": 4, "name": "Release-Managers", "description": "", "permission": "write",
            "includes_all_repositories": False, "can_create_org_repo": False}
    api.on("GET", "/api/v1/orgs/acme/teams", reply(200, [team], headers={"X-Total-Count": "1"}))
    api.on("GET", "/api/v1/orgs/nobody/teams", reply(404, {"message": "org not found", "url": ""}))
    api.on("GET", "/api/v1/teams/4/members/alice", reply(200, {**USER, "login": "alice"}))
    api.on("GET", "/api/v1/teams/4/members/bob", reply(404, {"message": "not a member", "url": ""}))
    forge = client(api)
    assert forge.current_user() == "alice"
    assert forge.team_id("acme", "release-managers") == 4 and forge.team_id("nobody", "x") is None
    assert forge.is_team_member(4, "alice") and not forge.is_team_member(4, "bob")


def comment(comment_id: int, login: str, body: str, *, updated: str = TIME) -> dict[str, Any]:
    return {"id": comment_id, "html_url": f"https://forge.test/acme/sample/issues/9#issuecomment-{comment_id}",
            "pull_request_url": "", "issue_url": f"https://forge.test{REPO}/issues/9", "user": {**USER, "login": login},
            "original_author": "", "original_author_id": 0, "body": body, "assets": [], "created_at": TIME,
            "updated_at": updated}


def approval_issue_and_comments(api: ScriptedAPI) -> None:
    """Team mode, forge approvals: the approval issue found by exact title or opened; comments read and written."""
    titled = {**issue(9), "title": "Approve v1.0.0 for production"}
    api.on("GET", f"{REPO}/issues", reply(200, [issue(8), titled], headers={"X-Total-Count": "2"}))
    api.on("POST", f"{REPO}/issues", reply(201, titled))
    edited = "2026-01-01T00:00:05Z"
    api.on("GET", f"{REPO}/issues/9/comments", reply(200, [comment(1, "alice", "approve"), comment(2, "bob", "x",
                                                                                                  updated=edited)]))
    api.on("POST", f"{REPO}/issues/9/comments", reply(201, comment(3, "alice", "approve v1.0.0")))
    forge = client(api)
    assert [i.number for i in forge.issues_titled("Approve v1.0.0 for production")] == [9]
    assert forge.create_issue("Approve v1.0.0 for production", "comment the words").number == 9
    comments = forge.issue_comments(9)
    assert [(c.login, c.updated_at == c.created_at) for c in comments] == [("alice", True), ("bob", False)]
    assert forge.comment_on_issue(9, "approve v1.0.0").login == "alice"


GITEA_SCENARIOS: list[Scenario] = [
    combined_status_green, combined_status_empty_126, get_tag, get_ref_prefix_match, get_ref_exact_object,
    blocker_issues, milestone_issues_closed, upsert_release_creates, upsert_release_updates_after_conflict,
    create_release_timeout_then_lookup, gitea_actions_run_and_artifact, commit_status_provider,
    approver_identity_and_team, approval_issue_and_comments,
]


def forgejo_run(status: str) -> dict[str, Any]:
    return {"id": 11, "index_in_repo": 11, "event": "push", "trigger_event": "push", "status": status,
            "commit_sha": SHA, "prettyref": "v1.0.0", "title": "release", "workflow_id": "build.yml",
            "html_url": "https://forge.test/acme/sample/actions/runs/11", "is_ref_deleted": False,
            "is_fork_pull_request": False, "need_approval": False, "approved_by": 0,
            "created": TIME, "updated": TIME, "started": TIME, "stopped": "1970-01-01T00:00:00Z"}


def forgejo_actions_run_and_artifact(api: ScriptedAPI) -> None:
    api.on("GET", f"{REPO}/actions/runs", reply(200, {"total_count": 1, "workflow_runs": [forgejo_run("running")]}))
    api.on("GET", f"{REPO}/actions/runs/11", reply(200, forgejo_run("success")))
    api.on("GET", f"{REPO}/actions/runs/11/artifacts", reply(200, [{
        "id": 5, "name": "artifact-manifest", "run_id": 11, "size_in_bytes": 180, "expired": False,
        "archive_download_url": f"https://forge.test{REPO}/actions/artifacts/5/zip",
        "created_at": TIME, "updated_at": TIME, "expires_at": TIME}]))
    api.on("GET", f"{REPO}/actions/artifacts/5/zip", reply(200, content=manifest_zip()))
    provider = make_provider("forgejo-actions", base_url="https://forge.test", owner="acme", repo="sample",
                             token="tok", transport=api.transport())
    found = provider.find_tag_run("v1.0.0", SHA)
    assert found is not None and found.status is RunStatus.IN_PROGRESS
    done = provider.get_run(found.id)
    assert provider.fetch_artifact_manifest(done).digest == DIGEST


FORGEJO_SCENARIOS: list[Scenario] = [
    *[s for s in GITEA_SCENARIOS if s is not gitea_actions_run_and_artifact],
    forgejo_actions_run_and_artifact,
]

#: What the swagger documents cannot say, from GITEA-NOTES.md: (method, template) → why.
QUIRKS = {
    # One exact match answers a single Reference object; the document only shows the array.
    ("GET", "/repos/{owner}/{repo}/git/refs/{ref}"): "Reference",
}


def api_calls(api: ScriptedAPI) -> list[Call]:
    """Exchanges with the forge API (not with storage a download was redirected to)."""
    return [call for call in api.calls if call.path.startswith("/api/v1/")]


def check_exchanges(api: ScriptedAPI, contract: SwaggerContract) -> None:
    for call in api_calls(api):
        op = contract.validate_request(call.method, call.path, call.query, call.json)
        if call.status is None:  # the client saw a timeout: there is no answer to check
            continue
        quirk = QUIRKS.get((op.method, op.template))
        if quirk and isinstance(call.response_json, dict):
            contract.validate_definition(quirk, call.response_json, strict=True)
            continue
        contract.validate_response(call.method, call.path, call.status, call.response_json, strict=True)


@pytest.mark.parametrize("document", GITEA_DOCS)
@pytest.mark.parametrize("scenario", GITEA_SCENARIOS, ids=lambda s: s.__name__)
def test_gitea_exchanges_match_the_gitea_document(scenario: Scenario, document: str,
                                                  contracts: dict[str, SwaggerContract]) -> None:
    api = ScriptedAPI()
    scenario(api)
    assert api_calls(api), "the scenario sent nothing to the API"
    check_exchanges(api, contracts[document])


@pytest.mark.parametrize("scenario", FORGEJO_SCENARIOS, ids=lambda s: s.__name__)
def test_forgejo_exchanges_match_the_forgejo_document(scenario: Scenario, contracts: dict[str, SwaggerContract]) -> None:
    api = ScriptedAPI()
    scenario(api)
    check_exchanges(api, contracts[FORGEJO_DOC])


def test_every_public_client_method_is_exercised_by_a_scenario() -> None:
    public = {name for name in vars(GiteaClient) if not name.startswith("_") and callable(getattr(GiteaClient, name))}
    public -= {"close", "download", "labels"}  # no API of their own / covered through label_exists
    api = ScriptedAPI()
    used: set[str] = set()
    original = {name: getattr(GiteaClient, name) for name in public}

    def spy(name: str) -> Callable[..., Any]:
        def wrapper(self: GiteaClient, *args: Any, **kwargs: Any) -> Any:
            used.add(name)
            return original[name](self, *args, **kwargs)
        return wrapper

    with pytest.MonkeyPatch.context() as patch:
        for name in public:
            patch.setattr(GiteaClient, name, spy(name))
        for scenario in GITEA_SCENARIOS:
            scenario(api)
    assert public - used == set()

