"""Runs the stages in order, persisting the record after each, under the state-dir lock.

The release record is saved before a stage starts (with the stage as intent) and after
it completes, so a process killed anywhere resumes at the first incomplete stage; each
stage probes the world before acting, so re-running it changes nothing that is done.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack

from coordinator import failpoints
from coordinator.context import Context
from coordinator.errors import (
    AnnouncePending, AwaitingApproval, CheckFailed, CoordinatorError, DigestFailedBefore, FirstReleaseFailed, GateRefused,
    IdentityRefused, Interrupted, RollbackFailed, RolledBack, RunLockLost, UsageError,
)
from coordinator.pending_elsewhere import runs_gone
from coordinator.release import MARKED_BAD, Intent, Release, ReleaseStatus, Stage, utcnow
from coordinator.versioning import parse_version, tag_for

Confirm = Callable[[str, str], bool]
"""Asks the operator `question`; True only if they answered with the expected text."""


def release_id_for(project: str, version: str) -> str:
    return f"{project}-{version}"


class Driver:
    """The release sequence: validate → tag → build → stage → approve → promote → verify → announce."""

    def __init__(self, ctx: Context, confirm: Confirm | None = None, *, ci_run: str | None = None) -> None:
        self.ctx = ctx
        self.confirm = confirm
        self.ci_run = ci_run  # `release --ci-run`: the CI run this release runs in (coordinator.releaser)

    def release(self, version_text: str, *, force_reason: str | None = None) -> Release | None:
        """Run (or continue) the release of VERSION; None when it was already released without a record here."""
        version = parse_version(version_text)
        _ = self.ctx.forge_token  # a missing token is refused before anything is written
        release_id = release_id_for(self.ctx.config.project, version)
        with self.ctx.store.locked(f"release {version}", release_id=release_id):
            if self.ctx.store.load(release_id) is None:
                from coordinator.recognize import released_elsewhere

                done_elsewhere = released_elsewhere(self.ctx, version)
                if done_elsewhere:
                    self.ctx.out.success(done_elsewhere)
                    return None
            release = self._open(version, force_reason)
            return self._run(release)

    def resume(self, version_text: str | None = None, *, force_reason: str | None = None) -> Release:
        """Continue a release; one whose digest failed in production continues only with `force_reason`."""
        found = self._find_resumable(version_text)
        with self.ctx.store.locked(f"resume {found.version}", release_id=found.id):
            release = self.ctx.store.load(found.id) or found  # re-read: another machine may have moved it on
            for line in runs_gone(self.ctx, [release], we_hold_the_lock=True):
                self.ctx.out.warn(line)
            if force_reason:
                self._force(release, force_reason)
            self.ctx.out.step(f"resuming {release.tag} at {release.next_stage or 'the end'}")
            return self._run(release)

    def _force(self, release: Release, reason: str) -> None:
        """`--force`: the operator takes responsibility for deploying a digest that failed before (audited)."""
        from coordinator.audit import AuditEvent

        self.ctx.force = True
        self.ctx.audit.append(AuditEvent.RELEASE_MARKED_BAD, operator=self.ctx.operator, release_id=release.id,
                              version=release.version, outcome="forced",
                              data={"reason": reason, "digest": release.build.digest if release.build else ""})
        if release.status in MARKED_BAD and release.status is not ReleaseStatus.ROLLBACK_FAILED:
            release.status = ReleaseStatus.IN_PROGRESS
            release.reopen_from(Stage.PROMOTE)

    def _open(self, version: str, force_reason: str | None) -> Release:
        from coordinator.audit import AuditEvent

        config = self.ctx.config
        release_id = release_id_for(config.project, version)
        existing = self.ctx.store.load(release_id)
        if existing is not None:
            if existing.status in MARKED_BAD:
                if not force_reason:
                    raise UsageError(
                        f"{existing.tag} failed in {config.promote_to} ({existing.status.value}) and is marked bad: "
                        "release a new version, or pass --force --reason TEXT"
                    )
                self.ctx.audit.append(AuditEvent.RELEASE_MARKED_BAD, operator=self.ctx.operator, release_id=release_id,
                                      version=version, outcome="forced", data={"reason": force_reason})
                self.ctx.force = True  # the hosts refuse a digest they mark bad unless the run says so
                existing.status = ReleaseStatus.IN_PROGRESS
                existing.reopen_from(Stage.VALIDATE)
            if existing.status == ReleaseStatus.FAILED and Stage.TAG not in existing.completed:
                existing.reopen_from(Stage.VALIDATE)  # validation is always re-run until it passes
            return existing
        from coordinator.identity import verify_identity
        from coordinator.releaser import establish_releaser

        # The person who started it (forbid_self_approval compares approvers with this): in CI the human
        # who triggered the run, as the CI system records it; the CI job's own identity never approves.
        releaser = establish_releaser(self.ctx, verify_identity(self.ctx), self.ci_run)
        run = releaser.ci_run
        release = Release(id=release_id, project=config.project, version=version, tag=tag_for(version),
                          operator=self.ctx.operator, releaser=releaser.name, releaser_verified_by=releaser.verified_by,
                          ci_identity=releaser.ci_identity, ci_run=run.id if run else None,
                          ci_run_url=run.html_url if run else None)
        self.ctx.audit.append(AuditEvent.RELEASE_STARTED, operator=self.ctx.operator, release_id=release_id,
                              version=version, outcome="started",
                              data=releaser.audit_data() if releaser.verified_by != "local" else None)
        return release

    def _find_resumable(self, version_text: str | None) -> Release:
        store = self.ctx.store
        if version_text is not None:
            version = parse_version(version_text)
            release = store.load(release_id_for(self.ctx.config.project, version))
            if release is None:
                raise UsageError(f"no release {version} in {store.describe()}: start it with `coordinator release {version}`")
            return release
        open_releases = [r for r in store.all() if r.status is not ReleaseStatus.COMPLETED and r.status not in MARKED_BAD]
        if not open_releases:
            raise UsageError("nothing to resume: every release is completed or rolled back (see `coordinator status`)")
        return open_releases[-1]

    def _save(self, release: Release, *, before: str | None = None) -> None:
        """Save under the run lock: with `before`, first check that the lock is still ours (RunLockLost if not)."""
        if before is not None:
            self.ctx.store.ensure_locked(before)
        self.ctx.store.save(release)

    def _save_after_failure(self, release: Release) -> None:
        """The failure is recorded; when it cannot be (the database is gone, the disk is full), the
        record goes to the spool and the command still ends with the failure's own exit code."""
        from coordinator.spool import UNWRITABLE

        try:
            self.ctx.store.save(release)
        except UNWRITABLE as exc:
            self.ctx.audit.keep_release(release, exc)

    def _run(self, release: Release) -> Release:
        if release.status == ReleaseStatus.ROLLBACK_FAILED:
            raise RollbackFailed(f"{release.tag}: the last rollback failed; production state is unknown. "
                                 "Restore it by hand (README 'Manual rollback') before anything else")
        if release.status == ReleaseStatus.COMPLETED:
            where = release.announcement.release_url or "see `coordinator status`"
            digest = release.build.digest if release.build else "?"
            self.ctx.out.success(f"{release.tag} is already released ({where}, digest {digest}) by {release.operator}; "
                                 "nothing to redo")
            return release
        if release.status in MARKED_BAD:
            digest = release.build.digest if release.build else "its digest"
            raise DigestFailedBefore(
                f"{release.tag} ({digest}) failed in {self.ctx.config.promote_to} ({release.status.value}): not "
                f"deployed again. Release a new version, or `coordinator resume {release.version} --force --reason TEXT`")
        release.status = ReleaseStatus.IN_PROGRESS
        release.last_error = None
        self._save(release, before="the first stage")
        try:
            with _EnvironmentHold() as hold:
                while (stage := release.next_stage) is not None:
                    if self.ctx.cancel.is_set():
                        raise Interrupted(f"stopped before {stage}; run `coordinator resume` to continue")
                    self.ctx.out.step(f"{stage.value}: {release.tag}")
                    hold.move_to(self._environment_of(stage),
                                 lambda environment: self._environment_held(environment, stage, release))
                    release.intent = Intent(action=stage.value, started_at=utcnow(), run_id=self.ctx.run_id)
                    self._save(release, before=stage.value)
                    failpoints.hit(f"before:{stage.value}")
                    started = time.monotonic()
                    try:
                        self._run_stage(stage, release)
                    finally:
                        release.stage_seconds[stage.value] = round(time.monotonic() - started, 3)
                    failpoints.hit(f"after:{stage.value}")
                    release.intent = None
                    release.mark_completed(stage)
                    self._save(release, before=f"recording {stage.value} as done")
        except RunLockLost:
            raise  # the record is no longer ours to write: another command may own it now
        except CoordinatorError as exc:
            release.last_error = exc.message
            release.status = _status_after(exc, release.status)
            self._save_after_failure(release)
            raise
        release.status = ReleaseStatus.COMPLETED
        self._save(release, before="recording the release as completed")
        self.ctx.out.success(f"{release.tag} released: {release.announcement.release_url or ''}")
        return release

    def _environment_of(self, stage: Stage) -> str | None:
        """The environment whose hosts `stage` acts on, or None for stages that touch no host."""
        config = self.ctx.config
        return {Stage.STAGE: config.promote_from, Stage.PROMOTE: config.promote_to,
                Stage.VERIFY: config.promote_to}.get(stage)

    def _environment_held(self, environment: str, stage: Stage, release: Release) -> AbstractContextManager[None]:
        """The deploy lock of `environment`, which `stage` acts on (shared with other releases), so a
        manual rollback of it never runs at the same time."""
        return self.ctx.store.deploying(
            environment, f"{stage.value} {release.version}",
            advice=f"wait for it to finish, then `coordinator resume {release.version}`")

    def _run_stage(self, stage: Stage, release: Release) -> None:
        from coordinator.audit import AuditEvent
        from coordinator.stages import announce, approve, build, promote, stage as stage_step, tag, validate, verify

        ctx = self.ctx
        audit_common = {"operator": ctx.operator, "release_id": release.id, "version": release.version}
        if stage is Stage.VALIDATE:
            try:
                validate.run_validate(ctx, release)
            except CheckFailed as exc:
                ctx.audit.append(AuditEvent.VALIDATE_FAILED, outcome="failed", data={"problems": exc.problems}, **audit_common)
                raise
            ctx.audit.append(AuditEvent.VALIDATE_PASSED, outcome="passed", data={"commit": release.commit_sha or ""}, **audit_common)
        elif stage is Stage.TAG:
            tag.run_tag(ctx, release)
            ctx.audit.append(AuditEvent.TAG_PUSHED, outcome="pushed", data={"tag": release.tag, "commit": release.commit_sha or ""}, **audit_common)
        elif stage is Stage.BUILD:
            build.run_build(ctx, release)
            assert release.build is not None
            ctx.audit.append(AuditEvent.BUILD_COMPLETED, outcome="success",
                             data={"run_id": release.build.run_id, "run_url": release.build.run_url,
                                   "digest": release.build.digest, "commit": release.commit_sha or ""}, **audit_common)
        elif stage is Stage.STAGE:
            stage_step.run_stage(ctx, release)
        elif stage is Stage.APPROVE:
            approve.run_approve(ctx, release, self.confirm if ctx.interactive else None)
        elif stage is Stage.PROMOTE:
            promote.run_promote(ctx, release)
        elif stage is Stage.VERIFY:
            verify.run_verify(ctx, release)
        elif stage is Stage.ANNOUNCE:
            announce.run_announce(ctx, release, lambda: self._save(release))


