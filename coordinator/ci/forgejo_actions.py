"""Forgejo Actions: its own API shapes (`commit_sha`, status words that include the
conclusion, artifacts as a bare array, the zip answered 200 directly)."""

from __future__ import annotations

from typing import Any

from coordinator.ci._actions import ForgeActionsProvider, actions_run
from coordinator.ci.base import CIRun


def is_tag_run(data: Any, tag: str, commit_sha: str) -> bool:
    """A push run of this commit whose ref is the tag (`prettyref` is the short ref name)."""
    if not isinstance(data, dict) or data.get("commit_sha") != commit_sha:
        return False
    if (data.get("event") or "push") != "push":
        return False
    ref = data.get("prettyref") or data.get("ref") or ""
    return ref in (tag, f"refs/tags/{tag}")


class ForgejoActionsProvider(ForgeActionsProvider):
    """CI runs of Forgejo Actions, read through Forgejo's API."""

    kind = "forgejo-actions"
    artifacts_items_key = None  # Forgejo answers a bare array

    @staticmethod
    def _run(data: Any, tag: str | None = None) -> CIRun:
        return actions_run(data, tag=tag, sha_field="commit_sha", number_field="index_in_repo",
                           actor_fields=("trigger_user",))

    def find_tag_run(self, tag: str, commit_sha: str) -> CIRun | None:
        path = f"{self.client.repo_path}/actions/runs"
        params = {"event": "push", "head_sha": commit_sha}
        candidates = [item for item in self.client.http.paginate(path, params=params, items_key="workflow_runs")
                      if is_tag_run(item, tag, commit_sha)]
        if not candidates:
            return None
        return self._run(max(candidates, key=lambda item: int(item.get("id") or 0)), tag)
