"""Stage 3, build: wait for the tag's CI run and pin the artifact it produced.

The digest comes from the run's artifact manifest and is then confirmed against the
registry; from here on everything is deployed by that digest, never by the tag.
"""

from __future__ import annotations

import time
from typing import Any

from coordinator.context import Context
from coordinator.errors import BuildFailed
from coordinator.registry import resolve_digest
from coordinator.registry_auth import credentials_for
from coordinator.release import BuildInfo, Release


def run_build(ctx: Context, release: Release) -> None:
    from coordinator.ci import RunConclusion, wait_for_run

    ci = ctx.config.ci
    assert release.commit_sha is not None
    last_line: dict[str, Any] = {"text": "", "at": 0.0}

    def progress(run: object, elapsed: float) -> None:
        status = getattr(run, "status", None)
        text = f"CI run {getattr(run, 'id', '?')} {getattr(status, 'value', status)} ({elapsed:.0f}s) {getattr(run, 'html_url', '')}" \
            if run is not None else f"waiting for a CI run for {release.tag} ({elapsed:.0f}s)"
        now = time.monotonic()
        if text.split(" (")[0] != last_line["text"] or now - last_line["at"] > 15:
            ctx.out.info(text)
            last_line.update(text=text.split(" (")[0], at=now)

    run = wait_for_run(
        ctx.ci, release.tag, release.commit_sha,
        timeout_s=ci.timeout_s, poll_interval_s=ci.poll_interval_s, on_progress=progress,
    )
    if run.conclusion != RunConclusion.SUCCESS:
        conclusion = getattr(run.conclusion, "value", run.conclusion)
        raise BuildFailed(f"CI run {run.id} for {release.tag} ended {conclusion}: see {run.html_url}")
    manifest = ctx.ci.fetch_artifact_manifest(run)
    image = ctx.config.image
    if manifest.image != image.name:
        raise BuildFailed(f"artifact manifest names image {manifest.image}, config says {image.name}: fix image.name or the CI job")
    if manifest.commit != release.commit_sha:
        raise BuildFailed(f"artifact manifest was built from {manifest.commit[:12]}, not {release.commit_sha[:12]}")
    registry_digest = resolve_digest(image.name, manifest.tag, ca_file=image.registry_ca_file,
                                     credentials=credentials_for(image))
    if registry_digest != manifest.digest:
        raise BuildFailed(
            f"registry has {image.name}:{manifest.tag} at {registry_digest}, the manifest says {manifest.digest}: "
            "the tag moved; rebuild"
        )
    new_build = BuildInfo(run_id=str(run.id), run_url=run.html_url, conclusion="success",
                          image=image.name, digest=manifest.digest)
    if release.build is not None and release.build.digest != new_build.digest and release.approvals:
        ctx.out.warn(f"artifact changed ({release.build.digest} → {new_build.digest}): earlier approvals are void")
    release.build = new_build
    ctx.out.info(f"run {run.id} success: {new_build.reference}")
