"""Woodpecker and GitHub Actions providers against small local stand-ins (real sockets,
127.0.0.1, ephemeral ports), shaped by what those systems document:

- Woodpecker: `/api`, Bearer auth, `GET /api/repos/lookup/{owner}/{name}`,
  `GET /api/repos/{id}/pipelines?event=tag&ref=…` where `ref` is a *contains* match,
  `page`/`perPage` paging, Unix-second timestamps (0 = unset).
- GitHub: Bearer auth with `X-GitHub-Api-Version`, `{"total_count", "workflow_runs"}`,
  `head_branch` = the tag for tag pushes, `conclusion` null until completed, artifact zip
  via 302 to storage on another host, 410 once expired.

A second server plays file storage on another origin: it fails any request that carries
our token, so a leak across origins fails the test.
"""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from coordinator.ci import CIProvider, RunConclusion, RunStatus, make_provider, wait_for_run
from coordinator.errors import BuildFailed, ForgeError, IdentityRefused, TokenRefused

TOKEN = "ci-token-123"
SHA = "0123456789abcdef0123456789abcdef01234567"
OTHER_SHA = "f" * 40
DIGEST = "sha256:" + "cd" * 32
MANIFEST = {"image": "registry.test/acme/sample", "tag": "v1.0.0", "digest": DIGEST, "commit": SHA}

Route = Callable[["Request"], tuple[int, Any, dict[str, str]]]


