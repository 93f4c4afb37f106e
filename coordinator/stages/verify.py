"""Stage 7, verify: every production host serves /health and /version with the approved digest.

The deploy playbook waits for health host by host and, after its last batch, checks every
host of the earlier batches again. When that run happened in this process its final check
is the verification; a resumed release runs verify.yml instead, since time has passed.
Failure rolls back to the previous digest.
"""

from __future__ import annotations

from coordinator.context import Context
from coordinator.release import Release
from coordinator.stages.approve import counted_at_gate
from coordinator.stages.deploy import drop_lock, failure_reason, rollback_environment, verify_environment


def run_verify(ctx: Context, release: Release) -> None:
    from coordinator.audit import AuditEvent

    assert release.build is not None
    environment = ctx.config.promote_to
    result = ctx.checked_by_deploy.get(environment)
    if result is not None and all(data.get("final_check") for data in result.reported.values()):
        ctx.out.info(f"{environment}: every host passed deploy.yml's check after its last batch")
    else:
        result = verify_environment(ctx, release, environment)
    if not result.ok:
        rollback_environment(ctx, release, environment, failure_reason(result))
    mismatched = [host for host, state in result.host_states().items()
                  if state.digest is not None and state.digest != release.build.digest]
    if mismatched:
        rollback_environment(ctx, release, environment, f"running digest differs from the approved one on {', '.join(mismatched)}")
    drop_lock(ctx, release, environment)
    deployment = release.deployments[environment]
    deployment.outcome = "verified"
    previous = sorted({s.previous_version for s in deployment.hosts.values() if s.previous_version})
    # What the gate counted when it let this promotion through, not every record that matches the artifact.
    counted = list(release.gate_counted.items()) or counted_at_gate(ctx, release)
    ctx.audit.append(AuditEvent.DEPLOY_VERIFIED, operator=ctx.operator, release_id=release.id, version=release.version,
                     environment=environment, outcome="verified",
                     data={"digest": release.build.digest, "commit": release.commit_sha or "",
                           "commit_time": release.commit_time.isoformat() if release.commit_time else "",
                           "run_id": release.build.run_id, "run_url": release.build.run_url,
                           "hosts": sorted(result.hosts), "previous_versions": previous,
                           "approved_by": [name for name, _ in counted],
                           "confirmed_at": [at.isoformat() for _, at in counted]})
    ctx.out.success(f"{environment} verified: {release.tag} ({release.build.digest}) healthy on {len(result.hosts)} host(s)")
