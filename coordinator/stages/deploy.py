"""Deploying to an environment and rolling it back: the Ansible side of stage/promote/verify.

The coordinator decides what to deploy (image by digest, version, who) and the playbooks
do it; the playbooks report per host what runs there now, and this module turns that into
the release record and the audit trail.
"""

from __future__ import annotations

import hashlib
from typing import Any, NoReturn

from coordinator.ansible import PlaybookResult, run_playbook
from coordinator.context import Context
from coordinator.errors import (
    CoordinatorError,
    DeployFailed,
    FirstReleaseFailed,
    HostNotReady,
    HostUnreachable,
    LockHeld,
    RollbackFailed,
    RolledBack,
)
from coordinator.known_good import last_known_good
from coordinator.registry_auth import host_pull_env
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
        strategy=ctx.config.ansible.strategy,
        timeout_s=env.playbook_timeout_s,
        on_progress=ctx.out.info,
        cancel=ctx.cancel, run_log_dir=ctx.config.state_dir, control_dir=ctx.ssh_control.path,
        allow_no_hosts=env.allow_no_hosts,
        env=host_pull_env(ctx.config.image),  # the hosts pull with our registry credentials
    )


def timing_vars(ctx: Context, environment: str) -> dict[str, Any]:
    """The health deadline and poll interval: the only health inputs deploy.yml and rollback.yml take."""
    env = ctx.config.environments[environment]
    return {"release_health_timeout": int(env.health_timeout_s), "release_health_interval": env.health_interval_s}


def health_vars(ctx: Context, release: Release, environment: str) -> dict[str, Any]:
    """verify.yml's inputs: what every host must serve. Never passed to deploy.yml or rollback.yml.

    Extra vars outrank every variable a play sets, so an expectation passed to a playbook that
    also checks a *restored* release would make that check expect the new release; those
    playbooks take the release as docker_release_* and refuse release_health_expected_*.
    """
    assert release.build is not None
    return {
        "release_health_expected_version": release.version,
        "release_health_expected_digest": release.build.digest,
        **timing_vars(ctx, environment),
    }


def lock_id_for(ctx: Context, release: Release, environment: str) -> str:
    """The host lock id this run works under: the one recorded when it is this run's (or a crashed
    run's of this machine, taken over by re-entering it), else a new one naming this run, which
    the host refuses while another run of the same release holds its lock (see `coordinator.locks`)."""
    from coordinator import locks

    recorded = release.deployments.setdefault(environment, Deployment(environment=environment)).lock_id
    if recorded and (recorded.endswith(f".{ctx.run_id}") or locks.lock_run_gone(recorded, ctx.run_id)):
        return recorded
    seed = f"{release.id}|{release.created_at.isoformat()}|{environment}"
    return locks.run_lock_id(hashlib.sha256(seed.encode()).hexdigest()[:16], ctx.run_id)


def take_lock(ctx: Context, release: Release, environment: str) -> str:
    """Take the lock through lock.yml: for a rollback after deploy.yml already gave it back."""
    from coordinator import locks

    lock_id = lock_id_for(ctx, release, environment)
    locks.acquire(ctx, environment, lock_id=lock_id, version=release.version,
                  reason=f"release {release.tag}", release_id=release.id)
    release.deployments.setdefault(environment, Deployment(environment=environment)).lock_id = lock_id
    return lock_id


def drop_lock(ctx: Context, release: Release, environment: str) -> None:
    """Give our lock back if we still hold it; a failure here is reported, never turned into a failed release."""
    from coordinator import locks

    deployment = release.deployments.setdefault(environment, Deployment(environment=environment))
    if deployment.lock_id is None:
        return
    try:
        locks.release(ctx, environment, lock_id=deployment.lock_id, release_id=release.id)
    except CoordinatorError as exc:  # held by another id, or a host that stopped answering
        ctx.out.warn(f"{exc.message} (it expires by itself)")
        return
    deployment.lock_id = None


