"""The stand-in Gitea answers like Gitea 1.26: every response is checked against the
swagger document (strictly: no field Gitea does not send), and each quirk the coordinator
relies on has its own test. The CI build is a stub here, except in the one `world` test.
"""

from __future__ import annotations

import io
import json
import shutil
import socket
import subprocess
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.sandbox.gitea import StandinGitea
from tests.contract.schema import ContractViolation, SwaggerContract

TOKEN = "sandbox-token-contract-test"
REGISTRY = "127.0.0.1:45000"
WAIT_S = 15.0
FAKE_DIGEST = "sha256:" + "ab" * 32


@pytest.fixture(scope="module")
def contract() -> SwaggerContract:
    return SwaggerContract.load()


@pytest.fixture(scope="module")
def template_origin(tmp_path_factory: pytest.TempPathFactory) -> Origin:
    return Origin.create(tmp_path_factory.mktemp("template-origin"))


class Origin:
    """A bare repo at `git/acme/sample.git` and a working clone that pushes to it."""

    def __init__(self, root: Path) -> None:
        self.git_root = root / "git"
        self.bare = self.git_root / "acme" / "sample.git"
        self.work = root / "work"

    @classmethod
    def create(cls, root: Path) -> Origin:
        origin = cls(root)
        origin.bare.mkdir(parents=True)
        _git(origin.bare, "init", "--quiet", "--bare", "--initial-branch=main")
        origin.work.mkdir()
        _git(origin.work, "init", "--quiet", "--initial-branch=main")
        for key, value in (("user.name", "Test"), ("user.email", "test@sandbox.invalid"),
                           ("commit.gpgsign", "false"), ("tag.gpgsign", "false")):
            _git(origin.work, "config", key, value)
        # Relative, so a copied origin pushes to its own bare repo.
        _git(origin.work, "remote", "add", "origin", "../git/acme/sample.git")
        (origin.work / "Dockerfile").write_text("FROM scratch\n")
        origin.commit("Initial commit")
        origin.push("main")
        return origin

    def copy_to(self, root: Path) -> Origin:
        """A fresh, independent copy (much faster than creating one with git)."""
        shutil.copytree(self.git_root, root / "git", symlinks=True)
        shutil.copytree(self.work, root / "work", symlinks=True)
        return Origin(root)

    def commit(self, message: str) -> str:
        (self.work / "CHANGES").write_text(message + "\n")
        _git(self.work, "add", "--all")
        _git(self.work, "commit", "--quiet", "-m", message)
        return _git(self.work, "rev-parse", "HEAD").strip()

    def tag(self, name: str, annotated: bool = True) -> str:
        _git(self.work, "tag", *(["-a", "-m", f"Release {name}"] if annotated else []), name)
        _git(self.work, "push", "--quiet", "origin", f"refs/tags/{name}")
        return _git(self.work, "rev-parse", f"{name}^{{commit}}").strip()

    def push(self, branch: str) -> None:
        _git(self.work, "push", "--quiet", "origin", f"HEAD:refs/heads/{branch}")

    def head(self) -> str:
        return _git(self.work, "rev-parse", "HEAD").strip()


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@dataclass
class StubBuilder:
    """Stands in for `build_and_push`: records each call, or fails like a broken build."""

    calls: list[tuple[str, str, list[str]]] = field(default_factory=list)
    error: Exception | None = None

    def __call__(self, source_dir: Path, image: str, tag: str) -> str:
        self.calls.append((image, tag, sorted(p.name for p in source_dir.iterdir())))
        if self.error is not None:
            raise self.error
        return FAKE_DIGEST


class BuildBroke(Exception):
    """Shaped like ImageBuildError: a message and the build log."""

    def __init__(self, message: str, log: str) -> None:
        super().__init__(message)
        self.log = log


