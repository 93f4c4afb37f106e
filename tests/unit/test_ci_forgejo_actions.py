"""Forgejo Actions provider: Forgejo's own shapes (commit_sha, status words, bare arrays)."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from coordinator.ci import RunConclusion, RunStatus, make_provider
from tests.scripted_api import ScriptedAPI, reply

REPO = "/api/v1/repos/acme/sample"
SHA = "a" * 40
MANIFEST = {"image": "registry.test/acme/sample", "tag": "v1.0.0", "digest": "sha256:" + "b" * 64, "commit": SHA}


def forgejo_run(run_id: int, *, status: str = "success", prettyref: str = "v1.0.0", sha: str = SHA) -> dict:
    return {"id": run_id, "index_in_repo": run_id, "event": "push", "status": status, "commit_sha": sha,
            "prettyref": prettyref, "html_url": f"https://forge.test/acme/sample/actions/runs/{run_id}",
            "started": "2026-05-01T10:00:00Z", "stopped": "1970-01-01T00:00:00Z"}


@pytest.fixture
def api() -> ScriptedAPI:
    return ScriptedAPI()


@pytest.fixture
def provider(api: ScriptedAPI):  # type: ignore[no-untyped-def]
    return make_provider("forgejo-actions", base_url="https://forge.test", owner="acme", repo="sample",
                         token="tok", transport=api.transport(), sleep=lambda _: None)


def test_the_tag_run_is_matched_by_commit_and_ref(api: ScriptedAPI, provider) -> None:  # type: ignore[no-untyped-def]
    api.on("GET", f"{REPO}/actions/runs", reply(200, {"total_count": 3, "workflow_runs": [
        forgejo_run(12, prettyref="main"), forgejo_run(11), forgejo_run(10, prettyref="v1.0.0-rc1")]}))
    run = provider.find_tag_run("v1.0.0", SHA)
    assert run is not None and run.id == "11" and run.head_sha == SHA and run.number == 11


@pytest.mark.parametrize("word, status, conclusion", [
    ("waiting", RunStatus.QUEUED, None), ("blocked", RunStatus.QUEUED, None),
    ("running", RunStatus.IN_PROGRESS, None), ("success", RunStatus.COMPLETED, RunConclusion.SUCCESS),
    ("failure", RunStatus.COMPLETED, RunConclusion.FAILURE), ("cancelled", RunStatus.COMPLETED, RunConclusion.CANCELLED),
])
def test_forgejo_status_words_carry_the_conclusion(api: ScriptedAPI, provider, word: str, status: RunStatus,  # type: ignore[no-untyped-def]
                                                   conclusion: RunConclusion | None) -> None:
    api.on("GET", f"{REPO}/actions/runs/11", reply(200, forgejo_run(11, status=word)))
    run = provider.get_run("11")
    assert (run.status, run.conclusion) == (status, conclusion)
    assert run.completed_at is None


def test_artifacts_come_as_a_bare_array_and_the_zip_directly(api: ScriptedAPI, provider) -> None:  # type: ignore[no-untyped-def]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("artifact-manifest.json", json.dumps(MANIFEST))
    api.on("GET", f"{REPO}/actions/runs/11", reply(200, forgejo_run(11)))
    api.on("GET", f"{REPO}/actions/runs/11/artifacts", reply(200, [{"id": 5, "name": "artifact-manifest", "run_id": 11}]))
    api.on("GET", f"{REPO}/actions/artifacts/5/zip", reply(200, content=buffer.getvalue()))
    manifest = provider.fetch_artifact_manifest(provider.get_run("11"))
    assert manifest.image == "registry.test/acme/sample"
