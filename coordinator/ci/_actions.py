"""What Gitea, Forgejo and GitHub Actions have in common: run words and artifact zips."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from coordinator.ci.base import DEFAULT_ARTIFACT_NAME, ArtifactManifest, CIRun, RunConclusion, RunStatus, manifest_from_zip
from coordinator.errors import BuildFailed, ForgeError
from coordinator.forge._http import HttpSession, decode_json, segment
from coordinator.forge.models import unset_time_to_none

if TYPE_CHECKING:
    from coordinator.forge.client import GiteaClient

_QUEUED = frozenset({"queued", "waiting", "pending", "requested", "blocked", "unknown"})
_RUNNING = frozenset({"in_progress", "running"})
_CONCLUSIONS = {
    "success": RunConclusion.SUCCESS,
    "failure": RunConclusion.FAILURE,
    "cancelled": RunConclusion.CANCELLED,
    "skipped": RunConclusion.SKIPPED,
    "timed_out": RunConclusion.TIMED_OUT,
}


def conclusion_of(word: str | None) -> RunConclusion:
    """Known conclusions map 1:1; anything else (neutral, stale, startup_failure …) is a failure."""
    return _CONCLUSIONS.get((word or "").lower(), RunConclusion.FAILURE)


def status_of(status: str | None, conclusion: str | None) -> tuple[RunStatus, RunConclusion | None]:
    """(status, conclusion) from an Actions run; a status word that is itself a conclusion
    (Forgejo says `success` where Gitea says `completed` + `success`) completes the run."""
    word = (status or "").lower()
    if word == "completed":
        return RunStatus.COMPLETED, conclusion_of(conclusion)
    if word in _CONCLUSIONS or word == "failed":
        return RunStatus.COMPLETED, conclusion_of(word if word != "failed" else "failure")
    if word in _RUNNING:
        return RunStatus.IN_PROGRESS, None
    return RunStatus.QUEUED, None


def login_of(*users: Any) -> str:
    """The first user object's login (`trigger_actor` before `actor`): who triggered the run."""
    for user in users:
        if isinstance(user, dict) and isinstance(user.get("login"), str) and user["login"].strip():
            return str(user["login"]).strip()
    return ""


def actions_run(
    data: Any, *, tag: str | None = None, sha_field: str = "head_sha", number_field: str = "run_number",
    actor_fields: tuple[str, ...] = ("trigger_actor", "actor"),
) -> CIRun:
    """A CIRun from a Gitea/GitHub-shaped workflow run (Forgejo passes its own field names).

    The person is `trigger_actor` (who started this attempt: a re-run by someone else is theirs)
    before `actor` (who caused the first run); GitHub names the first `triggering_actor`."""
    status, conclusion = status_of(data.get("status"), data.get("conclusion"))
    repository = data.get("repository")
    return CIRun(
        id=str(data["id"]),
        status=status,
        conclusion=conclusion,
        html_url=data.get("html_url") or "",
        head_sha=data.get(sha_field) or "",
        tag=tag,
        number=data.get(number_field),
        started_at=unset_time_to_none(data.get("started_at") or data.get("run_started_at") or data.get("started")),
        completed_at=unset_time_to_none(data.get("completed_at") or data.get("stopped")),
        actor=login_of(*(data.get(name) for name in actor_fields)),
        repository=str(repository.get("full_name") or "") if isinstance(repository, dict) else "",
    )


def fetch_artifact_zip_manifest(
    http: HttpSession,
    *,
    run: CIRun,
    list_path: str,
    zip_path: str,
    name: str,
    items_key: str | None,
    expired_statuses: tuple[int, ...] = (404,),
) -> ArtifactManifest:
    """List the run's artifacts, pick `name`, download its zip (following a 302), parse it.

    `zip_path` has one `{id}` placeholder. An expired artifact, or none of that name, is a
    BuildFailed: waiting will not bring it back, re-running the tag's CI job will.
    """
    response = http.request("GET", list_path, params={"name": name})
    data = decode_json(http, "GET", list_path, response)
    items = data.get(items_key) if items_key and isinstance(data, dict) else data
    artifacts = [item for item in (items or []) if isinstance(item, dict) and item.get("name") == name]
    if not artifacts:
        raise BuildFailed(
            f"CI run {run.id} has no artifact named {name!r} ({run.html_url or 'no URL'}): "
            "the tag's CI job must upload it, or set ci.artifact_name"
        )
    artifact = max(artifacts, key=lambda item: int(item.get("id") or 0))
    if artifact.get("expired"):
        raise BuildFailed(f"artifact {name!r} of CI run {run.id} has expired: re-run the tag's CI job to rebuild it")
    path = zip_path.format(id=segment(artifact["id"]))
    try:
        archive = http.request("GET", path, ok=(200,), follow_redirects=True)
    except ForgeError as exc:
        if exc.status in expired_statuses:
            raise BuildFailed(
                f"artifact {name!r} of CI run {run.id} is gone (HTTP {exc.status}, expired or deleted): "
                "re-run the tag's CI job to rebuild it"
            ) from None
        raise
    return manifest_from_zip(archive.content, source=f"artifact {name!r} of CI run {run.id}", run=run)


class ForgeActionsProvider:
    """Shared by the providers that read runs through the forge's own API client.

    Subclasses say how a run object is read (`_run`) and where the artifact list sits in
    the artifacts answer (`artifacts_items_key`; None for a bare array).
    """

    kind = ""
    artifacts_items_key: str | None = "artifacts"
    run_id_env: str | None = "GITHUB_RUN_ID"  # Gitea and Forgejo Actions set GitHub's variables too

    def __init__(self, client: "GiteaClient", *, artifact_name: str = DEFAULT_ARTIFACT_NAME) -> None:
        self.client = client
        self.artifact_name = artifact_name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.client!r})"

    def close(self) -> None:
        self.client.close()

    @staticmethod
    def _run(data: Any, tag: str | None = None) -> CIRun:
        return actions_run(data, tag=tag)

    def get_run(self, run_id: str) -> CIRun:
        path = f"{self.client.repo_path}/actions/runs/{segment(run_id)}"
        response = self.client.http.request("GET", path)
        return self._run(decode_json(self.client.http, "GET", path, response))

    def triggered_run(self, run_id: str) -> CIRun:
        """Read through this repository's path, so a run of another repository is a 404 here."""
        return self.get_run(run_id)

    def fetch_artifact_manifest(self, run: CIRun) -> ArtifactManifest:
        repo = self.client.repo_path
        return fetch_artifact_zip_manifest(
            self.client.http,
            run=run,
            list_path=f"{repo}/actions/runs/{segment(run.id)}/artifacts",
            zip_path=f"{repo}/actions/artifacts/{{id}}/zip",
            name=self.artifact_name,
            items_key=self.artifacts_items_key,
        )
