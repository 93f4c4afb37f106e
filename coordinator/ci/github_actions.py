"""GitHub Actions (github.com or Enterprise): the tag's workflow run and its artifact zip.

`base_url` is the API root (`https://api.github.com`, or `https://HOST/api/v3`). For a
tag push GitHub reports the tag's name in `head_branch`; `conclusion` is null until the
run completes; the zip download answers 302 to short-lived storage, and 410 once expired.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from coordinator.ci._actions import actions_run, fetch_artifact_zip_manifest
from coordinator.ci.base import DEFAULT_ARTIFACT_NAME, ArtifactManifest, CIRun
from coordinator.forge._http import HttpSession, RetryPolicy, check_token, decode_json, segment

API_VERSION = "2022-11-28"


class GitHubActionsProvider:
    """Workflow runs of one GitHub repository."""

    kind = "github-actions"
    run_id_env: str | None = "GITHUB_RUN_ID"

    def __init__(
        self,
        base_url: str,
        owner: str,
        repo: str,
        token: str,
        *,
        artifact_name: str = DEFAULT_ARTIFACT_NAME,
        timeout: float = 10.0,
        ca_file: Path | None = None,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        token_source: str | None = None,
    ) -> None:
        self.artifact_name = artifact_name
        self.http = HttpSession(
            str(base_url), service="GitHub",
            auth_header=f"Bearer {check_token(token, service='GitHub')}",
            timeout=timeout, ca_file=ca_file, transport=transport, retry=retry, sleep=sleep, token_source=token_source,
            extra_headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION},
        )
        self.repo_path = f"/repos/{segment(owner)}/{segment(repo)}"

    def __repr__(self) -> str:
        return f"GitHubActionsProvider({self.http.base_url!r}, {self.repo_path})"

    def close(self) -> None:
        self.http.close()

    @staticmethod
    def is_tag_run(data: Any, tag: str, commit_sha: str) -> bool:
        return (
            isinstance(data, dict)
            and data.get("head_sha") == commit_sha
            and data.get("event") == "push"
            and data.get("head_branch") == tag
        )

    def find_tag_run(self, tag: str, commit_sha: str) -> CIRun | None:
        path = f"{self.repo_path}/actions/runs"
        params = {"event": "push", "head_sha": commit_sha}
        runs = self.http.paginate(path, params=params, items_key="workflow_runs", limit_param="per_page",
                                  limit=100, max_pages=10)
        for item in runs:
            if self.is_tag_run(item, tag, commit_sha):
                return actions_run(item, tag=tag)
        return None

    def get_run(self, run_id: str) -> CIRun:
        path = f"{self.repo_path}/actions/runs/{segment(run_id)}"
        response = self.http.request("GET", path)
        data = decode_json(self.http, "GET", path, response)
        return actions_run(data, tag=data.get("head_branch") if data.get("event") == "push" else None,
                           actor_fields=("triggering_actor", "actor"))

    def triggered_run(self, run_id: str) -> CIRun:
        """Read through this repository's path, so a run of another repository is a 404 here."""
        return self.get_run(run_id)

    def fetch_artifact_manifest(self, run: CIRun) -> ArtifactManifest:
        return fetch_artifact_zip_manifest(
            self.http,
            run=run,
            list_path=f"{self.repo_path}/actions/runs/{segment(run.id)}/artifacts",
            zip_path=f"{self.repo_path}/actions/artifacts/{{id}}/zip",
            name=self.artifact_name,
            items_key="artifacts",
            expired_statuses=(404, 410),
        )
