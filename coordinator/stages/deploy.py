"""Deploying to an environment and rolling it back: the Ansible side of stage/promote/verify.

The coordinator decides what to deploy (image by digest, version, who) and the playbooks
do it; the playbooks report per host what runs there now, and this module turns that into
the release record and the audit trail.
"""

from __future__ import annotations

import hashlib
from typing import Any

from coordinator.ansible import PlaybookResult, run_playbook
from coordinator.context import Context
from coordinator.errors import DeployFailed, LockHeld, RollbackFailed, RolledBack
from coordinator.release import Deployment, Release, ReleaseStatus, utcnow


def merge_host_states(deployment: Deployment, result: PlaybookResult) -> None:
    """Fold what a playbook reported into the record; a field it did not report is kept."""
    for host, reported in result.host_states().items():
        known = deployment.hosts.get(host)
        if known is None:
            deployment.hosts[host] = reported
            continue
        update = {key: value for key, value in reported.model_dump().items() if value is not None}
        deployment.hosts[host] = known.model_copy(update=update)


def _playbook(ctx: Context, release: Release, environment: str, playbook: str, extravars: dict[str, Any]) -> PlaybookResult:
    env = ctx.config.environments[environment]
    ctx.out.step(f"{playbook} on {environment} ({env.inventory})")
    return run_playbook(
        ansible_dir=ctx.config.ansible_dir,
        playbook=playbook,
        inventory=env.inventory,
        extravars=extravars,
        ident=f"{release.id}-{environment}-{playbook.removesuffix('.yml')}",
        timeout_s=env.playbook_timeout_s,
        on_progress=ctx.out.info,
        cancel=ctx.cancel, scratch_dir=ctx.config.state_dir / "runner",
    )


def health_vars(ctx: Context, release: Release, environment: str) -> dict[str, Any]:
    env = ctx.config.environments[environment]
    assert release.build is not None
    return {
        "release_health_expected_version": release.version,
        "release_health_expected_digest": release.build.digest,
        "release_health_timeout": int(env.health_timeout_s),
        "release_health_interval": env.health_interval_s,
    }


def lock_id_for(release: Release, environment: str) -> str:
    """Deterministic per release and environment, so a resumed run re-enters its own lock."""
    seed = f"{release.id}|{release.created_at.isoformat()}|{environment}"
    return hashlib.sha256(seed.encode()).hexdigest()[:16]


def take_lock(ctx: Context, release: Release, environment: str) -> str:
    from coordinator import locks

    lock_id = lock_id_for(release, environment)
    locks.acquire(ctx, environment, lock_id=lock_id, version=release.version,
                  reason=f"release {release.tag}", release_id=release.id)
    release.deployments.setdefault(environment, Deployment(environment=environment)).lock_id = lock_id
    return lock_id


def drop_lock(ctx: Context, release: Release, environment: str) -> None:
    """Give our lock back; a failure here is reported, never turned into a failed release."""
    from coordinator import locks

    try:
        locks.release(ctx, environment, lock_id=lock_id_for(release, environment), release_id=release.id)
    except LockHeld as exc:
        ctx.out.warn(f"{exc.message} (it expires by itself)")
        return
    release.deployments.setdefault(environment, Deployment(environment=environment)).lock_id = None


def deploy_vars(ctx: Context, release: Release, environment: str) -> dict[str, Any]:
    env = ctx.config.environments[environment]
    assert release.build is not None
    extravars: dict[str, Any] = {
        "docker_release_image": release.build.image,
        "docker_release_digest": release.build.digest,
        "docker_release_version": release.version,
        "docker_release_deployed_by": ctx.operator,
        "docker_release_release_id": release.id,
        "deploy_lock_id": lock_id_for(release, environment),
        **health_vars(ctx, release, environment),
    }
    if env.serial:
        extravars["deploy_serial"] = env.serial
    return extravars


def deploy_environment(ctx: Context, release: Release, environment: str) -> PlaybookResult:
    """Run deploy.yml (deploy + per-host health) and record what each host runs now."""
    deployment = release.deployments.setdefault(environment, Deployment(environment=environment))
    deployment.started_at = deployment.started_at or utcnow()
    result = _playbook(ctx, release, environment, "deploy.yml", deploy_vars(ctx, release, environment))
    merge_host_states(deployment, result)
    deployment.outcome = "deployed" if result.ok else "failed"
    deployment.finished_at = utcnow()
    return result


