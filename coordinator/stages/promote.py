"""Stage 6, promote: deploy the approved digest to production, and nothing else.

The approval is checked against the artifact again right before the deploy, an intent is
persisted before the playbook starts (so a crash mid-deploy is visible on resume), and a
failed deploy or health check rolls production back to the previous digest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from coordinator.context import Context
from coordinator.errors import DigestFailedBefore, GateRefused
from coordinator.release import Release
from coordinator.stages.approve import approvals_required, counted_at_gate
from coordinator.stages.deploy import (
    deploy_environment,
    drop_lock,
    fail_first_release,
    failure_reason,
    removed_first_release,
    rollback_environment,
)

if TYPE_CHECKING:
    from coordinator.ansible import PlaybookResult

MARKED_BAD_ON_HOST = "is marked bad on this host"
"""How release_host words its refusal of a digest that failed there before."""


def run_promote(ctx: Context, release: Release) -> None:
    from coordinator.audit import AuditEvent

    assert release.build is not None
    environment = ctx.config.promote_to
    counted = counted_at_gate(ctx, release)
    if len(counted) < approvals_required(ctx):
        raise GateRefused(
            f"no valid approval for {release.tag} at {release.build.digest} (commit {release.commit_sha}, "
            f"run {release.build.run_id}): approve this exact artifact first"
        )
    release.gate_counted = dict(counted)  # verify audits the same list, however long it takes
    if not ctx.force:
        refuse_failed_digest(ctx, release, environment)
    ctx.audit.append(AuditEvent.DEPLOY_STARTED, operator=ctx.operator, release_id=release.id, version=release.version,
                     environment=environment, outcome="started",
                     data={"digest": release.build.digest, "commit": release.commit_sha or "", "run_id": release.build.run_id,
                           "approved_by": [name for name, _ in counted]})
    # deploy.yml takes the lock and keeps it when anything fails, so the rollback runs under it.
    result = deploy_environment(ctx, release, environment)
    if not result.ok:
        refused_by_hosts(ctx, release, environment, result)
        if removed_first_release(result):
            fail_first_release(ctx, release, environment, result)
        rollback_environment(ctx, release, environment, failure_reason(result))
    ctx.out.info(f"{environment}: {release.build.reference} on {', '.join(sorted(result.hosts))}")


def refuse_failed_digest(ctx: Context, release: Release, environment: str) -> None:
    """No automatic second try: a digest the audit trail saw fail on `environment` needs --force."""
    from coordinator.audit import AuditEvent

    assert release.build is not None
    digest = release.build.digest
    for record in reversed(ctx.audit.records()):
        if (record.event is AuditEvent.DEPLOY_FAILED and record.environment == environment
                and record.data.get("digest") == digest):
            raise DigestFailedBefore(
                f"{digest} ({release.tag}) already failed in {environment} at {record.ts:%Y-%m-%d %H:%M:%S} UTC "
                f"({record.data.get('reason') or record.outcome}): not deployed again. Release a new version, or "
                f"`coordinator resume {release.version} --force --reason TEXT` to try this digest once more")


def refused_by_hosts(ctx: Context, release: Release, environment: str, result: "PlaybookResult") -> None:
    """The hosts refused the digest as marked bad (nothing changed): give the lock back and say so."""
    refused = sorted(host for host, data in result.reported.items() if MARKED_BAD_ON_HOST in str(data.get("error") or ""))
    if not refused:
        return
    assert release.build is not None
    drop_lock(ctx, release, environment)
    raise DigestFailedBefore(
        f"{environment}: {', '.join(refused)} refused {release.build.digest} ({release.tag}): {failure_reason(result)}. "
        f"Nothing was changed. Release a new version, or `coordinator resume {release.version} --force --reason TEXT`")
