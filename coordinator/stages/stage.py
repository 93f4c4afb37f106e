"""Stage 4, stage: deploy the pinned artifact to the pre-production environment and smoke it.

The smoke result becomes part of what the operator approves, so it is recorded verbatim.
"""

from __future__ import annotations

import subprocess

import httpx

from coordinator import gate_reading
from coordinator.context import Context
from coordinator.errors import DeployFailed
from coordinator.release import Release
from coordinator.stages.deploy import deploy_environment, drop_lock, fail_deploy, fail_first_release, removed_first_release
from coordinator.tls import trust_context, untrusted_certificate


def builtin_smoke(url: str, version: str, timeout_s: float = 10.0) -> str | None:
    """GET /health and /version once; None when both are right, else what was wrong.

    An https URL is verified against the system's trust store, as the forge is (coordinator/tls.py)."""
    try:
        with httpx.Client(timeout=timeout_s, verify=trust_context(None)) as client:
            health = client.get(f"{url}/health")
            if health.status_code != 200:
                return f"/health answered {health.status_code}"
            served = client.get(f"{url}/version")
            if served.status_code != 200:
                return f"/version answered {served.status_code}"
            if served.text.strip() != version:
                return f"/version says {served.text.strip()[:40]!r}, expected {version!r}"
    except httpx.HTTPError as exc:
        if (reason := untrusted_certificate(exc)) is not None:
            return f"{url}: its TLS certificate is not trusted ({reason}); add its CA to the system trust store"
        return f"{url} unreachable ({exc.__class__.__name__})"
    return None


def run_smoke(ctx: Context, release: Release, environment: str) -> str | None:
    env = ctx.config.environments[environment]
    if env.smoke_command is None:
        return builtin_smoke(env.url, release.version)
    argv = [part.replace("{url}", env.url).replace("{version}", release.version) for part in env.smoke_command]
    try:
        completed = subprocess.run(argv, cwd=ctx.config.app.path, capture_output=True, text=True,
                                   timeout=env.health_timeout_s, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"smoke command could not run: {exc}"
    if completed.returncode != 0:
        tail = " | ".join(((completed.stdout or "") + (completed.stderr or "")).strip().splitlines()[-3:])
        return f"smoke command exit {completed.returncode}: {tail}"
    return None


def run_stage(ctx: Context, release: Release) -> None:
    from coordinator.audit import AuditEvent

    environment = ctx.config.promote_from
    assert release.build is not None
    if not release.valid_approvals():  # the gate will show what production runs: read it meanwhile
        gate_reading.start(ctx, release)
    try:
        result = deploy_environment(ctx, release, environment)  # takes the lock and, when all passed, gives it back
        if not result.ok:
            if removed_first_release(result):
                fail_first_release(ctx, release, environment, result)
            fail_deploy(ctx, release, environment, result)
    except BaseException:
        gate_reading.cancel(release)
        raise
    finally:
        drop_lock(ctx, release, environment)  # only when a failed run left it held
    problem = run_smoke(ctx, release, environment)
    release.smoke_result = "passed" if problem is None else f"failed: {problem}"
    if problem is not None:
        gate_reading.cancel(release)
        ctx.audit.append(AuditEvent.STAGE_FAILED, operator=ctx.operator, release_id=release.id, version=release.version,
                         environment=environment, outcome="smoke_failed", data={"reason": problem})
        raise DeployFailed(f"smoke test on {environment} failed: {problem}; production untouched")
    ctx.audit.append(AuditEvent.STAGE_DEPLOYED, operator=ctx.operator, release_id=release.id, version=release.version,
                     environment=environment, outcome="passed",
                     data={"digest": release.build.digest, "hosts": sorted(result.hosts), "smoke": "passed"})
    ctx.out.info(f"{environment}: {release.build.reference} deployed, smoke passed")