def verify_environment(ctx: Context, release: Release, environment: str) -> PlaybookResult:
    """Run verify.yml: /health, /version and the running digest on every host."""
    result = _playbook(ctx, release, environment, "verify.yml", health_vars(ctx, release, environment))
    deployment = release.deployments.setdefault(environment, Deployment(environment=environment))
    merge_host_states(deployment, result)
    return result


def rollback_environment(ctx: Context, release: Release, environment: str, reason: str) -> None:
    """Restore the previous release on `environment`; always raises (RolledBack or RollbackFailed)."""
    from coordinator.audit import AuditEvent

    assert release.build is not None
    ctx.out.alarm(f"{environment} verification failed for {release.tag}: {reason}. Rolling back.")
    ctx.audit.append(AuditEvent.DEPLOY_FAILED, operator=ctx.operator, release_id=release.id, version=release.version,
                     environment=environment, outcome="failed",
                     data={"reason": reason, "digest": release.build.digest, "commit": release.commit_sha or ""})
    result = _playbook(ctx, release, environment, "rollback.yml", {
        "deploy_lock_id": lock_id_for(release, environment),
        "rollback_reason": f"{release.tag} failed verification: {reason}"[:200],
        "rollback_release_id": release.id,
        **{k: v for k, v in health_vars(ctx, release, environment).items() if k in ("release_health_timeout", "release_health_interval")},
    })
    deployment = release.deployments.setdefault(environment, Deployment(environment=environment))
    merge_host_states(deployment, result)
    deployment.finished_at = utcnow()
    restored = sorted({state.version or "?" for state in result.host_states().values()})
    if result.ok:
        deployment.outcome = "rolled_back"
        release.status = ReleaseStatus.ROLLED_BACK
        message = f"{environment}: {release.tag} failed ({reason}); rolled back to {', '.join(restored) or 'the previous release'}"
        ctx.audit.append(AuditEvent.ROLLBACK_COMPLETED, operator=ctx.operator, release_id=release.id, version=release.version,
                         environment=environment, outcome="rolled_back",
                         data={"restored_versions": restored, "hosts": sorted(result.hosts), "bad_digest": release.build.digest})
        _escalate(ctx, release, environment, reason, message, rolled_back=True, restored=restored)
        drop_lock(ctx, release, environment)
        ctx.out.alarm(message)
        release.last_error = message
        raise RolledBack(message)
    deployment.outcome = "rollback_failed"
    release.status = ReleaseStatus.ROLLBACK_FAILED
    message = (f"{environment}: {release.tag} failed ({reason}) AND the rollback failed: {result.summary()}. "
               f"Act now: see README 'Manual rollback'. The deploy lock stays held (id {lock_id_for(release, environment)})")
    ctx.audit.append(AuditEvent.ROLLBACK_FAILED, operator=ctx.operator, release_id=release.id, version=release.version,
                     environment=environment, outcome="rollback_failed", data={"reason": result.summary()})
    _escalate(ctx, release, environment, reason, message, rolled_back=False)
    ctx.out.alarm(message)
    release.last_error = message
    raise RollbackFailed(message)


def _escalate(ctx: Context, release: Release, environment: str, reason: str, message: str, *, rolled_back: bool,
              restored: list[str] | None = None) -> None:
    from coordinator.render import render

    body = render("escalation.md.j2", {
        "project": release.project, "version": release.version, "tag": release.tag,
        "environment": environment, "reason": reason, "summary": message, "rolled_back": rolled_back,
        "digest": release.build.digest if release.build else "", "hosts": sorted(release.deployments.get(environment, Deployment(environment=environment)).hosts),
        "operator": ctx.operator, "restored_versions": restored or [],
    }, override_dir=ctx.config.notify.templates_dir)
    result = ctx.notifier.escalate(f"[{release.project}] {'ROLLED BACK' if rolled_back else 'ROLLBACK FAILED'} {release.tag} on {environment}", body)
    for failure in getattr(result, "failed", []) or []:
        ctx.out.warn(f"escalation to {failure} failed")


def fail_deploy(ctx: Context, release: Release, environment: str, result: PlaybookResult) -> None:
    """A deploy before the gate failed: production untouched, say so and stop."""
    from coordinator.audit import AuditEvent

    message = f"{environment} deploy of {release.tag} failed: {result.summary()}"
    ctx.audit.append(AuditEvent.STAGE_FAILED, operator=ctx.operator, release_id=release.id, version=release.version,
                     environment=environment, outcome="failed", data={"reason": result.summary()})
    raise DeployFailed(message)
