"""commit-status provider: the tag commit's combined status, and a manifest at a URL or asset."""

from __future__ import annotations

import json

import pytest

from coordinator.ci import CIRun, RunConclusion, RunStatus, make_provider
from coordinator.errors import BuildFailed, ConfigError
from tests.scripted_api import ScriptedAPI, reply

REPO = "/api/v1/repos/acme/sample"
SHA = "a" * 40
MANIFEST = {"image": "registry.test/acme/sample", "tag": "v1.0.0", "digest": "sha256:" + "b" * 64, "commit": SHA}
STATUS_PATH = f"{REPO}/commits/{SHA}/status"


def combined(state: str, *statuses: tuple[str, str]) -> dict:
    return {"state": state, "sha": SHA, "total_count": len(statuses),
            "statuses": [{"context": c, "status": s, "target_url": f"https://ci.test/{c}"} for c, s in statuses] or None}


@pytest.fixture
def api() -> ScriptedAPI:
    return ScriptedAPI()


def provider_for(api: ScriptedAPI, **options):  # type: ignore[no-untyped-def]
    return make_provider("commit-status", base_url="https://forge.test", owner="acme", repo="sample", token="tok",
                         transport=api.transport(), sleep=lambda _: None, **options)


@pytest.mark.parametrize("state", ["", "pending"])
def test_no_statuses_means_no_run_yet(api: ScriptedAPI, state: str) -> None:
    api.on("GET", STATUS_PATH, reply(200, combined(state)))
    assert provider_for(api).find_tag_run("v1.0.0", SHA) is None


def test_the_status_is_read_by_full_sha_not_by_tag_name(api: ScriptedAPI) -> None:
    api.on("GET", STATUS_PATH, reply(200, combined("pending", ("ci/build", "pending"))))
    run = provider_for(api).find_tag_run("v1.0.0", SHA)
    assert run is not None and run.status is RunStatus.IN_PROGRESS
    assert api.calls[0].path == STATUS_PATH


@pytest.mark.parametrize("state, conclusion", [("success", RunConclusion.SUCCESS), ("failure", RunConclusion.FAILURE),
                                               ("error", RunConclusion.FAILURE), ("warning", RunConclusion.FAILURE)])
def test_a_final_combined_state_completes_the_run(api: ScriptedAPI, state: str, conclusion: RunConclusion) -> None:
    api.on("GET", STATUS_PATH, reply(200, combined(state, ("ci/build", state))))
    run = provider_for(api).find_tag_run("v1.0.0", SHA)
    assert run is not None and run.status is RunStatus.COMPLETED and run.conclusion is conclusion
    assert run.html_url == "https://ci.test/ci/build"


def test_a_context_filter_ignores_other_reporters(api: ScriptedAPI) -> None:
    api.on("GET", STATUS_PATH, reply(200, combined("failure", ("ci/woodpecker/tag/build", "success"),
                                                   ("lint", "failure"))))
    run = provider_for(api, status_context="ci/woodpecker/tag").find_tag_run("v1.0.0", SHA)
    assert run is not None and run.conclusion is RunConclusion.SUCCESS


def test_the_manifest_comes_from_the_configured_url(api: ScriptedAPI) -> None:
    provider = provider_for(api, manifest_url="https://files.test/builds/{tag}/{sha}.json")
    api.on("GET", STATUS_PATH, reply(200, combined("success", ("ci/build", "success"))))
    api.on("GET", f"/builds/v1.0.0/{SHA}.json", reply(200, MANIFEST))
    run = provider.find_tag_run("v1.0.0", SHA)
    assert run is not None
    assert provider.fetch_artifact_manifest(run).digest == MANIFEST["digest"]
    # Another host: the forge token is not sent there.
    assert "Authorization" not in api.calls[-1].headers


def test_a_missing_manifest_at_the_url_is_build_failed(api: ScriptedAPI) -> None:
    provider = provider_for(api, manifest_url="https://files.test/builds/{tag}.json")
    run = CIRun(id=SHA, status=RunStatus.COMPLETED, conclusion=RunConclusion.SUCCESS, head_sha=SHA, tag="v1.0.0")
    with pytest.raises(BuildFailed, match="no artifact manifest at files.test/builds/v1.0.0.json"):
        provider.fetch_artifact_manifest(run)


def test_without_a_url_the_manifest_is_a_release_asset(api: ScriptedAPI) -> None:
    provider = provider_for(api)
    asset_url = "https://forge.test/acme/sample/releases/download/v1.0.0/artifact-manifest.json"
    api.on("GET", f"{REPO}/releases/tags/v1.0.0", reply(200, {
        "id": 7, "tag_name": "v1.0.0", "assets": [{"id": 3, "name": "artifact-manifest.json",
                                                   "browser_download_url": asset_url}]}))
    api.on("GET", "/acme/sample/releases/download/v1.0.0/artifact-manifest.json",
           reply(200, content=json.dumps(MANIFEST).encode()))
    run = CIRun(id=SHA, status=RunStatus.COMPLETED, conclusion=RunConclusion.SUCCESS, head_sha=SHA, tag="v1.0.0")
    assert provider.fetch_artifact_manifest(run).commit == SHA
    assert api.calls[-1].headers["Authorization"] == "token tok"  # same origin as the forge


def test_no_release_and_no_url_says_how_to_fix_it(api: ScriptedAPI) -> None:
    run = CIRun(id=SHA, status=RunStatus.COMPLETED, conclusion=RunConclusion.SUCCESS, head_sha=SHA, tag="v1.0.0")
    with pytest.raises(BuildFailed, match="set ci.manifest_url"):
        provider_for(api).fetch_artifact_manifest(run)


def test_a_manifest_url_with_an_unknown_placeholder_is_a_config_error(api: ScriptedAPI) -> None:
    with pytest.raises(ConfigError, match="version"):
        provider_for(api, manifest_url="https://files.test/{version}.json")


def test_an_unknown_provider_kind_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="gitea-actions"):
        make_provider("jenkins", base_url="https://forge.test", owner="acme", repo="sample", token="tok")
