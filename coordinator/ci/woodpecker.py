"""Woodpecker CI: pipelines of the tag push, and a manifest published at `ci.manifest_url`.

API under `{host}/api` with a Bearer token. The repository is looked up once by
owner/name; pipelines are filtered by `event=tag&ref=refs/tags/<tag>`, but `ref` is a
*contains* match there, so `ref` and `commit` are checked exactly here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from coordinator.ci._manifest_url import ManifestURL
from coordinator.ci.base import ArtifactManifest, CIRun, RunConclusion, RunStatus
from coordinator.errors import BuildFailed, ConfigError, ForgeError, IdentityRefused
from coordinator.forge._http import HttpSession, RetryPolicy, check_token, decode_json, segment

_STATUSES: dict[str, tuple[RunStatus, RunConclusion | None]] = {
    "pending": (RunStatus.QUEUED, None),
    "blocked": (RunStatus.QUEUED, None),  # waiting for someone to approve it
    "running": (RunStatus.IN_PROGRESS, None),
    "success": (RunStatus.COMPLETED, RunConclusion.SUCCESS),
    "failure": (RunStatus.COMPLETED, RunConclusion.FAILURE),
    "error": (RunStatus.COMPLETED, RunConclusion.FAILURE),
    "killed": (RunStatus.COMPLETED, RunConclusion.CANCELLED),
    "declined": (RunStatus.COMPLETED, RunConclusion.CANCELLED),
    "skipped": (RunStatus.COMPLETED, RunConclusion.SKIPPED),
}


def _unix_time(value: Any) -> datetime | None:
    """Woodpecker sends Unix seconds, 0 when unset."""
    if isinstance(value, int | float) and value > 0:
        return datetime.fromtimestamp(value, tz=timezone.utc)
    return None


class WoodpeckerProvider:
    """Pipelines of one repository on a Woodpecker server."""

    kind = "woodpecker"
    run_id_env: str | None = "CI_PIPELINE_NUMBER"

    def __init__(
        self,
        base_url: str,
        owner: str,
        repo: str,
        token: str,
        *,
        manifest_url: str | None,
        timeout: float = 10.0,
        ca_file: Path | None = None,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        token_source: str | None = None,
    ) -> None:
        if not manifest_url:
            raise ConfigError("ci.manifest_url is required for woodpecker: where the pipeline publishes artifact-manifest.json")
        self.manifest_url = ManifestURL(manifest_url)
        self.host = str(base_url).rstrip("/").removesuffix("/api")
        self.owner = owner
        self.repo = repo
        self.http = HttpSession(
            self.host + "/api", service="Woodpecker",
            auth_header=f"Bearer {check_token(token, service='Woodpecker')}",
            timeout=timeout, ca_file=ca_file, transport=transport, retry=retry, sleep=sleep, token_source=token_source,
        )
        self._repo_id: int | None = None

    def __repr__(self) -> str:
        return f"WoodpeckerProvider({self.host!r}, {self.owner}/{self.repo})"

    def close(self) -> None:
        self.http.close()

    def repo_id(self) -> int:
        """Woodpecker's numeric id for owner/name (looked up once)."""
        if self._repo_id is None:
            path = f"/repos/lookup/{segment(self.owner)}/{segment(self.repo)}"
            response = self.http.request("GET", path, ok=(200, 404))
            if response.status_code == 404:
                raise ForgeError(
                    f"Woodpecker does not know {self.owner}/{self.repo}: activate the repository in Woodpecker "
                    "or set ci.repo", endpoint=f"GET /api{path}", status=404,
                )
            data = decode_json(self.http, "GET", path, response)
            self._repo_id = int(data["id"])
        return self._repo_id

    def _run(self, data: dict[str, Any]) -> CIRun:
        word = str(data.get("status") or "").lower()
        # An unknown word is never success: keep waiting rather than guess.
        status, conclusion = _STATUSES.get(word, (RunStatus.QUEUED, None))
        number = int(data["number"])
        ref = str(data.get("ref") or "")
        return CIRun(
            id=str(number),
            status=status,
            conclusion=conclusion,
            html_url=f"{self.host}/repos/{self.repo_id()}/pipeline/{number}",
            head_sha=str(data.get("commit") or ""),
            tag=ref.removeprefix("refs/tags/") if ref.startswith("refs/tags/") else None,
            number=number,
            started_at=_unix_time(data.get("started")),
            completed_at=_unix_time(data.get("finished")),
            actor=str(data.get("sender") or "").strip(),
        )

    def find_tag_run(self, tag: str, commit_sha: str) -> CIRun | None:
        ref = f"refs/tags/{tag}"
        path = f"/repos/{self.repo_id()}/pipelines"
        params = {"event": "tag", "ref": ref}
        for item in self.http.paginate(path, params=params, limit_param="perPage", limit=50, max_pages=20):
            if isinstance(item, dict) and item.get("ref") == ref and item.get("commit") == commit_sha:
                return self._run(item)
        return None

    def get_run(self, run_id: str) -> CIRun:
        path = f"/repos/{self.repo_id()}/pipelines/{segment(run_id)}"
        response = self.http.request("GET", path)
        return self._run(decode_json(self.http, "GET", path, response))

    def triggered_run(self, run_id: str) -> CIRun:
        """The pipeline read under this repository's id (another repository's number is not found
        here); Woodpecker names who triggered it `sender`: without one there is nobody to name."""
        run = self.get_run(run_id)
        if not run.actor:
            raise IdentityRefused(f"Woodpecker pipeline {run_id} names no sender: the releaser cannot be read from "
                                  "this CI; run `coordinator release` as yourself instead of from the pipeline")
        return run

    def fetch_artifact_manifest(self, run: CIRun) -> ArtifactManifest:
        if not run.tag:
            raise BuildFailed(f"Woodpecker pipeline {run.id} is not a tag pipeline: cannot fill {{tag}} in ci.manifest_url")
        return self.manifest_url.fetch(self.http, tag=run.tag, run=run)
