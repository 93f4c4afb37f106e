"""Gitea Actions provider: finding the tag's run, following it, and reading its artifact."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from coordinator.ci import CIRun, RunConclusion, RunStatus, make_provider
from coordinator.errors import BuildFailed
from tests.scripted_api import ScriptedAPI, reply

REPO = "/api/v1/repos/acme/sample"
SHA = "a" * 40
DIGEST = "sha256:" + "b" * 64
MANIFEST = {"image": "127.0.0.1:45000/acme/sample", "tag": "v1.0.0", "digest": DIGEST, "commit": SHA}
EPOCH = "1970-01-01T00:00:00Z"


def gitea_run(run_id: int, *, status: str = "completed", conclusion: str | None = "success",
              head_branch: str | None = None, sha: str = SHA, event: str = "push") -> dict:
    body = {"id": run_id, "run_number": run_id, "event": event, "status": status, "head_sha": sha,
            "html_url": f"https://forge.test/acme/sample/actions/runs/{run_id}",
            "started_at": "2026-05-01T10:00:00Z", "completed_at": EPOCH}
    if conclusion is not None:
        body["conclusion"] = conclusion
    if head_branch is not None:
        body["head_branch"] = head_branch
    return body


def manifest_zip(manifest: dict = MANIFEST) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("artifact-manifest.json", json.dumps(manifest))
    return buffer.getvalue()


@pytest.fixture
def api() -> ScriptedAPI:
    return ScriptedAPI()


@pytest.fixture
def provider(api: ScriptedAPI):  # type: ignore[no-untyped-def]
    return make_provider("gitea-actions", base_url="https://forge.test/", owner="acme", repo="sample",
                         token="tok", transport=api.transport(), sleep=lambda _: None)


def runs(*items: dict) -> dict:
    return {"total_count": len(items), "workflow_runs": list(items)}


def test_the_tag_run_is_the_push_run_without_a_branch(api: ScriptedAPI, provider) -> None:  # type: ignore[no-untyped-def]
    api.on("GET", f"{REPO}/actions/runs", reply(200, runs(
        gitea_run(9, head_branch="main", status="in_progress", conclusion=None),
        gitea_run(8),
    )))
    found = provider.find_tag_run("v1.0.0", SHA)
    assert found is not None and found.id == "8" and found.tag == "v1.0.0"
    assert api.calls[0].query == {"event": "push", "head_sha": SHA, "page": "1", "limit": "50"}


def test_runs_of_another_commit_are_ignored(api: ScriptedAPI, provider) -> None:  # type: ignore[no-untyped-def]
    api.on("GET", f"{REPO}/actions/runs", reply(200, runs(gitea_run(8, sha="f" * 40))))
    assert provider.find_tag_run("v1.0.0", SHA) is None


def test_no_run_yet_is_none(api: ScriptedAPI, provider) -> None:  # type: ignore[no-untyped-def]
    api.on("GET", f"{REPO}/actions/runs", reply(200, {"total_count": 0, "workflow_runs": None}))
    assert provider.find_tag_run("v1.0.0", SHA) is None


def test_a_queued_run_has_no_conclusion_and_unset_times_are_none(api: ScriptedAPI, provider) -> None:  # type: ignore[no-untyped-def]
    api.on("GET", f"{REPO}/actions/runs/8", reply(200, gitea_run(8, status="queued", conclusion=None)))
    run = provider.get_run("8")
    assert run.status is RunStatus.QUEUED
    assert run.conclusion is None
    assert run.completed_at is None
    assert run.html_url == "https://forge.test/acme/sample/actions/runs/8"


@pytest.mark.parametrize("word, expected", [("success", RunConclusion.SUCCESS), ("failure", RunConclusion.FAILURE),
                                            ("cancelled", RunConclusion.CANCELLED), ("skipped", RunConclusion.SKIPPED),
                                            ("something-new", RunConclusion.FAILURE)])
def test_conclusions_map_and_unknown_ones_are_never_success(api: ScriptedAPI, provider, word: str,  # type: ignore[no-untyped-def]
                                                            expected: RunConclusion) -> None:
    api.on("GET", f"{REPO}/actions/runs/8", reply(200, gitea_run(8, conclusion=word)))
    assert provider.get_run("8").conclusion is expected


def completed_run() -> CIRun:
    return CIRun(id="8", status=RunStatus.COMPLETED, conclusion=RunConclusion.SUCCESS, head_sha=SHA)


def test_the_manifest_zip_is_fetched_through_the_302_redirect(api: ScriptedAPI, provider) -> None:  # type: ignore[no-untyped-def]
    api.on("GET", f"{REPO}/actions/runs/8/artifacts", reply(200, {"total_count": 1, "artifacts": [
        {"id": 31, "name": "artifact-manifest", "expired": False, "size_in_bytes": 200}]}))
    api.on("GET", f"{REPO}/actions/artifacts/31/zip",
           reply(302, headers={"Location": "https://blobs.test/signed/31.zip?sig=abc"}))
    api.on("GET", "/signed/31.zip", reply(200, content=manifest_zip(), headers={"Content-Type": "application/zip"}))
    manifest = provider.fetch_artifact_manifest(completed_run())
    assert manifest.digest == DIGEST
    assert api.calls[1].query == {}
    # The signed storage URL is another host: our token must not follow the redirect there.
    assert "Authorization" not in api.calls[-1].headers


def test_an_expired_artifact_is_a_clear_build_failure(api: ScriptedAPI, provider) -> None:  # type: ignore[no-untyped-def]
    api.on("GET", f"{REPO}/actions/runs/8/artifacts", reply(200, {"total_count": 1, "artifacts": [
        {"id": 31, "name": "artifact-manifest", "expired": False}]}))
    api.on("GET", f"{REPO}/actions/artifacts/31/zip", reply(404, {"message": "artifact not found", "url": "u"}))
    with pytest.raises(BuildFailed, match="expired or deleted.*re-run the tag's CI job"):
        provider.fetch_artifact_manifest(completed_run())


def test_an_artifact_marked_expired_is_not_downloaded(api: ScriptedAPI, provider) -> None:  # type: ignore[no-untyped-def]
    api.on("GET", f"{REPO}/actions/runs/8/artifacts", reply(200, {"total_count": 1, "artifacts": [
        {"id": 31, "name": "artifact-manifest", "expired": True}]}))
    with pytest.raises(BuildFailed, match="has expired"):
        provider.fetch_artifact_manifest(completed_run())
    assert api.served("GET", f"{REPO}/actions/artifacts/31/zip") == 0


def test_a_run_without_the_named_artifact_says_which_name(api: ScriptedAPI, provider) -> None:  # type: ignore[no-untyped-def]
    api.on("GET", f"{REPO}/actions/runs/8/artifacts", reply(200, {"total_count": 0, "artifacts": []}))
    with pytest.raises(BuildFailed, match="no artifact named 'artifact-manifest'"):
        provider.fetch_artifact_manifest(completed_run())


def test_the_artifact_name_is_configurable(api: ScriptedAPI) -> None:
    provider = make_provider("gitea-actions", base_url="https://forge.test", owner="acme", repo="sample", token="tok",
                             artifact_name="release-info", transport=api.transport())
    api.on("GET", f"{REPO}/actions/runs/8/artifacts", reply(200, {"total_count": 1, "artifacts": [
        {"id": 4, "name": "release-info", "expired": False}]}))
    api.on("GET", f"{REPO}/actions/artifacts/4/zip", reply(200, content=manifest_zip()))
    assert provider.fetch_artifact_manifest(completed_run()).commit == SHA
    assert api.calls[0].query == {"name": "release-info"}


def test_a_manifest_built_from_another_commit_is_refused(api: ScriptedAPI, provider) -> None:  # type: ignore[no-untyped-def]
    api.on("GET", f"{REPO}/actions/runs/8/artifacts", reply(200, {"total_count": 1, "artifacts": [
        {"id": 31, "name": "artifact-manifest", "expired": False}]}))
    api.on("GET", f"{REPO}/actions/artifacts/31/zip", reply(200, content=manifest_zip({**MANIFEST, "commit": "c" * 40})))
    with pytest.raises(BuildFailed, match="another build"):
        provider.fetch_artifact_manifest(completed_run())
