"""Talking to the forge (Gitea first, Forgejo second): statuses, tags, issues, releases.

What callers import is listed here; `_http` (transport, retries, errors) is internal.
"""

from coordinator.errors import ForgeError
from coordinator.forge._http import RetryPolicy
from coordinator.forge.client import ForgejoClient, GiteaClient, LabelMissing, ReleaseExists, api_root
from coordinator.forge.models import (
    CombinedStatus,
    CommitStatus,
    GitRef,
    Issue,
    Label,
    Milestone,
    Release,
    ReleaseAsset,
    StatusState,
    Tag,
)

__all__ = [
    "CombinedStatus",
    "CommitStatus",
    "ForgeError",
    "ForgejoClient",
    "GiteaClient",
    "GitRef",
    "Issue",
    "Label",
    "LabelMissing",
    "Milestone",
    "Release",
    "ReleaseAsset",
    "ReleaseExists",
    "RetryPolicy",
    "StatusState",
    "Tag",
    "api_root",
]
