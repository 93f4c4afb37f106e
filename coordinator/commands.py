"""Operator commands that act outside the release sequence (manual rollback).

Kept apart from cli.py so the CLI stays parse-call-print and this stays testable.
"""

from __future__ import annotations

import re

from coordinator.ansible import run_playbook
from coordinator.context import Context
from coordinator.errors import RollbackFailed, UsageError
from coordinator.registry import DIGEST
from coordinator.registry_auth import host_pull_env


def rollback_command(ctx: Context, environment: str, *, to_digest: str | None, to_version: str | None, reason: str) -> None:
    """Run rollback.yml on ENVIRONMENT under the run lock, audit it, and say loudly what happened.

    Refused (LockHeld, exit 9, naming the holder) while a live release run holds the lock: two
    commands changing the same hosts at once is how a rollback gets undone. A crashed run's
    lock died with its process, so rollback then goes ahead."""
    from coordinator.audit import AuditEvent

    env = ctx.config.environment(environment)
    extravars: dict[str, str] = {}
    if to_digest is not None:
        if not DIGEST.match(to_digest):
            raise UsageError(f"--to-digest {to_digest!r} is not sha256:<64 hex>: copy it from `coordinator status`")
        if not to_version or not re.match(r"^[0-9A-Za-z.+-]+$", to_version):
            raise UsageError("--to-digest needs --to-version (the version that digest is)")
        extravars = {"rollback_digest": to_digest, "rollback_version": to_version}
    # Never next to a release run acting on the same hosts; held to the end, so none starts meanwhile.
    advice = (f"wait for it to finish (a failing deploy rolls itself back), or stop it (Ctrl-C there: its lock goes "
              f"with its process), then rerun `coordinator rollback {environment}`")
    with ctx.store.locked(f"rollback {environment}", advice=advice), \
            ctx.store.deploying(environment, f"rollback {environment}", exclusive=True, advice=advice):
        ctx.out.step(f"rollback.yml on {environment} ({env.inventory})")
        result = run_playbook(ansible_dir=ctx.config.ansible_dir, playbook="rollback.yml", inventory=env.inventory,
                              extravars=extravars, ident=f"manual-rollback-{environment}", strategy=ctx.config.ansible.strategy,
                              on_progress=ctx.out.info,
                              cancel=ctx.cancel, run_log_dir=ctx.config.state_dir,
                              control_dir=ctx.ssh_control.path, timeout_s=env.playbook_timeout_s,
                              allow_no_hosts=env.allow_no_hosts,
                              env=host_pull_env(ctx.config.image))  # a pruned previous image is pulled again
        states = result.host_states()
        restored = sorted({state.version or "?" for state in states.values()})
        if not result.ok:
            ctx.audit.append(AuditEvent.ROLLBACK_FAILED, operator=ctx.operator, environment=environment,
                             outcome="rollback_failed", data={"reason": reason, "detail": result.summary()})
            raise RollbackFailed(f"manual rollback of {environment} failed: {result.summary()}")
        ctx.audit.append(AuditEvent.ROLLBACK_COMPLETED, operator=ctx.operator, environment=environment,
                         outcome="rolled_back", data={"reason": reason, "restored_versions": restored,
                                                      "hosts": sorted(result.hosts)})
    ctx.out.success(f"{environment} rolled back to {', '.join(restored)} on {len(result.hosts)} host(s)")
