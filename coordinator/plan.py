"""`coordinator plan VERSION`: every read-only check, and what each stage would do.

Nothing here writes: no tag, no deploy, no message, no audit record, no release record.
"""

from __future__ import annotations

import threading

from pydantic import BaseModel

from coordinator.batches import batches
from coordinator.context import Context
from coordinator.driver import release_id_for
from coordinator.errors import (CheckFailed, ConfigError, CoordinatorError, ForgeError, RegistryCredentialsError,
                                RegistryDenied, TokenRefused)
from coordinator.release import STAGE_ORDER
from coordinator.versioning import parse_version, tag_for


class PlannedCheck(BaseModel):
    name: str
    ok: bool
    detail: str
    forge_unreachable: bool = False


class PlannedStage(BaseModel):
    stage: str
    action: str
    done: bool = False


class PlannedHost(BaseModel):
    host: str
    running_version: str | None = None
    running_digest: str | None = None
    state: str | None = None
    lock: str = "free"
    would_change: bool | None = None


class PlannedEnvironment(BaseModel):
    name: str
    inventory: str
    hosts: list[PlannedHost]
    error: str | None = None
    batches: list[int] = []  # the batch sizes deploy.yml would move these hosts in


class Plan(BaseModel):
    version: str
    tag: str
    commit: str | None
    checks: list[PlannedCheck]
    stages: list[PlannedStage]
    environments: list[PlannedEnvironment] = []
    artifact_digest: str | None = None

    @property
    def ready(self) -> bool:
        """Every check passed and every environment's hosts could be read."""
        return not self.problems()

    def problems(self) -> list[str]:
        found = [f"{check.name}: {check.detail}" for check in self.checks if not check.ok]
        found += [f"{env.name} hosts: {env.error}" for env in self.environments if env.error]
        return found

    def error(self) -> CoordinatorError:
        """The failure `plan` exits with, by the same rule as `release`: an unreachable forge
        alone is exit 10 (try again later), anything else a failed check, exit 3."""
        failed = [check for check in self.checks if not check.ok]
        if failed and all(check.forge_unreachable for check in failed) and not any(e.error for e in self.environments):
            return ForgeError("forge unreachable while planning: " + "; ".join(check.detail for check in failed))
        return CheckFailed(self.problems())


def build_plan(ctx: Context, version_text: str) -> Plan:
    from coordinator.stages.validate import forge_checks, local_checks

    version = parse_version(version_text)
    tag = tag_for(version)
    config = ctx.config
    checks, sha = local_checks(ctx, version)
    if sha is not None:
        try:
            checks += forge_checks(ctx, sha)
        except TokenRefused:
            raise  # the credential is wrong (exit 2), not the release
        except CoordinatorError as exc:
            from coordinator.stages.validate import Check

            checks.append(Check("forge", False, exc.message))
    existing = ctx.store.load(release_id_for(config.project, version))
    digest = existing.build.digest if existing and existing.build else _registry_digest(ctx, tag)
    environments = [environment_state(ctx, name, digest) for name in config.environments]
    done = set(existing.completed) if existing else set()
    env_from, env_to = config.promote_from, config.promote_to
    actions = {
        "validate": f"run {' '.join(config.app.test_command)} and the UAT suite; re-check the above",
        "tag": f"create annotated {tag} at {(sha or '?')[:12]} and push it to {config.app.remote}",
        "build": f"wait up to {config.ci.timeout_s:.0f}s for the {config.ci.provider.value} run of {tag}; pin its digest",
        "stage": f"deploy {config.image.name}@<digest> to {env_from} ({config.environments[env_from].inventory}) and smoke-test {config.environments[env_from].url}",
        "approve": f"stop for {config.approvals.required} approval(s) of the exact artifact",
        "promote": f"deploy the approved digest to {env_to} ({config.environments[env_to].inventory})",
        "verify": f"/health and /version within {config.environments[env_to].health_timeout_s:.0f}s on every {env_to} host; roll back on failure",
        "announce": f"forge release {tag}, notify {len(config.notify.announce)} target(s), close milestone {version}",
    }
    stages = [PlannedStage(stage=s.value, action=actions[s.value], done=s in done) for s in STAGE_ORDER]
    return Plan(version=version, tag=tag, commit=sha,
                checks=[PlannedCheck(name=c.name, ok=c.ok, detail=c.detail, forge_unreachable=c.forge_unreachable) for c in checks], stages=stages,
                environments=environments, artifact_digest=digest)


def _registry_digest(ctx: Context, tag: str) -> str | None:
    """The digest the registry has for the tag already (a rebuilt tag, or None before CI)."""
    from coordinator.registry import resolve_digest
    from coordinator.registry_auth import credentials_for

    image = ctx.config.image
    try:
        return resolve_digest(image.name, tag, ca_file=image.registry_ca_file, credentials=credentials_for(image))
    except (ConfigError, RegistryCredentialsError, RegistryDenied):
        raise  # the release would stop on these at its build stage: say so now
    except CoordinatorError:
        return None


def environment_state(ctx: Context, name: str, digest: str | None,
                      cancel: threading.Event | None = None) -> PlannedEnvironment:
    """What runs on each host now (status.yml: read-only), and whether the release changes it."""
    from coordinator.ansible import run_playbook

    env = ctx.config.environments[name]
    result = run_playbook(ansible_dir=ctx.config.ansible_dir, playbook="status.yml", inventory=env.inventory,
                          extravars={}, ident=f"plan-status-{name}", strategy=ctx.config.ansible.strategy, timeout_s=300,
                          cancel=cancel,
                          control_dir=ctx.ssh_control.path, allow_no_hosts=env.allow_no_hosts)
    hosts = []
    for host, data in sorted(result.reported.items()):
        lock = data.get("lock") or {}
        hosts.append(PlannedHost(
            host=host, running_version=data.get("version"), running_digest=data.get("running_digest"),
            state=data.get("state"),
            lock=f"held by {lock.get('owner')} until {lock.get('expires_at')}" if lock.get("held") else "free",
            would_change=None if digest is None else data.get("running_digest") != digest,
        ))
    return PlannedEnvironment(name=name, inventory=str(env.inventory), hosts=hosts,
                              error=None if result.ok else result.summary(), batches=batches(len(hosts), env.serial))


def print_plan(ctx: Context, plan: Plan) -> None:
    ctx.out.line(f"plan for {plan.tag} at {(plan.commit or '?')[:12]} (nothing will be changed)")
    for check in plan.checks:
        ctx.out.line(f"  [{'pass' if check.ok else 'FAIL'}] {check.name}: {check.detail}")
    for stage in plan.stages:
        ctx.out.line(f"  {'done' if stage.done else 'todo'} {stage.stage:<9} {stage.action}")
    for env in plan.environments:
        ctx.out.line(f"  {env.name} ({env.inventory}){': ' + env.error if env.error else ''}")
        if env.batches:
            rule = "environments." + env.name + ".serial" if ctx.config.environments[env.name].serial is not None \
                else "a canary, then a quarter of the hosts rounded up"
            ctx.out.line(f"    deploy.yml batches: {', '.join(str(size) for size in env.batches)} ({rule})")
        for host in env.hosts:
            change = {True: "would change", False: "already runs it", None: "digest not built yet"}[host.would_change]
            ctx.out.line(f"    {host.host}: runs {host.running_version or 'nothing'} ({(host.running_digest or '-')[:19]}), "
                         f"{host.state or '-'}, lock {host.lock}; {change}")
    ctx.out.line("ready to release" if plan.ready else "NOT ready: fix the failed checks first (exit 3)")
