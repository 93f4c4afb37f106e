"""`coordinator hosts check ENV`: can every host of an environment take a release?

A deploy that discovers on the way that a host has no usable Python 3, that no Docker
engine answers, or that its state directory is not writable, stops there. This asks first, read-only, through
playbooks/preflight.yml, and turns what each host reported into one line per finding.
"""

from __future__ import annotations

from pydantic import BaseModel

from coordinator.ansible import PlaybookResult, run_playbook
from coordinator.context import Context
from coordinator.errors import HostNotReady, HostUnreachable, UsageError


class HostFinding(BaseModel):
    check: str
    ok: bool
    detail: str


class HostCheck(BaseModel):
    """What one host said about itself (or why it could not say anything)."""

    host: str
    reachable: bool
    ready: bool
    findings: list[HostFinding] = []
    lock: str = "unknown"

    def problems(self) -> list[str]:
        return [f"{self.host}: {item.check}: {item.detail}" for item in self.findings if not item.ok]


def lock_summary(lock: dict[str, object]) -> str:
    if not lock:
        return "unknown"
    if not lock.get("held"):
        return "free"
    expired = ", EXPIRED (may be taken over)" if lock.get("expired") else ""
    return f"held by {lock.get('owner')} until {lock.get('expires_at')} (id {lock.get('lock_id')}){expired}"


def host_checks(result: PlaybookResult) -> list[HostCheck]:
    """One HostCheck per host the run saw, from its stats and what preflight.yml reported."""
    checks = []
    for host in sorted(set(result.hosts) | set(result.reported)):
        outcome = result.hosts.get(host)
        data = result.reported.get(host, {})
        if outcome is not None and outcome.unreachable:
            checks.append(HostCheck(host=host, reachable=False, ready=False, findings=[HostFinding(
                check="ssh", ok=False,
                detail=f"unreachable: {outcome.message or 'no answer'}; check the address, port, SSH key and known_hosts")]))
            continue
        findings = [HostFinding(check="ssh", ok=True, detail="reachable")]
        if data.get("error") or "findings" not in data:
            why = str(data.get("error") or (outcome.message if outcome else None) or "the check did not run")
            findings.append(HostFinding(check="python", ok=False,
                                        detail=f"the check could not run: {why.splitlines()[0][:300]}; "
                                               "is ansible_python_interpreter a working Python 3?"))
        else:
            findings += [HostFinding.model_validate(item) for item in data["findings"]]
        checks.append(HostCheck(host=host, reachable=True, ready=all(item.ok for item in findings), findings=findings,
                                lock=lock_summary(data.get("lock") or {})))
    return checks


def check_hosts(ctx: Context, environment: str) -> list[HostCheck]:
    env = ctx.config.environment(environment)
    result = run_playbook(ansible_dir=ctx.config.ansible_dir, playbook="preflight.yml", inventory=env.inventory,
                          extravars={}, ident=f"preflight-{environment}", strategy=ctx.config.ansible.strategy, timeout_s=300,
                          cancel=ctx.cancel,
                          run_log_dir=ctx.config.state_dir, control_dir=ctx.ssh_control.path,
                          allow_no_hosts=env.allow_no_hosts)
    checks = host_checks(result)
    if not checks:
        raise UsageError(f"{environment}: inventory {env.inventory} has no hosts in the 'app' group")
    return checks


def raise_for_problems(environment: str, checks: list[HostCheck]) -> None:
    """Unreachable hosts first (exit 15), then hosts that cannot deploy (exit 16)."""
    unreachable = [check for check in checks if not check.reachable]
    if unreachable:
        raise HostUnreachable(f"{environment}: " + "; ".join(problem for check in unreachable for problem in check.problems()))
    not_ready = [check for check in checks if not check.ready]
    if not_ready:
        raise HostNotReady(f"{environment}: " + "; ".join(problem for check in not_ready for problem in check.problems()))
