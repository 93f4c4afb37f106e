"""`coordinator plan VERSION`: every read-only check, and what each stage would do.

Nothing here writes: no tag, no deploy, no message, no audit record, no release record.
"""

from __future__ import annotations

from pydantic import BaseModel

from coordinator.context import Context
from coordinator.driver import release_id_for
from coordinator.errors import CoordinatorError
from coordinator.release import STAGE_ORDER
from coordinator.versioning import parse_version, tag_for


class PlannedCheck(BaseModel):
    name: str
    ok: bool
    detail: str


class PlannedStage(BaseModel):
    stage: str
    action: str
    done: bool = False


class Plan(BaseModel):
    version: str
    tag: str
    commit: str | None
    checks: list[PlannedCheck]
    stages: list[PlannedStage]

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks)


def build_plan(ctx: Context, version_text: str) -> Plan:
    from coordinator.stages.validate import forge_checks, local_checks

    version = parse_version(version_text)
    tag = tag_for(version)
    config = ctx.config
    checks, sha = local_checks(ctx, version)
    if sha is not None:
        try:
            checks += forge_checks(ctx, sha)
        except CoordinatorError as exc:
            from coordinator.stages.validate import Check

            checks.append(Check("forge", False, exc.message))
    existing = ctx.store.load(release_id_for(config.project, version))
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
                checks=[PlannedCheck(name=c.name, ok=c.ok, detail=c.detail) for c in checks], stages=stages)


def print_plan(ctx: Context, plan: Plan) -> None:
    ctx.out.line(f"plan for {plan.tag} at {(plan.commit or '?')[:12]} (nothing will be changed)")
    for check in plan.checks:
        ctx.out.line(f"  [{'pass' if check.ok else 'FAIL'}] {check.name}: {check.detail}")
    for stage in plan.stages:
        ctx.out.line(f"  {'done' if stage.done else 'todo'} {stage.stage:<9} {stage.action}")
    ctx.out.line("ready to release" if plan.ready else "NOT ready: fix the failed checks first")