def absorb_lock_report(ctx: Context, release: Release, environment: str, result: PlaybookResult) -> None:
    """Audit the lock deploy.yml took and gave back; raise when it could not take it.

    deploy.yml first checks that every host can run the deploy, then takes the lock on
    every host (all or none), and gives it back only when every host passed, so on failure
    the rollback still runs under it. Not taking it raises LockHeld (someone else's lock) or
    HostNotReady: nothing was deployed. HostUnreachable may also be a connection cut in the
    middle of the call that takes the lock and deploys: the host's state is then unknown.
    """
    from coordinator import locks

    deployment = release.deployments.setdefault(environment, Deployment(environment=environment))
    reports = result.reported.values()
    if any(data.get("lock_refused") for data in reports):
        lock_id = deployment.lock_id or lock_id_for(ctx, release, environment)
        error = locks.lock_error(environment, result, f"start the deploy of {release.tag}",
                                 dropped=f"taken this run's lock (id {lock_id}) and started {release.tag}")
        unknown = isinstance(error, HostUnreachable)  # a call cut off on its way may have run on the host
        if not unknown:
            deployment.lock_id = None  # the host answered: the run released whatever it had taken
        # else kept: the host may hold it, and `resume` re-enters it
        _audit_failure(ctx, release, environment, _REFUSAL_OUTCOMES.get(type(error), "failed"),
                       {"reason": error.message, "deployed": "unknown" if unknown else False})
        raise error
    lock_id = deployment.lock_id or lock_id_for(ctx, release, environment)
    if result.ok and not result.hosts and not result.reported:
        # An environment that allows no hosts ran on nobody: no lock was taken anywhere, so there is
        # none to give back (and no lock.released without its lock.acquired in the audit trail).
        deployment.lock_id = None
        return
    if not any("locked" in data for data in reports):
        return  # the run ended before the lock play reported (killed or broken run): keep the intent
    locks.record_acquired(ctx, environment, result, version=release.version, release_id=release.id)
    if result.ok and all(data.get("locked") is False for data in reports):
        locks.record_released(ctx, environment, lock_id=lock_id, release_id=release.id)
        deployment.lock_id = None


_REFUSAL_OUTCOMES: dict[type, str] = {LockHeld: "locked", HostUnreachable: "host_unreachable", HostNotReady: "host_not_ready"}


def _audit_failure(ctx: Context, release: Release, environment: str, outcome: str, data: dict[str, Any]) -> None:
    """One audit record for a deploy that failed on `environment`: deploy.failed in production, stage.failed before."""
    from coordinator.audit import AuditEvent

    event = AuditEvent.DEPLOY_FAILED if environment == ctx.config.promote_to else AuditEvent.STAGE_FAILED
    ctx.audit.append(event, operator=ctx.operator, release_id=release.id, version=release.version, environment=environment,
                     outcome=outcome, data=data)


def deploy_vars(ctx: Context, release: Release, environment: str) -> dict[str, Any]:
    env = ctx.config.environments[environment]
    assert release.build is not None
    extravars: dict[str, Any] = {
        "docker_release_image": release.build.image,
        "docker_release_digest": release.build.digest,
        "docker_release_version": release.version,
        "docker_release_deployed_by": ctx.operator,
        "docker_release_release_id": release.id,
        "deploy_lock_id": lock_id_for(ctx, release, environment),
        "deploy_lock_acquire": True,
        "deploy_lock_owner": ctx.operator,
        "deploy_lock_reason": f"release {release.tag}",
        **timing_vars(ctx, environment),
    }
    if env.serial:
        extravars["deploy_serial"] = env.serial
    if ctx.force:
        extravars["docker_release_allow_bad_digest"] = True  # `--force`: a digest the hosts mark bad may go again
    if environment == ctx.config.promote_to:  # deploy.yml's own rescue goes back to the last verified release
        known_good = last_known_good(ctx, environment, release.build.digest)
        if known_good is not None:
            extravars.update(known_good.rollback_vars(release.build.image, prefix="docker_release_rollback_"))
    return extravars


def deploy_environment(ctx: Context, release: Release, environment: str) -> PlaybookResult:
    """Run deploy.yml (lock, deploy + per-host health, final check, unlock) and record what each host runs now.

    The lock id (naming this run) is saved before the run, so a run killed while holding the
    lock is resumed under the same lock (acquiring is re-entrant by id) and never locks
    itself out, while a live run's lock refuses every other command (coordinator.locks).
    """
    deployment = release.deployments.setdefault(environment, Deployment(environment=environment))
    ctx.store.ensure_locked(f"deploy.yml on {environment}")  # never an irreversible step without the run lock
    deployment.started_at = deployment.started_at or utcnow()
    deployment.lock_id = lock_id_for(ctx, release, environment)
    ctx.store.save(release)  # the run's lock id first: a resume after a crash recognizes (and re-enters) it
    result = _playbook(ctx, release, environment, "deploy.yml", deploy_vars(ctx, release, environment))
    absorb_lock_report(ctx, release, environment, result)
    merge_host_states(deployment, result)
    if result.ok:
        ctx.checked_by_deploy[environment] = result
    deployment.outcome = "deployed" if result.ok else "failed"
    deployment.finished_at = utcnow()
    return result


