"""The host-side deploy lock: taken by deploy.yml itself (deploy_lock_acquire) and given
back by it when every host passed, or through lock.yml for rollbacks and by hand.

The lock id names the run, not just the release: `<release key>.<machine>.<pid>.<nonce>`.
Acquiring is re-entrant by id, so with one id per release a second command for the same
release (one whose run lock was lost, or one started while the first still deploys) would
walk straight into the first one's lock. With the run in the id it is refused like anyone
else. A crashed run's lock is still recognized: the id is kept in the release record, and
when it names this machine and a process that no longer exists, the resumed run takes it
over by re-entering it, as before. A lock past its expiry is taken over by anyone and the
takeover is audited and escalated.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from coordinator.ansible import PlaybookResult, run_playbook
from coordinator.context import Context
from coordinator.errors import CoordinatorError, HostNotReady, HostUnreachable, LockHeld


def _lock_playbook(ctx: Context, environment: str, extravars: dict[str, Any], ident: str) -> PlaybookResult:
    env = ctx.config.environment(environment)
    return run_playbook(ansible_dir=ctx.config.ansible_dir, playbook="lock.yml", inventory=env.inventory,
                        extravars=extravars, ident=ident, strategy=ctx.config.ansible.strategy, timeout_s=300, cancel=ctx.cancel,
                        run_log_dir=ctx.config.state_dir, control_dir=ctx.ssh_control.path,
                        allow_no_hosts=env.allow_no_hosts)


def new_lock_id() -> str:
    return secrets.token_hex(8)


def run_lock_id(release_key: str, run_id: str) -> str:
    return f"{release_key}.{run_id}"


def lock_run_gone(lock_id: str, run_id: str) -> bool:
    """True when `lock_id` was taken by a run that has certainly ended: another process of this
    machine that no longer exists, or an id from before ids named their run (resumed as before)."""
    parts = lock_id.split(".")
    if len(parts) < 4:
        return True  # a per-release id (older coordinator): re-entered as it always was
    machine, pid = ".".join(parts[1:-2]), parts[-2]
    if machine != run_id.split(".")[0] or not pid.isdigit():
        return False  # another machine's run: only its expiry or `lock release` frees it
    if int(pid) == os.getpid():
        return False  # this process: never "gone" (a nonce mismatch is another run of this pid)
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False


def refusal(result: PlaybookResult) -> str | None:
    """Who holds the hosts a run could not lock, one clause per host; None when no host was refused."""
    holders = []
    for host, data in sorted(result.reported.items()):
        lock = data.get("lock") or {}
        if data.get("error") and lock.get("owner") and lock.get("held"):
            holders.append(f"{host}: held by {lock.get('owner')} since {lock.get('acquired_at')} "
                           f"for {lock.get('reason') or lock.get('version') or '?'} (lock id {lock.get('lock_id')})")
    return "; ".join(holders) or None


def held_error(environment: str, detail: str) -> LockHeld:
    return LockHeld(f"{environment} is locked: {detail}. Wait, or `coordinator lock release {environment} --lock-id ID`")


def _hosts_failing_as(result: PlaybookResult, kind: str) -> dict[str, str]:
    """Host -> why, for the hosts a lock run reported (or Ansible saw) failing as `kind`."""
    found = {host: str(data.get("error") or "failed") for host, data in sorted(result.reported.items())
             if data.get("lock_failure") == kind}
    if kind == "unreachable":
        for host, outcome in sorted(result.hosts.items()):
            if outcome.unreachable and host not in found:
                found[host] = outcome.message or "unreachable"
    return found


def _clauses(hosts: dict[str, str]) -> str:
    return "; ".join(f"{host}: {why}" for host, why in hosts.items())


def lock_error(environment: str, result: PlaybookResult, doing: str, *, held: LockHeld | None = None,
               dropped: str | None = None) -> CoordinatorError:
    """The error for a lock run that failed, by what really happened on the hosts.

    An unreachable host, a host that answers but cannot run the deploy, and a lock held by
    someone else are different facts with different fixes, so each has its own exit code.
    `doing` says what was being done ("take the deploy lock"), for the message; `held` is the
    error when it was none of the host problems (default: the lock is held, naming the holder).

    An unreachable host may also be one whose SSH connection dropped in the middle of the call
    that takes the lock: ssh's retry then reports only that it cannot connect, while the first
    try may have run. `dropped` says what such a call may have done ("taken the lock ... and
    started ..."); with it the host's state is reported as unknown, never as unchanged.
    """
    unreachable = _hosts_failing_as(result, "unreachable")
    if unreachable:
        hosts = ", ".join(unreachable)
        if dropped is None:
            return HostUnreachable(
                f"{environment}: could not {doing}: cannot reach {hosts} over SSH ({_clauses(unreachable)}). "
                f"Nothing was changed there; check SSH to the host (address, port, key, sshd running), then retry")
        return HostUnreachable(
            f"{environment}: could not {doing}: cannot reach {hosts} over SSH ({_clauses(unreachable)}). If the "
            f"connection dropped during the call, {hosts} may have {dropped}: its state is unknown; check SSH to the "
            f"host (address, port, key, sshd running); once it answers, `coordinator lock status {environment}` and "
            f"`coordinator hosts check {environment}` show its state, then `coordinator resume` (it re-enters this "
            f"run's lock)")
    not_ready = _hosts_failing_as(result, "not_ready")
    if not_ready:
        return HostNotReady(
            f"{environment}: could not {doing}: {', '.join(not_ready)} answered but cannot run the deploy "
            f"({_clauses(not_ready)}). Nothing was changed there; fix the host's Python 3 or its Docker engine (its API socket), "
            f"then retry")
    return held or held_error(environment, refusal(result) or result.summary())


def record_acquired(ctx: Context, environment: str, result: PlaybookResult, *, version: str, release_id: str | None) -> None:
    """Audit a lock a run took, and escalate every expired lock it took over from someone else."""
    from coordinator.audit import AuditEvent

    for host, data in sorted(result.reported.items()):
        taken = (data.get("lock") or {}).get("taken_over")
        if taken:
            ctx.audit.append(AuditEvent.LOCK_TAKEN_OVER, operator=ctx.operator, release_id=release_id, version=version,
                             environment=environment, outcome="taken_over",
                             data={"host": host, "previous_owner": str(taken.get("owner")), "expired_at": str(taken.get("expires_at"))})
            ctx.notifier.escalate(f"expired deploy lock taken over on {environment}",
                                  f"{ctx.operator} took over the expired lock of {taken.get('owner')} on {host}.")
    ctx.audit.append(AuditEvent.LOCK_ACQUIRED, operator=ctx.operator, release_id=release_id, version=version,
                     environment=environment, outcome="acquired", data={"hosts": sorted(result.reported or result.hosts)})


def record_released(ctx: Context, environment: str, *, lock_id: str, release_id: str | None, force: bool = False,
                    reason: str | None = None) -> None:
    from coordinator.audit import AuditEvent

    ctx.audit.append(AuditEvent.LOCK_RELEASED, operator=ctx.operator, release_id=release_id, environment=environment,
                     outcome="forced" if force else "released", data={"reason": reason or "", "lock_id": lock_id})


def acquire(ctx: Context, environment: str, *, lock_id: str, version: str, reason: str, release_id: str | None = None) -> None:
    """Take the deploy lock on every host of `environment`, or raise LockHeld naming the holder
    (HostUnreachable / HostNotReady when a host could not be reached or could not run the lock)."""
    result = _lock_playbook(ctx, environment, {
        "deploy_lock_action": "acquire", "deploy_lock_owner": ctx.operator, "deploy_lock_reason": reason,
        "deploy_lock_version": version, "deploy_lock_id": lock_id,
    }, ident=f"lock-{environment}-acquire")
    if not result.ok:
        raise lock_error(environment, result, "take the deploy lock")
    record_acquired(ctx, environment, result, version=version, release_id=release_id)


def release(ctx: Context, environment: str, *, lock_id: str, force: bool = False, reason: str | None = None,
            release_id: str | None = None) -> None:
    result = _lock_playbook(ctx, environment, {
        "deploy_lock_action": "release", "deploy_lock_id": lock_id, "deploy_lock_force": force,
    }, ident=f"lock-{environment}-release")
    if not result.ok:
        raise lock_error(environment, result, "release the deploy lock",
                         held=LockHeld(f"could not release the lock on {environment}: {result.summary()}"))
    record_released(ctx, environment, lock_id=lock_id, release_id=release_id, force=force, reason=reason)


def status(ctx: Context, environment: str) -> dict[str, dict[str, Any]]:
    """Per host, the lock as found (held, owner, reason, version, since, expiry)."""
    result = _lock_playbook(ctx, environment, {"deploy_lock_action": "status"}, ident=f"lock-{environment}-status")
    if not result.ok:
        raise lock_error(environment, result, "read the deploy lock",
                         held=LockHeld(f"could not read the lock on {environment}: {result.summary()}"))
    return {host: data.get("lock") or {} for host, data in result.reported.items()}