def checked_client(base_url: str, contract: SwaggerContract, token: str | None = TOKEN) -> httpx.Client:
    """An httpx client whose every API request and response is validated against the
    swagger document; a mismatch fails the test at the call that caused it."""

    def check(response: httpx.Response) -> None:
        path = response.request.url.path
        if not path.startswith("/api/v1/"):
            return
        response.read()
        is_json = response.headers.get("content-type", "").startswith("application/json")
        body = response.json() if is_json and response.content else None
        contract.validate_response(response.request.method, path, response.status_code, body, strict=True)

    def check_request(request: httpx.Request) -> None:
        if request.url.path.startswith("/api/v1/"):
            query = dict(request.url.params)
            payload = json.loads(request.content) if request.content else None
            contract.validate_request(request.method, request.url.path, query, payload)

    headers = {"Authorization": f"token {token}"} if token else {}
    return httpx.Client(base_url=f"{base_url}/api/v1/repos/acme/sample", headers=headers, timeout=10.0,
                        event_hooks={"request": [check_request], "response": [check]})


@dataclass
class Forge:
    standin: StandinGitea
    base_url: str
    api: httpx.Client
    origin: Origin
    builder: StubBuilder

    def admin(self, path: str, payload: dict[str, Any] | None = None) -> httpx.Response:
        """POST to the stand-in's own (non-Gitea) admin endpoints."""
        return httpx.post(f"{self.base_url}/_standin/{path}", json=payload or {}, timeout=10.0)