def verify_environment(ctx: Context, release: Release, environment: str) -> PlaybookResult:
    """Run verify.yml: /health, /version and the running digest on every host."""
    result = _playbook(ctx, release, environment, "verify.yml", health_vars(ctx, release, environment))
    deployment = release.deployments.setdefault(environment, Deployment(environment=environment))
    merge_host_states(deployment, result)
    return result


def failure_reason(result: PlaybookResult) -> str:
    """Why a run failed, per host, in the playbook's own words.

    The hosts report the error that made them fail (`error`, e.g. "/health answered 404"),
    which the run's last failed task (a rollback note, a summary fail) only wraps.
    """
    reasons = [f"{host}: {data['error']}" for host, data in sorted(result.reported.items()) if data.get("error")]
    return result.with_log("; ".join(reasons)) if reasons else result.summary()


def rollback_environment(ctx: Context, release: Release, environment: str, reason: str) -> None:
    """Restore the previous release on `environment`; always raises (RolledBack or RollbackFailed).

    Safety before bookkeeping: the rollback runs, the page goes out and the lock is given back
    first; the audit records follow (and go to the spool when they cannot be written).
    """
    assert release.build is not None
    ctx.out.alarm(f"{environment} verification failed for {release.tag}: {reason}. Rolling back.")
    deployment = release.deployments.setdefault(environment, Deployment(environment=environment))
    if deployment.lock_id is None:  # deploy.yml gave it back (a resumed verify failed): take it again
        try:
            take_lock(ctx, release, environment)
        except (LockHeld, HostUnreachable, HostNotReady) as exc:
            _rollback_failed(ctx, release, environment, reason, f"could not take the lock: {exc.message}")
    known_good = last_known_good(ctx, environment, release.build.digest)  # never a "previous" nobody verified
    result = _playbook(ctx, release, environment, "rollback.yml", {
        **(known_good.rollback_vars(release.build.image, prefix="rollback_") if known_good else {}),
        "deploy_lock_id": deployment.lock_id or lock_id_for(ctx, release, environment),
        "rollback_from_digest": release.build.digest,
        "rollback_reason": f"{release.tag} failed verification: {reason}"[:200],
        "rollback_release_id": release.id,
        **timing_vars(ctx, environment),
    })
    merge_host_states(deployment, result)
    deployment.finished_at = utcnow()
    states = result.host_states()
    restored = sorted({state.version or "?" for state in states.values()})
    if not result.ok:
        _rollback_failed(ctx, release, environment, reason, result.summary())
    still_bad = sorted(host for host, state in states.items() if state.digest == release.build.digest)
    if still_bad:  # "rolled back" must mean the failed digest no longer runs
        _rollback_failed(ctx, release, environment, reason,
                         f"{', '.join(still_bad)} still run(s) {release.build.digest} ({release.tag}): no verified "
                         "release to go back to was found. Roll back by hand with `coordinator rollback "
                         f"{environment} --to-digest DIGEST --to-version VERSION --reason TEXT`")
    deployment.outcome = "rolled_back"
    release.status = ReleaseStatus.ROLLED_BACK
    message = f"{environment}: {release.tag} failed ({reason}); rolled back to {', '.join(restored) or 'the previous release'}"
    _escalate(ctx, release, environment, reason, message, rolled_back=True, restored=restored)
    drop_lock(ctx, release, environment)
    ctx.out.alarm(message)
    release.last_error = message
    _audit_deploy_failed(ctx, release, environment, reason)
    _audit_outcome(ctx, release, environment, "rollback.completed", "rolled_back",
                   {"restored_versions": restored, "hosts": sorted(result.hosts), "bad_digest": release.build.digest})
    raise RolledBack(message)


def _audit_deploy_failed(ctx: Context, release: Release, environment: str, reason: str) -> None:
    from coordinator.audit import AuditEvent

    assert release.build is not None
    ctx.audit.append(AuditEvent.DEPLOY_FAILED, operator=ctx.operator, release_id=release.id, version=release.version,
                     environment=environment, outcome="failed",
                     data={"reason": reason, "digest": release.build.digest, "commit": release.commit_sha or ""})


def _audit_outcome(ctx: Context, release: Release, environment: str, event: str, outcome: str, data: dict[str, Any]) -> None:
    from coordinator.audit import AuditEvent

    ctx.audit.append(AuditEvent(event), operator=ctx.operator, release_id=release.id, version=release.version,
                     environment=environment, outcome=outcome, data=data)


