"""CI providers behind one interface, and the one loop that waits for a tag's run.

    provider = make_provider("gitea-actions", base_url=..., owner=..., repo=..., token=...)
    run = wait_for_run(provider, "v1.2.0", sha, timeout_s=1800, poll_interval_s=2, on_progress=show)
    manifest = provider.fetch_artifact_manifest(run)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from coordinator.ci.base import (
    DEFAULT_ARTIFACT_NAME,
    MANIFEST_FILE,
    ArtifactManifest,
    CIProvider,
    CIRun,
    RunConclusion,
    RunStatus,
    wait_for_run,
)
from coordinator.ci.commit_status import CommitStatusProvider
from coordinator.ci.forgejo_actions import ForgejoActionsProvider
from coordinator.ci.gitea_actions import GiteaActionsProvider
from coordinator.ci.github_actions import GitHubActionsProvider
from coordinator.ci.woodpecker import WoodpeckerProvider
from coordinator.errors import ConfigError
from coordinator.forge._http import RetryPolicy
from coordinator.forge.client import GiteaClient

PROVIDER_KINDS = ("gitea-actions", "forgejo-actions", "commit-status", "woodpecker", "github-actions")


def make_provider(
    kind: str,
    *,
    base_url: object,
    owner: str,
    repo: str,
    token: str,
    artifact_name: str = DEFAULT_ARTIFACT_NAME,
    manifest_url: str | None = None,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
    ca_file: Path | str | None = None,
    status_context: str | None = None,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    token_source: str | None = None,
) -> CIProvider:
    """The provider for `kind` (ci.provider). `base_url` is the forge for the first three
    kinds, the Woodpecker server, or the GitHub API root. `token_source` says where the
    token came from (a variable or file name, never the value) for a refused-token error."""
    url = str(base_url).rstrip("/")
    ca = Path(ca_file) if ca_file else None
    if kind in ("gitea-actions", "forgejo-actions", "commit-status"):
        client = GiteaClient(url, owner, repo, token, timeout=timeout, ca_file=ca, transport=transport,
                             retry=retry, sleep=sleep, token_source=token_source)
        if kind == "gitea-actions":
            return GiteaActionsProvider(client, artifact_name=artifact_name)
        if kind == "forgejo-actions":
            return ForgejoActionsProvider(client, artifact_name=artifact_name)
        return CommitStatusProvider(client, artifact_name=artifact_name, manifest_url=manifest_url,
                                    status_context=status_context)
    if kind == "woodpecker":
        return WoodpeckerProvider(url, owner, repo, token, manifest_url=manifest_url, timeout=timeout, ca_file=ca,
                                  transport=transport, retry=retry, sleep=sleep, token_source=token_source)
    if kind == "github-actions":
        return GitHubActionsProvider(url, owner, repo, token, artifact_name=artifact_name, timeout=timeout, ca_file=ca,
                                     transport=transport, retry=retry, sleep=sleep, token_source=token_source)
    raise ConfigError(f"ci.provider {kind!r} is unknown: use one of {', '.join(PROVIDER_KINDS)}")


__all__ = [
    "MANIFEST_FILE",
    "PROVIDER_KINDS",
    "ArtifactManifest",
    "CIProvider",
    "CIRun",
    "CommitStatusProvider",
    "ForgejoActionsProvider",
    "GitHubActionsProvider",
    "GiteaActionsProvider",
    "RunConclusion",
    "RunStatus",
    "WoodpeckerProvider",
    "make_provider",
    "wait_for_run",
]