def wait_for(probe: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> Any:
    """Poll (bounded) until `probe` returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def forge(tmp_path: Path, contract: SwaggerContract, template_origin: Origin) -> Iterator[Forge]:
    origin = template_origin.copy_to(tmp_path)
    builder = StubBuilder()
    standin = StandinGitea(origin.git_root, REGISTRY, TOKEN, state_file=tmp_path / "forge-state.json",
                           builder=builder)
    standin.store.config.ci_delay_s = 0.0
    base_url = standin.start()
    api = checked_client(base_url, contract)
    try:
        yield Forge(standin, base_url, api, origin, builder)
    finally:
        api.close()
        standin.stop()


def completed_run(forge: Forge, head_sha: str, timeout_s: float = WAIT_S) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        runs = forge.api.get("/actions/runs", params={"event": "push", "head_sha": head_sha}).json()
        done = [r for r in runs["workflow_runs"] if r["status"] == "completed"]
        return done[0] if done else None

    run: dict[str, Any] = wait_for(probe, f"a completed run for {head_sha[:12]}", timeout_s)
    return run


# -- the checker itself -----------------------------------------------------------------


def test_checker_rejects_state_where_gitea_sends_status(contract: SwaggerContract) -> None:
    with pytest.raises(ContractViolation, match="'state' was unexpected"):
        contract.validate_response("GET", "/api/v1/repos/a/b/statuses/abc", 200,
                                   [{"id": 1, "state": "success"}], strict=True)


def test_checker_rejects_misspelt_query_parameter(contract: SwaggerContract) -> None:
    with pytest.raises(ContractViolation, match="'label' is not declared"):
        contract.validate_request("GET", "/repos/a/b/issues", {"label": "release-blocker"}, None)


def test_checker_maps_slashed_refs_to_their_template(contract: SwaggerContract) -> None:
    assert contract.operation("GET", "/api/v1/repos/a/b/git/refs/tags/v1.0.0").template == \
        "/repos/{owner}/{repo}/git/refs/{ref}"


# -- cross-cutting ----------------------------------------------------------------------


def test_version_needs_no_token(forge: Forge, contract: SwaggerContract) -> None:
    response = httpx.get(f"{forge.base_url}/api/v1/version")
    contract.validate_response("GET", "/version", response.status_code, response.json(), strict=True)
    assert response.json()["version"].startswith("1.26")


def test_missing_token_is_401_with_message_and_url(forge: Forge, contract: SwaggerContract) -> None:
    with checked_client(forge.base_url, contract, token=None) as anonymous:
        response = anonymous.get("")
    assert response.status_code == 401
    assert set(response.json()) == {"message", "url"}


def test_wrong_token_is_401(forge: Forge, contract: SwaggerContract) -> None:
    with checked_client(forge.base_url, contract, token="not-the-token") as client:
        assert client.get("/issues").status_code == 401


def test_bearer_token_is_accepted(forge: Forge) -> None:
    response = httpx.get(f"{forge.base_url}/api/v1/repos/acme/sample", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200


def test_token_in_query_string_is_refused(forge: Forge) -> None:
    response = httpx.get(f"{forge.base_url}/api/v1/repos/acme/sample", params={"access_token": TOKEN})
    assert response.status_code == 401


def test_repository_is_served_from_its_bare_repo(forge: Forge) -> None:
    body = forge.api.get("").json()
    assert (body["full_name"], body["default_branch"]) == ("acme/sample", "main")


def test_unknown_repository_is_404(forge: Forge) -> None:
    response = forge.api.get(f"{forge.base_url}/api/v1/repos/acme/missing")
    assert response.status_code == 404


# -- commit statuses --------------------------------------------------------------------


def test_commit_without_statuses_is_pending_with_null_statuses(forge: Forge) -> None:
    forge.admin("config", {"branch_ci": False})
    forge.origin.commit("Unreported change")
    forge.origin.push("feature")
    body = forge.api.get("/commits/feature/status").json()
    assert (body["state"], body["statuses"], body["total_count"]) == ("pending", None, 0)


def test_branch_push_gets_ci_standin_success(forge: Forge) -> None:
    sha = forge.origin.commit("Reported change")
    forge.origin.push("main")
    body = wait_for(lambda: (b := forge.api.get(f"/commits/{sha}/status").json())["total_count"] and b,
                    "the ci/standin status")
    assert body["state"] == "success"
    assert [s["context"] for s in body["statuses"]] == ["ci/standin"]


def test_created_status_takes_state_and_answers_status(forge: Forge) -> None:
    response = forge.api.post(f"/statuses/{forge.origin.head()}", json={"state": "failure", "context": "ci/lint"})
    assert response.status_code == 201
    assert response.json()["status"] == "failure"


def test_warning_makes_the_combined_state_failure(forge: Forge) -> None:
    sha = forge.origin.head()
    forge.api.post(f"/statuses/{sha}", json={"state": "success", "context": "ci/build"})
    forge.api.post(f"/statuses/{sha}", json={"state": "warning", "context": "ci/lint"})
    assert forge.api.get(f"/commits/{sha}/status").json()["state"] == "failure"


def test_latest_status_per_context_decides(forge: Forge) -> None:
    forge.admin("config", {"branch_ci": False})
    sha = forge.origin.commit("Built twice")
    forge.origin.push("feature")
    forge.api.post(f"/statuses/{sha}", json={"state": "failure", "context": "ci/build"})
    forge.api.post(f"/statuses/{sha}", json={"state": "success", "context": "ci/build"})
    body = forge.api.get("/commits/feature/status").json()
    assert (body["state"], body["total_count"]) == ("success", 1)


def test_status_ref_resolves_tags_and_short_shas(forge: Forge) -> None:
    sha = forge.origin.tag("v0.9.0")
    forge.api.post(f"/statuses/{sha}", json={"state": "success", "context": "ci/x"})
    assert forge.api.get("/commits/v0.9.0/status").json()["sha"] == sha
    assert forge.api.get(f"/commits/{sha[:8]}/statuses").json()[0]["context"] == "ci/x"


def test_status_on_unknown_commit_is_404(forge: Forge) -> None:
    assert forge.api.post(f"/statuses/{'0' * 40}", json={"state": "success"}).status_code == 404


# -- tags and refs ----------------------------------------------------------------------


def test_tag_commit_sha_is_the_peeled_commit(forge: Forge) -> None:
    sha = forge.origin.tag("v1.0.0", annotated=True)
    body = forge.api.get("/tags/v1.0.0").json()
    assert body["commit"]["sha"] == sha
    assert body["id"] != sha  # the annotated tag object


def test_unknown_tag_is_404(forge: Forge) -> None:
    assert forge.api.get("/tags/v9.9.9").status_code == 404


def test_tag_list_counts_but_sends_no_link(forge: Forge) -> None:
    forge.origin.tag("v1.0.0")
    response = forge.api.get("/tags", params={"limit": 1})
    assert response.headers["X-Total-Count"] == "1"
    assert "Link" not in response.headers


def test_exact_ref_answers_one_object(forge: Forge) -> None:
    forge.origin.tag("v1.0.0")
    assert forge.api.get("/git/refs/tags/v1.0.0").json()["ref"] == "refs/tags/v1.0.0"


def test_ref_is_a_prefix_match_answering_an_array(forge: Forge) -> None:
    forge.origin.tag("v1.0.0")
    forge.origin.tag("v1.0.0-rc1")
    body = forge.api.get("/git/refs/tags/v1.0.0").json()
    assert sorted(ref["ref"] for ref in body) == ["refs/tags/v1.0.0", "refs/tags/v1.0.0-rc1"]


def test_ref_without_match_is_404(forge: Forge) -> None:
    assert forge.api.get("/git/refs/tags/v7").status_code == 404


# -- labels, issues, milestones ---------------------------------------------------------


def _label(forge: Forge, name: str = "release-blocker") -> int:
    response = forge.api.post("/labels", json={"name": name, "color": "#e11d21"})
    assert response.status_code == 201
    return int(response.json()["id"])


def _issue(forge: Forge, title: str, **fields: Any) -> int:
    response = forge.api.post("/issues", json={"title": title, **fields})
    assert response.status_code == 201
    return int(response.json()["number"])


def _titles(response: httpx.Response) -> list[str]:
    return sorted(issue["title"] for issue in response.json())


def test_label_is_created_and_listed(forge: Forge) -> None:
    _label(forge)
    assert [label["name"] for label in forge.api.get("/labels").json()] == ["release-blocker"]


def test_issues_filter_by_label_name(forge: Forge) -> None:
    blocker = _label(forge)
    _issue(forge, "Blocks", labels=[blocker])
    _issue(forge, "Does not block")
    response = forge.api.get("/issues", params={"state": "open", "labels": "release-blocker", "type": "issues"})
    assert _titles(response) == ["Blocks"]


def test_unknown_label_name_is_silently_dropped(forge: Forge) -> None:
    blocker = _label(forge)
    _issue(forge, "Blocks", labels=[blocker])
    _issue(forge, "Does not block")
    assert _titles(forge.api.get("/issues", params={"labels": "release-blocker,no-such-label"})) == ["Blocks"]
    # With only unknown names nothing is left to filter by: every open issue comes back.
    assert _titles(forge.api.get("/issues", params={"labels": "no-such-label"})) == ["Blocks", "Does not block"]


def test_pull_requests_are_mixed_in_unless_type_is_issues(forge: Forge) -> None:
    _issue(forge, "An issue")
    # Seeding a pull request uses the stand-in's extension field, so bypass the request check.
    seeded = httpx.post(f"{forge.base_url}/api/v1/repos/acme/sample/issues", headers={"Authorization": f"token {TOKEN}"},
                        json={"title": "A pull request", "pull_request": True})
    assert seeded.status_code == 201
    assert _titles(forge.api.get("/issues")) == ["A pull request", "An issue"]
    assert _titles(forge.api.get("/issues", params={"type": "issues"})) == ["An issue"]


def test_issue_state_defaults_to_open(forge: Forge) -> None:
    _issue(forge, "Open one")
    _issue(forge, "Closed one", closed=True)
    assert _titles(forge.api.get("/issues")) == ["Open one"]
    assert _titles(forge.api.get("/issues", params={"state": "all"})) == ["Closed one", "Open one"]


def test_issue_patch_answers_201(forge: Forge) -> None:
    number = _issue(forge, "Ship it")
    response = forge.api.patch(f"/issues/{number}", json={"state": "closed"})
    assert response.status_code == 201
    assert forge.api.get(f"/issues/{number}").json()["state"] == "closed"


def test_issue_page_size_is_capped_at_50_with_total_and_link(forge: Forge) -> None:
    for n in range(55):
        _issue(forge, f"Issue {n}")
    response = forge.api.get("/issues", params={"limit": 100})
    assert len(response.json()) == 50
    assert response.headers["X-Total-Count"] == "55"
    assert 'rel="next"' in response.headers["Link"] and "page=2" in response.headers["Link"]
    assert len(forge.api.get("/issues", params={"limit": 100, "page": 2}).json()) == 5


def test_issue_limit_defaults_to_30(forge: Forge) -> None:
    for n in range(31):
        _issue(forge, f"Issue {n}")
    assert len(forge.api.get("/issues").json()) == 30


def test_issues_filter_by_milestone_name(forge: Forge) -> None:
    milestone = forge.api.post("/milestones", json={"title": "1.0.0"}).json()["id"]
    _issue(forge, "In the milestone", milestone=milestone)
    _issue(forge, "Elsewhere")
    assert _titles(forge.api.get("/issues", params={"milestones": "1.0.0", "type": "issues"})) == \
        ["In the milestone"]


def test_milestone_counts_its_open_and_closed_issues(forge: Forge) -> None:
    milestone = forge.api.post("/milestones", json={"title": "1.0.0"}).json()["id"]
    _issue(forge, "Done", milestone=milestone, closed=True)
    _issue(forge, "Open", milestone=milestone)
    body = forge.api.get(f"/milestones/{milestone}").json()
    assert (body["open_issues"], body["closed_issues"]) == (1, 1)


def test_milestone_name_filter_is_a_contains_match(forge: Forge) -> None:
    forge.api.post("/milestones", json={"title": "1.0.0"})
    forge.api.post("/milestones", json={"title": "11.0.0"})
    titles = [m["title"] for m in forge.api.get("/milestones", params={"state": "open", "name": "1.0.0"}).json()]
    assert sorted(titles) == ["1.0.0", "11.0.0"]


def test_milestone_is_closed_by_name(forge: Forge) -> None:
    forge.api.post("/milestones", json={"title": "1.0.0"})
    response = forge.api.patch("/milestones/1.0.0", json={"state": "closed"})
    assert response.status_code == 200
    assert response.json()["state"] == "closed"
    assert forge.api.get("/milestones").json() == []


def test_unknown_milestone_is_404(forge: Forge) -> None:
    assert forge.api.get("/milestones/9.9.9").status_code == 404


# -- releases ---------------------------------------------------------------------------


def _release(forge: Forge, tag: str, **fields: Any) -> httpx.Response:
    return forge.api.post("/releases", json={"tag_name": tag, "name": tag, "body": "notes", **fields})


def test_release_for_a_pushed_tag_is_201(forge: Forge) -> None:
    forge.origin.tag("v1.0.0")
    response = _release(forge, "v1.0.0")
    assert response.status_code == 201
    assert forge.api.get("/releases/tags/v1.0.0").json()["id"] == response.json()["id"]


def test_second_release_for_a_tag_is_409(forge: Forge) -> None:
    forge.origin.tag("v1.0.0")
    _release(forge, "v1.0.0")
    assert _release(forge, "v1.0.0").status_code == 409


def test_release_by_tag_without_release_is_404(forge: Forge) -> None:
    forge.origin.tag("v1.0.0")
    assert forge.api.get("/releases/tags/v1.0.0").status_code == 404


def test_release_for_a_missing_tag_needs_a_target(forge: Forge) -> None:
    assert _release(forge, "v2.0.0").status_code == 404


def test_release_with_target_creates_the_git_tag(forge: Forge) -> None:
    assert _release(forge, "v2.0.0", target_commitish="main").status_code == 201
    assert forge.api.get("/tags/v2.0.0").json()["commit"]["sha"] == forge.origin.head()


def test_draft_release_does_not_create_the_git_tag(forge: Forge) -> None:
    assert _release(forge, "v2.0.0", target_commitish="main", draft=True).status_code == 201
    assert forge.api.get("/tags/v2.0.0").status_code == 404


def test_release_is_edited_and_deleted(forge: Forge) -> None:
    forge.origin.tag("v1.0.0")
    release_id = _release(forge, "v1.0.0").json()["id"]
    edited = forge.api.patch(f"/releases/{release_id}", json={"body": "new notes"})
    assert (edited.status_code, edited.json()["body"]) == (200, "new notes")
    assert forge.api.delete(f"/releases/{release_id}").status_code == 204
    assert forge.api.get(f"/releases/{release_id}").status_code == 404
    assert forge.api.get("/releases").json() == []


# -- actions ----------------------------------------------------------------------------


def test_version_tag_push_builds_and_publishes_the_manifest(forge: Forge) -> None:
    sha = forge.origin.tag("v1.0.0")
    run = completed_run(forge, sha)
    assert (run["event"], run["conclusion"]) == ("push", "success")
    assert forge.builder.calls == [(f"{REGISTRY}/acme/sample", "v1.0.0", ["CHANGES", "Dockerfile"])]
    artifacts = forge.api.get(f"/actions/runs/{run['id']}/artifacts").json()["artifacts"]
    assert [a["name"] for a in artifacts] == ["artifact-manifest"]


def test_tag_run_omits_head_branch_and_has_a_web_url(forge: Forge) -> None:
    run = completed_run(forge, forge.origin.tag("v1.0.0"))
    assert "head_branch" not in run
    assert run["html_url"] == f"{forge.base_url}/acme/sample/actions/runs/{run['run_number']}"


def test_branch_filter_never_matches_tag_runs(forge: Forge) -> None:
    sha = forge.origin.tag("v1.0.0")
    completed_run(forge, sha)
    assert forge.api.get("/actions/runs", params={"branch": "main"}).json()["total_count"] == 0
    assert forge.api.get("/actions/runs", params={"branch": "v1.0.0"}).json()["total_count"] == 0


def test_non_version_tags_do_not_build(forge: Forge) -> None:
    forge.origin.tag("nightly")
    sha = forge.origin.tag("v1.0.0")
    completed_run(forge, sha)
    assert forge.api.get("/actions/runs").json()["total_count"] == 1


def test_queued_run_has_no_conclusion_and_epoch_timestamps(forge: Forge) -> None:
    forge.admin("config", {"ci_delay_s": 60.0})
    sha = forge.origin.tag("v1.0.0")
    run = wait_for(lambda: forge.api.get("/actions/runs", params={"head_sha": sha}).json()["workflow_runs"],
                   "the queued run")[0]
    assert run["status"] == "queued"
    assert "conclusion" not in run
    assert run["started_at"] == run["completed_at"] == "1970-01-01T00:00:00Z"


def test_artifact_zip_redirects_to_a_signed_url_serving_the_manifest(forge: Forge) -> None:
    sha = forge.origin.tag("v1.0.0")
    run = completed_run(forge, sha)
    artifact = forge.api.get(f"/actions/runs/{run['id']}/artifacts").json()["artifacts"][0]
    redirect = forge.api.get(f"/actions/artifacts/{artifact['id']}/zip")
    assert redirect.status_code == 302
    blob = httpx.get(redirect.headers["Location"])  # signed: no token needed
    assert blob.status_code == 200
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(blob.content)).read("artifact-manifest.json"))
    assert manifest == {"image": f"{REGISTRY}/acme/sample", "tag": "v1.0.0", "digest": FAKE_DIGEST, "commit": sha}
    assert artifact["size_in_bytes"] == len(blob.content)


def test_blob_with_a_bad_signature_is_refused(forge: Forge) -> None:
    run = completed_run(forge, forge.origin.tag("v1.0.0"))
    artifact = forge.api.get(f"/actions/runs/{run['id']}/artifacts").json()["artifacts"][0]
    assert httpx.get(f"{forge.base_url}/_standin/blobs/{artifact['id']}?sig=forged").status_code == 403


def test_failed_build_concludes_failure_and_keeps_the_log(forge: Forge) -> None:
    forge.builder.error = BuildBroke("docker build failed", "step 2/3: COPY failed: no such file")
    run = completed_run(forge, forge.origin.tag("v1.0.0"))
    assert run["conclusion"] == "failure"
    assert forge.api.get(f"/actions/runs/{run['id']}/artifacts").json()["total_count"] == 0
    job = forge.api.get(f"/actions/runs/{run['id']}/jobs").json()["jobs"][0]
    assert job["conclusion"] == "failure"
    assert "COPY failed" in forge.api.get(f"/actions/jobs/{job['id']}/logs").text


def test_fail_next_run_fails_one_run_without_building(forge: Forge) -> None:
    forge.admin("config", {"fail_next_run": True})
    first = completed_run(forge, forge.origin.tag("v1.0.0"))
    forge.origin.commit("Fix")
    second = completed_run(forge, forge.origin.tag("v1.0.1"))
    assert (first["conclusion"], second["conclusion"]) == ("failure", "success")
    assert [call[1] for call in forge.builder.calls] == ["v1.0.1"]


def test_run_is_fetched_by_id(forge: Forge) -> None:
    run = completed_run(forge, forge.origin.tag("v1.0.0"))
    assert forge.api.get(f"/actions/runs/{run['id']}").json()["head_sha"] == run["head_sha"]


def test_tag_push_run_names_the_storage_owner_as_actor_and_trigger_actor(forge: Forge) -> None:
    run = completed_run(forge, forge.origin.tag("v1.0.0"))
    assert run["actor"]["login"] == run["trigger_actor"]["login"] == "sandbox-admin"


DISPATCHER = "sandbox-token-contract-dave"


def dispatch(forge: Forge, contract: SwaggerContract, ref: str, *, details: bool = True,
             workflow: str = "coordinator.yml") -> httpx.Response:
    """`POST .../actions/workflows/{workflow}/dispatches` as dave, checked against the swagger document."""
    assert forge.admin("users", {"login": "dave", "token": DISPATCHER, "teams": []}).status_code == 200
    with checked_client(forge.base_url, contract, token=DISPATCHER) as dave:
        return dave.post(f"/actions/workflows/{workflow}/dispatches", json={"ref": ref},
                         params={"return_run_details": "true"} if details else None)


def test_workflow_dispatch_starts_a_running_job_triggered_by_the_token_owner(forge: Forge,
                                                                           contract: SwaggerContract) -> None:
    response = dispatch(forge, contract, "main")
    assert response.status_code == 200, response.text
    details = response.json()
    run = forge.api.get(f"/actions/runs/{details['workflow_run_id']}").json()
    assert details["run_url"] == run["url"] and details["html_url"] == run["html_url"]
    assert (run["event"], run["status"], run["head_sha"], run["head_branch"]) == (
        "workflow_dispatch", "in_progress", forge.origin.head(), "main")
    assert run["actor"]["login"] == run["trigger_actor"]["login"] == "dave" and "conclusion" not in run
    assert run["path"] == "coordinator.yml@refs/heads/main"
    assert forge.builder.calls == []  # a coordinator job builds nothing


def test_workflow_dispatch_without_run_details_answers_204(forge: Forge, contract: SwaggerContract) -> None:
    assert dispatch(forge, contract, "refs/heads/main", details=False).status_code == 204
    runs = forge.api.get("/actions/runs", params={"event": "workflow_dispatch"}).json()["workflow_runs"]
    assert [r["actor"]["login"] for r in runs] == ["dave"]


def test_workflow_dispatch_of_an_unknown_ref_or_workflow_is_404(forge: Forge, contract: SwaggerContract) -> None:
    assert dispatch(forge, contract, "no-such-branch").status_code == 404
    assert dispatch(forge, contract, "main", workflow="not-a-workflow").status_code == 404


def test_a_dispatched_run_ends_when_the_admin_finishes_it(forge: Forge, contract: SwaggerContract) -> None:
    run_id = dispatch(forge, contract, "main").json()["workflow_run_id"]
    assert forge.admin("finish_run", {"repo": "acme/sample", "run": run_id}).status_code == 200
    run = forge.api.get(f"/actions/runs/{run_id}").json()
    assert (run["status"], run["conclusion"]) == ("completed", "success")
    assert forge.admin("finish_run", {"repo": "acme/sample", "run": 999999}).status_code == 404


# -- admin ------------------------------------------------------------------------------


def test_reset_forgets_state_and_treats_existing_tags_as_built(forge: Forge) -> None:
    completed_run(forge, forge.origin.tag("v1.0.0"))
    _label(forge)
    assert forge.admin("reset").status_code == 200
    assert forge.api.get("/labels").json() == []
    assert forge.api.get("/actions/runs").json()["total_count"] == 0
    sha = forge.origin.tag("v1.1.0")
    completed_run(forge, sha)
    runs = forge.api.get("/actions/runs").json()["workflow_runs"]
    assert [r["head_sha"] for r in runs] == [sha]


def test_state_survives_a_restart(tmp_path: Path, contract: SwaggerContract, template_origin: Origin) -> None:
    origin = template_origin.copy_to(tmp_path)
    state_file = tmp_path / "forge-state.json"
    first = StandinGitea(origin.git_root, REGISTRY, TOKEN, state_file=state_file, builder=StubBuilder())
    with checked_client(first.start(), contract) as api:
        api.post("/labels", json={"name": "release-blocker", "color": "#e11d21"})
    first.stop()
    second = StandinGitea(origin.git_root, REGISTRY, TOKEN, state_file=state_file, builder=StubBuilder())
    try:
        with checked_client(second.start(), contract) as api:
            assert [label["name"] for label in api.get("/labels").json()] == ["release-blocker"]
    finally:
        second.stop()


def test_config_rejects_unknown_keys(forge: Forge) -> None:
    assert forge.admin("config", {"branch-ci": False}).status_code == 422


def test_fail_500_answers_the_next_matching_requests_with_500_then_recovers(forge: Forge) -> None:
    assert forge.admin("config", {"fail_500_count": 2, "fail_500_path": r"/labels$"}).status_code == 200
    headers = {"Authorization": f"token {TOKEN}"}
    labels = f"{forge.base_url}/api/v1/repos/acme/sample/labels"
    answers = [httpx.get(labels, headers=headers, timeout=10.0).status_code for _ in range(3)]
    assert answers == [500, 500, 200]
    assert forge.api.get("/tags").status_code == 200  # other paths never fail
    assert forge.admin("config", {"fail_500_path": "("}).status_code == 422


def test_state_endpoint_shows_the_config(forge: Forge) -> None:
    forge.admin("config", {"branch_ci": False})
    state = httpx.get(f"{forge.base_url}/_standin/state").json()
    assert state["config"]["branch_ci"] is False


# -- a real build -----------------------------------------------------------------------


def _registry_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 45000), timeout=1.0):
            pass
        return httpx.get(f"http://{REGISTRY}/v2/", timeout=2.0).status_code in (200, 401)
    except (OSError, httpx.HTTPError):
        return False


@pytest.mark.world
def test_real_build_pushes_the_image_and_reports_its_digest(tmp_path: Path, contract: SwaggerContract,
                                                           template_origin: Origin) -> None:
    if not _registry_answers():
        pytest.skip(f"no registry answers on {REGISTRY}; run `python -m tests.sandbox up`")
    origin = template_origin.copy_to(tmp_path)
    # build_and_push copies the host's static busybox into the build context.
    (origin.work / "Dockerfile").write_text('FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox", "true"]\n')
    origin.commit("Buildable")
    tag = f"v0.0.{int(time.time())}"
    sha = origin.tag(tag)
    standin = StandinGitea(origin.git_root, REGISTRY, TOKEN)
    # The tag existed before the stand-in started, so it counts as already built: forget that.
    standin.store.repo("acme/sample").seen_tags.clear()
    standin.store.config.ci_delay_s = 0.0
    api = checked_client(standin.start(), contract)
    try:
        forge = Forge(standin, standin.base_url, api, origin, StubBuilder())
        run = completed_run(forge, sha, timeout_s=180.0)
        job = api.get(f"/actions/runs/{run['id']}/jobs").json()["jobs"][0]
        assert run["conclusion"] == "success", api.get(f"/actions/jobs/{job['id']}/logs").text
        artifact = api.get(f"/actions/runs/{run['id']}/artifacts").json()["artifacts"][0]
        blob = httpx.get(api.get(f"/actions/artifacts/{artifact['id']}/zip").headers["Location"])
        manifest = json.loads(zipfile.ZipFile(io.BytesIO(blob.content)).read("artifact-manifest.json"))
        head = httpx.head(f"http://{REGISTRY}/v2/acme/sample/manifests/{tag}",
                          headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json, "
                                             "application/vnd.oci.image.manifest.v1+json"})
        assert manifest["digest"] == head.headers["Docker-Content-Digest"]
    finally:
        api.close()
        standin.stop()
