"""The sandbox's one error class: a part of the local world cannot be brought up or down."""

from __future__ import annotations

from coordinator.errors import CoordinatorError


class SandboxError(CoordinatorError):
    """A sandbox step failed; the message names the part, what happened and where to look."""
