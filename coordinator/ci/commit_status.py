"""Any CI that reports commit statuses to the forge (Woodpecker, Drone, Jenkins …).

The "run" is the combined status of the tag's commit, asked for by full sha (Gitea
resolves a name as a branch first). No statuses means no run yet, never green. The
manifest comes from `ci.manifest_url`, else from an asset of the tag's forge release.
"""

from __future__ import annotations

from coordinator.ci._manifest_url import ManifestURL
from coordinator.ci.base import (
    DEFAULT_ARTIFACT_NAME,
    MANIFEST_FILE,
    ArtifactManifest,
    CIRun,
    RunConclusion,
    RunStatus,
    manifest_from_bytes,
)
from coordinator.errors import BuildFailed, IdentityRefused
from coordinator.forge.client import GiteaClient
from coordinator.forge.models import CombinedStatus, CommitStatus, StatusState, judge_state

_BY_STATE = {
    StatusState.PENDING: (RunStatus.IN_PROGRESS, None),
    StatusState.SUCCESS: (RunStatus.COMPLETED, RunConclusion.SUCCESS),
    StatusState.FAILURE: (RunStatus.COMPLETED, RunConclusion.FAILURE),
    StatusState.SKIPPED: (RunStatus.COMPLETED, RunConclusion.SKIPPED),
}


def worst_state(statuses: list[CommitStatus]) -> StatusState:
    """Combine statuses ourselves (for a context filter): any failure wins, then pending."""
    states = {judge_state(status.status) for status in statuses}
    for state in (StatusState.FAILURE, StatusState.PENDING, StatusState.SUCCESS):
        if state in states:
            return state
    return StatusState.SKIPPED if states else StatusState.NONE


class CommitStatusProvider:
    """The tag commit's combined status, read from the forge."""

    kind = "commit-status"
    run_id_env: str | None = None

    def __init__(
        self,
        client: GiteaClient,
        *,
        artifact_name: str = DEFAULT_ARTIFACT_NAME,
        manifest_url: str | None = None,
        status_context: str | None = None,
    ) -> None:
        self.client = client
        self.artifact_name = artifact_name
        self.manifest_url = ManifestURL(manifest_url) if manifest_url else None
        self.status_context = status_context
        self._tags: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"CommitStatusProvider({self.client!r})"

    def close(self) -> None:
        self.client.close()

    def _run(self, sha: str, combined: CombinedStatus) -> CIRun | None:
        statuses = combined.statuses
        if self.status_context:
            statuses = [s for s in statuses if s.context.startswith(self.status_context)]
            state = worst_state(statuses)
        else:
            state = combined.outcome
        if state is StatusState.NONE:
            return None
        status, conclusion = _BY_STATE[state]
        links = {s.target_url for s in statuses if s.target_url}
        html_url = links.pop() if len(links) == 1 else f"{self.client.web_url}/commit/{sha}"
        return CIRun(id=sha, status=status, conclusion=conclusion, html_url=html_url, head_sha=sha,
                     tag=self._tags.get(sha))

    def find_tag_run(self, tag: str, commit_sha: str) -> CIRun | None:
        self._tags[commit_sha] = tag
        return self._run(commit_sha, self.client.combined_status(commit_sha))

    def get_run(self, run_id: str) -> CIRun:
        run = self._run(run_id, self.client.combined_status(run_id))
        if run is None:
            # Statuses seen before cannot vanish, short of a forge reset: report it plainly.
            return CIRun(id=run_id, status=RunStatus.QUEUED, head_sha=run_id, tag=self._tags.get(run_id))
        return run

    def triggered_run(self, run_id: str) -> CIRun:
        """Commit statuses are no run record: they name no person who started anything."""
        raise IdentityRefused(f"ci.provider commit-status keeps no run records, so CI run {run_id} names nobody: "
                              "run `coordinator release` as yourself, or use a provider with runs (gitea-actions, "
                              "forgejo-actions, github-actions, woodpecker)")

    def fetch_artifact_manifest(self, run: CIRun) -> ArtifactManifest:
        tag = run.tag or self._tags.get(run.head_sha)
        if tag is None:
            raise BuildFailed(f"cannot tell which tag commit {run.head_sha[:12]} was built for: find the run by tag first")
        if self.manifest_url is not None:
            return self.manifest_url.fetch(self.client.http, tag=tag, run=run)
        release = self.client.release_by_tag(tag)
        if release is None:
            raise BuildFailed(
                f"no forge release for {tag} to read the artifact manifest from: have CI attach "
                f"{MANIFEST_FILE} to the release, or set ci.manifest_url"
            )
        wanted = (f"{self.artifact_name}.json", f"{self.artifact_name}.zip", self.artifact_name, MANIFEST_FILE)
        assets = {asset.name: asset for asset in release.assets}
        asset = next((assets[name] for name in wanted if name in assets), None)
        if asset is None:
            raise BuildFailed(
                f"release {tag} has no asset named {wanted[0]} or {wanted[1]}: have CI attach the manifest, "
                "or set ci.manifest_url"
            )
        data = self.client.download(asset.browser_download_url)
        return manifest_from_bytes(data, source=f"release asset {asset.name} of {tag}", run=run)
