"""Gitea Actions (1.25+): the tag's run found by commit, followed, and its artifact read."""

from __future__ import annotations

from typing import Any

from coordinator.ci._actions import ForgeActionsProvider, actions_run
from coordinator.ci.base import CIRun


def is_tag_run(data: Any, commit_sha: str) -> bool:
    """A push run of exactly this commit that is not a branch push.

    Gitea has no tag filter: `branch=` becomes refs/heads/…, and tag runs omit
    `head_branch`, so "push event, this sha, no head_branch" is what marks a tag run.
    """
    return (
        isinstance(data, dict)
        and data.get("head_sha") == commit_sha
        and (data.get("event") or "push") == "push"
        and not data.get("head_branch")
    )


class GiteaActionsProvider(ForgeActionsProvider):
    """CI runs of Gitea's built-in Actions, read through the forge API."""

    kind = "gitea-actions"

    def find_tag_run(self, tag: str, commit_sha: str) -> CIRun | None:
        path = f"{self.client.repo_path}/actions/runs"
        params = {"event": "push", "head_sha": commit_sha}
        # Newest first: the first tag run for the commit is the one to follow.
        for item in self.client.http.paginate(path, params=params, items_key="workflow_runs"):
            if is_tag_run(item, commit_sha):
                return actions_run(item, tag=tag)
        return None
