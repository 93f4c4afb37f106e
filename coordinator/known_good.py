"""The last known-good release of an environment, from the audit trail: where a rollback goes.

Why not the host's own "previous" release: it is only what ran there before the current one,
and that need not be good. A release whose verification never ran (its command was killed,
its record lost) becomes "previous" as soon as the next release moves in; rolling that one
back would restore a release nobody verified. The audit trail knows which release last
passed `verify` on the environment (`deploy.verified`), and which digests failed there after.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coordinator.context import Context


@dataclass(frozen=True)
class KnownGood:
    version: str
    digest: str

    def rollback_vars(self, image: str, *, prefix: str) -> dict[str, Any]:
        """The explicit rollback target in the playbook's own names (`rollback_` for rollback.yml,
        `docker_release_rollback_` for the rescue inside deploy.yml)."""
        return {f"{prefix}digest": self.digest, f"{prefix}version": self.version, f"{prefix}image": image}


def last_known_good(ctx: Context, environment: str, bad_digest: str) -> KnownGood | None:
    """The newest release verified on `environment` that is not `bad_digest` and did not fail
    there afterwards; None when the trail has none (then the host's previous release is all there is)."""
    from coordinator.audit import AuditEvent

    try:
        records = ctx.audit.records()
    except Exception as exc:  # noqa: BLE001 - a trail that cannot be read (database down) never stops a rollback
        ctx.out.warn(f"last verified release of {environment} unknown ({exc}): going back to each host's "
                     "previous release")
        return None
    failed_later: set[str] = set()
    for record in reversed(records):
        if record.environment != environment:
            continue
        digest = str(record.data.get("digest") or "")
        if record.event is AuditEvent.DEPLOY_FAILED:
            failed_later.add(digest)
        elif (record.event is AuditEvent.DEPLOY_VERIFIED and record.version and digest
              and digest != bad_digest and digest not in failed_later):
            return KnownGood(version=record.version, digest=digest)
    return None