class Request:
    def __init__(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        self.method = handler.command
        self.path = parts.path
        self.query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        self.headers = handler.headers


class StandIn:
    """A tiny threaded HTTP server: `routes(request)` returns (status, body, headers)."""

    def __init__(self, routes: Route) -> None:
        self.routes = routes
        self.requests: list[Request] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                request = Request(self)
                stand_in.requests.append(request)
                status, body, headers = stand_in.routes(request)
                payload = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> StandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def manifest_zip(manifest: dict[str, str] = MANIFEST) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("artifact-manifest.json", json.dumps(manifest))
    return buffer.getvalue()


@pytest.fixture
def storage() -> Iterator[StandIn]:
    """File storage on another origin; refuses (500) any request that carries a token."""
    files: dict[str, bytes] = {
        "/manifests/v1.0.0/artifact-manifest.json": json.dumps(MANIFEST).encode(),
        "/blobs/77.zip": manifest_zip(),
    }

    def routes(request: Request) -> tuple[int, Any, dict[str, str]]:
        if request.headers.get("Authorization"):
            return 500, {"message": "credential leaked to storage"}, {}
        if request.path in files:
            return 200, files[request.path], {"Content-Type": "application/octet-stream"}
        return 404, {"message": "no such file"}, {}

    with StandIn(routes) as server:
        yield server


def no_sleep(_: float) -> None:
    pass


def progress_recorder() -> tuple[list[tuple[RunStatus | None, float]], Callable[..., None]]:
    seen: list[tuple[RunStatus | None, float]] = []
    return seen, lambda run, elapsed: seen.append((run.status if run else None, elapsed))


# -- Woodpecker -----------------------------------------------------------------------------


class WoodpeckerWorld:
    """One repository (id 42) with pipelines; the tag pipeline advances on every read."""

    REPO_ID = 42

    def __init__(self) -> None:
        self.tag_pipeline_states = ["pending", "running", "success"]
        self.reads = 0
        self.sender: str | None = None  # who triggered pipeline 7, when Woodpecker says

    def pipeline(self, number: int, *, ref: str, commit: str, status: str) -> dict[str, Any]:
        finished = 1_777_000_100 if status in ("success", "failure", "killed", "error") else 0
        return {"id": 1000 + number, "number": number, "event": "tag", "status": status, "ref": ref,
                "commit": commit, "branch": "", "created": 1_777_000_000, "started": 1_777_000_010,
                "finished": finished, "message": "release", "author": "dev"}

    def tag_pipeline(self) -> dict[str, Any]:
        status = self.tag_pipeline_states[min(self.reads, len(self.tag_pipeline_states) - 1)]
        self.reads += 1
        pipeline = self.pipeline(7, ref="refs/tags/v1.0.0", commit=SHA, status=status)
        if self.sender is not None:
            pipeline["sender"] = self.sender
        return pipeline

    def routes(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return 401, {"message": "Unauthorized"}, {}
        base = f"/api/repos/{self.REPO_ID}"
        if request.path == "/api/repos/lookup/acme/sample":
            return 200, {"id": self.REPO_ID, "owner": "acme", "name": "sample", "full_name": "acme/sample",
                         "forge_remote_id": "9", "active": True}, {}
        if request.path == f"{base}/pipelines":
            if request.query.get("event") != "tag":
                return 400, {"message": "this stand-in only serves tag pipelines"}, {}
            everything = [
                self.pipeline(9, ref="refs/tags/v1.0.0-rc1", commit=SHA, status="success"),
                self.pipeline(8, ref="refs/tags/v1.0.0", commit=OTHER_SHA, status="success"),
                self.tag_pipeline(),
            ]
            wanted = request.query.get("ref", "")
            matching = [p for p in everything if wanted in p["ref"]]  # Woodpecker: contains match
            page, per_page = int(request.query.get("page", "1")), int(request.query.get("perPage", "50"))
            return 200, matching[(page - 1) * per_page: page * per_page], {}
        if request.path == f"{base}/pipelines/7":
            return 200, self.tag_pipeline(), {}
        return 404, {"message": "not found"}, {}


@pytest.fixture
def woodpecker() -> Iterator[tuple[WoodpeckerWorld, StandIn]]:
    world = WoodpeckerWorld()
    with StandIn(world.routes) as server:
        yield world, server


def woodpecker_provider(server: StandIn, storage: StandIn, token: str = TOKEN) -> CIProvider:
    return make_provider("woodpecker", base_url=server.url, owner="acme", repo="sample", token=token,
                         manifest_url=storage.url + "/manifests/{tag}/artifact-manifest.json", sleep=no_sleep)


def test_woodpecker_tag_pipeline_is_matched_exactly_despite_the_contains_filter(woodpecker, storage) -> None:  # type: ignore[no-untyped-def]
    _, server = woodpecker
    run = woodpecker_provider(server, storage).find_tag_run("v1.0.0", SHA)
    assert run is not None and run.id == "7" and run.tag == "v1.0.0"
    assert run.html_url == f"{server.url}/repos/42/pipeline/7"
    assert run.completed_at is None  # 0 means unset
    listing = [r for r in server.requests if r.path.endswith("/pipelines")][0]
    assert listing.query == {"event": "tag", "ref": "refs/tags/v1.0.0", "page": "1", "perPage": "50"}


def test_woodpecker_wait_then_manifest_from_the_configured_url(woodpecker, storage) -> None:  # type: ignore[no-untyped-def]
    _, server = woodpecker
    provider = woodpecker_provider(server, storage)
    seen, on_progress = progress_recorder()
    run = wait_for_run(provider, "v1.0.0", SHA, timeout_s=60, poll_interval_s=0.01, on_progress=on_progress,
                       sleep=no_sleep)
    assert run.conclusion is RunConclusion.SUCCESS
    assert [status for status, _ in seen] == [RunStatus.QUEUED, RunStatus.IN_PROGRESS, RunStatus.COMPLETED]
    manifest = provider.fetch_artifact_manifest(run)
    assert manifest.digest == DIGEST
    assert [r.path for r in storage.requests] == ["/manifests/v1.0.0/artifact-manifest.json"]


@pytest.mark.parametrize("word, conclusion", [("failure", RunConclusion.FAILURE), ("error", RunConclusion.FAILURE),
                                              ("killed", RunConclusion.CANCELLED), ("declined", RunConclusion.CANCELLED),
                                              ("skipped", RunConclusion.SKIPPED)])
def test_woodpecker_final_statuses_map_to_conclusions(woodpecker, storage, word: str,  # type: ignore[no-untyped-def]
                                                      conclusion: RunConclusion) -> None:
    world, server = woodpecker
    world.tag_pipeline_states = [word]
    run = woodpecker_provider(server, storage).get_run("7")
    assert run.status is RunStatus.COMPLETED and run.conclusion is conclusion


def test_woodpecker_blocked_pipeline_is_still_waiting(woodpecker, storage) -> None:  # type: ignore[no-untyped-def]
    world, server = woodpecker
    world.tag_pipeline_states = ["blocked"]
    assert woodpecker_provider(server, storage).get_run("7").status is RunStatus.QUEUED


def test_woodpecker_bad_token_is_a_refused_token_without_the_token(woodpecker, storage) -> None:  # type: ignore[no-untyped-def]
    _, server = woodpecker
    with pytest.raises(TokenRefused, match="Woodpecker refused the token from the configured token \\(HTTP 401") as caught:
        woodpecker_provider(server, storage, token="wrong-token").find_tag_run("v1.0.0", SHA)
    assert "wrong-token" not in caught.value.message


def test_woodpecker_needs_a_manifest_url(woodpecker) -> None:  # type: ignore[no-untyped-def]
    _, server = woodpecker
    with pytest.raises(Exception, match="manifest_url is required"):
        make_provider("woodpecker", base_url=server.url, owner="acme", repo="sample", token=TOKEN)


def test_unreachable_ci_is_status_unknown_not_build_failed(storage) -> None:  # type: ignore[no-untyped-def]
    world = WoodpeckerWorld()
    with StandIn(world.routes) as server:
        url = server.url
    provider = make_provider("woodpecker", base_url=url, owner="acme", repo="sample", token=TOKEN,
                             manifest_url=storage.url + "/{tag}", sleep=no_sleep)
    with pytest.raises(ForgeError, match="CI status unknown") as caught:
        wait_for_run(provider, "v1.0.0", SHA, timeout_s=60, poll_interval_s=0.01, on_progress=None, sleep=no_sleep)
    assert not isinstance(caught.value, BuildFailed)


# -- GitHub Actions -------------------------------------------------------------------------


class GitHubWorld:
    """Runs for one commit: a branch push and the tag push; the tag run advances per read."""

    def __init__(self, storage_url: str) -> None:
        self.storage_url = storage_url
        self.states: list[tuple[str, str | None]] = [("queued", None), ("in_progress", None), ("completed", "success")]
        self.reads = 0
        self.artifact_gone = False
        self.actors: dict[str, Any] = {}  # actor / triggering_actor of run 555

    def run(self, run_id: int, *, head_branch: str, status: str, conclusion: str | None) -> dict[str, Any]:
        return {"id": run_id, "name": "release", "run_number": run_id - 500, "event": "push", "status": status,
                "conclusion": conclusion, "head_branch": head_branch, "head_sha": SHA,
                "html_url": f"https://github.test/acme/sample/actions/runs/{run_id}",
                "created_at": "2026-05-01T10:00:00Z", "run_started_at": "2026-05-01T10:00:05Z"}

    def tag_run(self) -> dict[str, Any]:
        status, conclusion = self.states[min(self.reads, len(self.states) - 1)]
        self.reads += 1
        return {**self.run(555, head_branch="v1.0.0", status=status, conclusion=conclusion), **self.actors}

    def routes(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        if (request.headers.get("Authorization") != f"Bearer {TOKEN}"
                or request.headers.get("X-GitHub-Api-Version") != "2022-11-28"):
            return 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.test"}, {}
        repo = "/repos/acme/sample/actions"
        if request.path == f"{repo}/runs":
            runs = [self.run(556, head_branch="main", status="completed", conclusion="success"), self.tag_run()]
            runs = [r for r in runs if r["head_sha"] == request.query.get("head_sha")]
            return 200, {"total_count": len(runs), "workflow_runs": runs}, {}
        if request.path == f"{repo}/runs/555":
            return 200, self.tag_run(), {}
        if request.path == f"{repo}/runs/555/artifacts":
            artifact = {"id": 77, "name": "artifact-manifest", "size_in_bytes": 300, "expired": self.artifact_gone,
                        "archive_download_url": f"https://api.github.test{repo}/artifacts/77/zip"}
            return 200, {"total_count": 1, "artifacts": [artifact]}, {}
        if request.path == f"{repo}/artifacts/77/zip":
            if self.artifact_gone:
                return 410, {"message": "Artifact has expired"}, {}
            return 302, None, {"Location": f"{self.storage_url}/blobs/77.zip"}
        return 404, {"message": "Not Found"}, {}


@pytest.fixture
def github(storage: StandIn) -> Iterator[tuple[GitHubWorld, StandIn]]:
    world = GitHubWorld(storage.url)
    with StandIn(world.routes) as server:
        yield world, server


def github_provider(server: StandIn) -> CIProvider:
    return make_provider("github-actions", base_url=server.url, owner="acme", repo="sample", token=TOKEN,
                         sleep=no_sleep)


def test_github_tag_run_is_the_one_whose_head_branch_is_the_tag(github) -> None:  # type: ignore[no-untyped-def]
    _, server = github
    run = github_provider(server).find_tag_run("v1.0.0", SHA)
    assert run is not None and run.id == "555" and run.status is RunStatus.QUEUED and run.conclusion is None
    assert server.requests[0].query == {"event": "push", "head_sha": SHA, "page": "1", "per_page": "100"}


def test_github_wait_then_artifact_zip_through_a_302_to_storage(github, storage) -> None:  # type: ignore[no-untyped-def]
    _, server = github
    provider = github_provider(server)
    seen, on_progress = progress_recorder()
    run = wait_for_run(provider, "v1.0.0", SHA, timeout_s=60, poll_interval_s=0.01, on_progress=on_progress,
                       sleep=no_sleep)
    assert run.succeeded
    assert [status for status, _ in seen] == [RunStatus.QUEUED, RunStatus.IN_PROGRESS, RunStatus.COMPLETED]
    assert provider.fetch_artifact_manifest(run).digest == DIGEST
    assert [r.path for r in storage.requests] == ["/blobs/77.zip"]  # and it carried no token


def test_github_expired_artifact_is_a_clear_build_failure(github) -> None:  # type: ignore[no-untyped-def]
    world, server = github
    world.states = [("completed", "success")]
    provider = github_provider(server)
    run = provider.get_run("555")
    world.artifact_gone = True
    with pytest.raises(BuildFailed, match="expired"):
        provider.fetch_artifact_manifest(run)


@pytest.mark.parametrize("word, conclusion", [("failure", RunConclusion.FAILURE), ("timed_out", RunConclusion.TIMED_OUT),
                                              ("cancelled", RunConclusion.CANCELLED), ("neutral", RunConclusion.FAILURE),
                                              ("startup_failure", RunConclusion.FAILURE)])
def test_github_conclusions_other_than_success_are_never_green(github, word: str,  # type: ignore[no-untyped-def]
                                                               conclusion: RunConclusion) -> None:
    world, server = github
    world.states = [("completed", word)]
    assert github_provider(server).get_run("555").conclusion is conclusion


def test_github_run_that_never_finishes_times_out_with_its_url(github) -> None:  # type: ignore[no-untyped-def]
    world, server = github
    world.states = [("in_progress", None)]
    clock = {"now": 0.0}

    def fake_sleep(seconds: float) -> None:
        clock["now"] += seconds

    with pytest.raises(BuildFailed, match="https://github.test/acme/sample/actions/runs/555"):
        wait_for_run(github_provider(server), "v1.0.0", SHA, timeout_s=20, poll_interval_s=2, on_progress=None,
                     sleep=fake_sleep, clock=lambda: clock["now"])


# -- who triggered a run (the releaser of a release started from CI) ---------------------------


def test_woodpecker_names_the_pipelines_sender_as_who_triggered_it(woodpecker, storage) -> None:  # type: ignore[no-untyped-def]
    world, server = woodpecker
    world.sender = "alice"
    run = woodpecker_provider(server, storage).triggered_run("7")
    assert (run.actor, run.head_sha, run.status) == ("alice", SHA, RunStatus.QUEUED)


def test_woodpecker_pipeline_without_a_sender_is_refused_naming_the_pipeline(woodpecker, storage) -> None:  # type: ignore[no-untyped-def]
    _, server = woodpecker
    with pytest.raises(IdentityRefused, match="Woodpecker pipeline 7 names no sender"):
        woodpecker_provider(server, storage).triggered_run("7")


def test_woodpecker_pipeline_of_another_repository_is_not_found_here(woodpecker, storage) -> None:  # type: ignore[no-untyped-def]
    _, server = woodpecker
    with pytest.raises(ForgeError) as caught:
        woodpecker_provider(server, storage).triggered_run("8")
    assert caught.value.status == 404


def test_github_triggering_actor_wins_over_the_actor_of_the_first_attempt(github) -> None:  # type: ignore[no-untyped-def]
    world, server = github
    world.actors = {"actor": {"login": "carol"}, "triggering_actor": {"login": "alice"},
                    "repository": {"full_name": "acme/sample"}}
    run = github_provider(server).triggered_run("555")
    assert (run.actor, run.repository) == ("alice", "acme/sample")
    world.actors = {"actor": {"login": "carol"}}
    assert github_provider(server).triggered_run("555").actor == "carol"

