"""Is VERSION already out there? What runs in production now? Asked of the world, not of
this machine's records, because in a team the release may have been done elsewhere.

- `live_in(ctx, env)`: what each host of `env` runs, from status.yml (read-only);
- `released_elsewhere(ctx, version)`: without a release record, a version counts as
  released when the forge has a release for its tag and every production host runs the
  digest that release names (the release notes carry `image@digest`).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from coordinator.context import Context
from coordinator.errors import CoordinatorError
from coordinator.versioning import tag_for

_DIGEST_IN_NOTES = re.compile(r"@(sha256:[0-9a-f]{64})")


@dataclass(frozen=True)
class Live:
    """What one environment runs now, host by host; `error` when status.yml failed."""

    versions: dict[str, str | None]
    digests: dict[str, str | None]
    error: str | None = None

    def summary(self) -> str | None:
        """'1.1.0' when every host agrees, 'prod1 1.1.0, prod2 1.0.0' when not, None when nothing runs."""
        found = {host: version for host, version in self.versions.items() if version}
        if not found:
            return None
        if len(set(found.values())) == 1 and len(found) == len(self.versions):
            return next(iter(found.values()))
        return ", ".join(f"{host} {version or 'nothing'}" for host, version in sorted(self.versions.items()))


def live_in(ctx: Context, environment: str, cancel: threading.Event | None = None) -> Live:
    from coordinator.plan import environment_state

    state = environment_state(ctx, environment, None, cancel=cancel)
    return Live({h.host: h.running_version for h in state.hosts}, {h.host: h.running_digest for h in state.hosts},
                state.error)


def released_elsewhere(ctx: Context, version: str) -> str | None:
    """A sentence saying where VERSION is already released, or None if it is not."""
    tag = tag_for(version)
    try:
        published = ctx.forge.release_by_tag(tag)
    except CoordinatorError:
        return None  # best effort: validate reports an unreachable forge in its own words
    if published is None:
        return None
    match = _DIGEST_IN_NOTES.search(published.body)
    if match is None:
        return None  # a release made by hand: no digest to compare, so do not assume
    digest = match.group(1)
    environment = ctx.config.promote_to
    try:
        live = live_in(ctx, environment)
    except CoordinatorError:
        return None
    if live.error or not live.digests or any(found != digest for found in live.digests.values()):
        return None
    hosts = ", ".join(sorted(live.digests))
    return (f"{tag} is already released: forge release {published.html_url or tag} exists and {environment} "
            f"({hosts}) runs its digest {digest}; nothing to do")