def _status_after(error: CoordinatorError, current: ReleaseStatus) -> ReleaseStatus:
    if isinstance(error, (AwaitingApproval, IdentityRefused)):  # a refused approver leaves it at the gate
        return ReleaseStatus.AWAITING_APPROVAL
    if isinstance(error, RolledBack):
        return ReleaseStatus.ROLLED_BACK
    if isinstance(error, RollbackFailed):
        return ReleaseStatus.ROLLBACK_FAILED
    if isinstance(error, FirstReleaseFailed):
        return ReleaseStatus.FIRST_RELEASE_FAILED
    if isinstance(error, AnnouncePending):
        return ReleaseStatus.ANNOUNCE_PENDING
    if isinstance(error, (Interrupted, GateRefused)):
        return ReleaseStatus.IN_PROGRESS
    return ReleaseStatus.FAILED


class _EnvironmentHold:
    """The environment deploy lock a run holds across consecutive stages on the same environment.

    Promote and verify both act on production: letting the lock go between them would let a
    manual rollback start after the new release is on the hosts and before anyone checked it,
    and verify would then judge (or roll back) a fleet the rollback is changing. The hold moves
    only when the next stage acts on another environment (or none), and it is let go when the
    run leaves its stages, before the failure or completion is recorded.
    """

    def __init__(self) -> None:
        self._environment: str | None = None
        self._held: ExitStack = ExitStack()

    def __enter__(self) -> "_EnvironmentHold":
        return self

    def __exit__(self, *exc: object) -> None:
        self._held.close()

    def move_to(self, environment: str | None, take: Callable[[str], AbstractContextManager[None]]) -> None:
        """Hold `environment`'s lock (taken with `take(environment)`), keeping it if it is the one already held."""
        if environment == self._environment and environment is not None:
            return
        self._held.close()
        self._environment = None
        if environment is not None:
            self._held = ExitStack()
            self._held.enter_context(take(environment))
            self._environment = environment