def _rollback_failed(ctx: Context, release: Release, environment: str, reason: str, detail: str) -> NoReturn:
    deployment = release.deployments.setdefault(environment, Deployment(environment=environment))
    deployment.outcome = "rollback_failed"
    release.status = ReleaseStatus.ROLLBACK_FAILED
    held = f"The deploy lock stays held (id {deployment.lock_id})" if deployment.lock_id else "No deploy lock is held by this release"
    message = (f"{environment}: {release.tag} failed ({reason}) AND the rollback failed: {detail}. "
               f"Act now: see README 'Manual rollback'. {held}")
    _escalate(ctx, release, environment, reason, message, rolled_back=False)
    ctx.out.alarm(message)
    release.last_error = message
    _audit_deploy_failed(ctx, release, environment, reason)
    _audit_outcome(ctx, release, environment, "rollback.failed", "rollback_failed", {"reason": detail})
    raise RollbackFailed(message)


def _escalate(ctx: Context, release: Release, environment: str, reason: str, message: str, *, rolled_back: bool,
              restored: list[str] | None = None, first_release: bool = False) -> None:
    from coordinator.render import render

    body = render("escalation.md.j2", {
        "project": release.project, "version": release.version, "tag": release.tag,
        "environment": environment, "reason": reason, "summary": message, "rolled_back": rolled_back,
        "digest": release.build.digest if release.build else "", "hosts": sorted(release.deployments.get(environment, Deployment(environment=environment)).hosts),
        "operator": ctx.operator, "restored_versions": restored or [], "first_release": first_release,
    }, override_dir=ctx.config.notify.templates_dir)
    headline = "FIRST RELEASE FAILED" if first_release else "ROLLED BACK" if rolled_back else "ROLLBACK FAILED"
    result = ctx.notifier.escalate(f"[{release.project}] {headline} {release.tag} on {environment}", body)
    for failure in getattr(result, "failed", []) or []:
        ctx.out.warn(f"escalation to {failure} failed")


def fail_deploy(ctx: Context, release: Release, environment: str, result: PlaybookResult) -> None:
    """A deploy before the gate failed: production untouched, say so and stop."""
    from coordinator.audit import AuditEvent

    reason = failure_reason(result)
    restored = _restored_versions(result)
    after = f"; {environment} rolled back to {', '.join(restored)}" if restored else ""
    message = f"{environment} deploy of {release.tag} failed: {reason}{after}; production untouched"
    ctx.audit.append(AuditEvent.STAGE_FAILED, operator=ctx.operator, release_id=release.id, version=release.version,
                     environment=environment, outcome="failed", data={"reason": reason, "restored_versions": restored})
    raise DeployFailed(message)


def _restored_versions(result: PlaybookResult) -> list[str]:
    """The versions deploy.yml restored (and verified) on the hosts it rolled back."""
    return sorted({str(data.get("version")) for data in result.reported.values() if data.get("rolled_back") and data.get("version")})


def removed_first_release(result: PlaybookResult) -> list[str]:
    """The hosts whose failed first release deploy.yml removed; empty unless that is all that happened.

    A host with a previous release is rolled back instead; when any host was (or failed to
    be) rolled back, or a removal failed, this is not a plain failed first release.
    """
    reports = result.reported.values()
    if any(data.get("rolled_back") or data.get("rollback_error") for data in reports):
        return []
    return sorted(host for host, data in result.reported.items() if data.get("first_release") and data.get("removed"))


def fail_first_release(ctx: Context, release: Release, environment: str, result: PlaybookResult) -> NoReturn:
    """The first release to `environment` failed: deploy.yml removed the broken container and
    recorded the release as bad; there is nothing to restore. Give the lock back, say so, page.

    A crash-looping or wrongly answering container is worse than none, and a held lock would
    only block the fixed release, so neither is left behind (exit 17, see README).
    """
    assert release.build is not None
    removed = removed_first_release(result)
    reason = failure_reason(result)
    deployment = release.deployments.setdefault(environment, Deployment(environment=environment))
    deployment.outcome = "first_release_failed"
    deployment.finished_at = utcnow()
    drop_lock(ctx, release, environment)
    lock_note = "the deploy lock was released" if deployment.lock_id is None else f"the deploy lock is still held (id {deployment.lock_id})"
    message = (f"first release of {release.tag} to {environment} failed: {reason}; nothing to restore, "
               f"the broken container was removed from {', '.join(removed)}; {lock_note}")
    _escalate(ctx, release, environment, reason, message, rolled_back=False, first_release=True)
    ctx.out.alarm(message)
    release.last_error = message
    _audit_failure(ctx, release, environment, "first_release_failed",
                   {"reason": reason, "digest": release.build.digest, "removed_from": removed})
    raise FirstReleaseFailed(message)
