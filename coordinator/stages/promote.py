"""Stage 6, promote: deploy the approved digest to production, and nothing else.

The approval is checked against the artifact again right before the deploy, an intent is
persisted before the playbook starts (so a crash mid-deploy is visible on resume), and a
failed deploy or health check rolls production back to the previous digest.
"""

from __future__ import annotations

from coordinator.context import Context
from coordinator.errors import GateRefused
from coordinator.release import Release
from coordinator.stages.approve import approvals_missing
from coordinator.stages.deploy import (
    deploy_environment,
    fail_first_release,
    failure_reason,
    removed_first_release,
    rollback_environment,
)


def run_promote(ctx: Context, release: Release) -> None:
    from coordinator.audit import AuditEvent

    assert release.build is not None
    environment = ctx.config.promote_to
    if approvals_missing(ctx, release):
        raise GateRefused(
            f"no valid approval for {release.tag} at {release.build.digest} (commit {release.commit_sha}, "
            f"run {release.build.run_id}): approve this exact artifact first"
        )
    ctx.audit.append(AuditEvent.DEPLOY_STARTED, operator=ctx.operator, release_id=release.id, version=release.version,
                     environment=environment, outcome="started",
                     data={"digest": release.build.digest, "commit": release.commit_sha or "", "run_id": release.build.run_id,
                           "approved_by": [a.operator for a in release.valid_approvals()]})
    # deploy.yml takes the lock and keeps it when anything fails, so the rollback runs under it.
    result = deploy_environment(ctx, release, environment)
    if not result.ok:
        if removed_first_release(result):
            fail_first_release(ctx, release, environment, result)
        rollback_environment(ctx, release, environment, failure_reason(result))
    ctx.out.info(f"{environment}: {release.build.reference} on {', '.join(sorted(result.hosts))}")
