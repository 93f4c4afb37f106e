"""Stage 8, announce: forge release, chat message, milestone issues, audit record.

These steps never undo a deploy. Each is idempotent (release looked up by tag and updated,
notification sent once and remembered, closed issues skipped); a failing step is recorded
as pending and `coordinator resume` retries just the pending ones. The steps are recorded
in order; the forge reads of the milestone step run beside the first two, and its issues
are closed side by side (at most FORGE_CALLS_AT_ONCE calls at once), each failure reported
with its own cause.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from coordinator import failpoints
from coordinator.context import Context
from coordinator.errors import AnnouncePending, CoordinatorError
from coordinator.forge.models import Issue, Milestone
from coordinator.release import Release


def _publish_release(ctx: Context, release: Release, save: Callable[[], None]) -> None:
    from coordinator.render import render

    head = ctx.audit.head_hash()
    body = render("release_notes.md.j2", {
        "project": release.project, "version": release.version, "tag": release.tag,
        "changelog": release.changelog or "", "digest": release.build.digest if release.build else "",
        "image": release.build.image if release.build else "", "run_url": release.build.run_url if release.build else "",
        "commit": release.commit_sha or "", "audit_head": head or "",
    }, override_dir=ctx.config.notify.templates_dir)
    published = ctx.forge.upsert_release(release.tag, release.tag, body, release.commit_sha or "")
    release.announcement.forge_release_id = published.id
    release.announcement.release_url = published.html_url
    ctx.out.info(f"forge release {published.html_url}")


def _notify(ctx: Context, release: Release, save: Callable[[], None]) -> None:
    from coordinator.render import render

    if release.announcement.notified:
        return
    environment = ctx.config.promote_to
    hosts = sorted(release.deployments[environment].hosts) if environment in release.deployments else []
    body = render("announcement.md.j2", {
        "project": release.project, "version": release.version, "tag": release.tag, "environment": environment,
        "hosts": hosts, "digest": release.build.digest if release.build else "",
        "release_url": release.announcement.release_url or "", "changelog": release.changelog or "",
    }, override_dir=ctx.config.notify.templates_dir)
    if not ctx.config.notify.announce:
        release.announcement.notified = True
        return
    if release.announcement.notify_attempted:
        # A crash hit between sending and recording: the message may be out already.
        ctx.out.warn("a notification may already have been sent before an interruption; not sending it twice")
        release.announcement.notified = True
        return
    release.announcement.notify_attempted = True
    save()
    result = ctx.notifier.announce(f"{release.project} {release.tag} released to {environment}", body)
    if result.failed:
        release.announcement.notify_attempted = False  # known not delivered: safe to retry
        raise CoordinatorError(f"notification failed for {', '.join(result.failed)}")
    release.announcement.notified = True


MilestoneLookup = Future[tuple[Milestone | None, list[Issue]]]
# At most this many forge calls at once: the milestone lookup runs beside the release notes and
# the chat message, and a milestone's issues are closed side by side.
FORGE_CALLS_AT_ONCE = 4


def _look_up_milestone(ctx: Context, release: Release) -> tuple[Milestone | None, list[Issue]]:
    """The release's milestone and its open issues: forge reads that need nothing the other steps do."""
    milestone = ctx.forge.find_milestone(release.version) or ctx.forge.find_milestone(release.tag)
    return milestone, ctx.forge.issues_in_milestone(milestone, state="open") if milestone is not None else []


def _close_issue(ctx: Context, number: int) -> str | None:
    """Close one issue; its failure's cause, or None."""
    try:
        ctx.forge.close_issue(number)
    except CoordinatorError as exc:
        return exc.message
    return None


def _close_milestone(ctx: Context, release: Release, pool: ThreadPoolExecutor, lookup: MilestoneLookup) -> None:
    milestone, issues = lookup.result()  # a failed lookup raises its own CoordinatorError here
    if milestone is None:
        ctx.out.info(f"no milestone named {release.version}: no issues to close")
        release.announcement.milestone_closed = True
        return
    failed = []
    for issue, problem in zip(issues, pool.map(lambda issue: _close_issue(ctx, issue.number), issues)):
        if problem is not None:
            failed.append(f"#{issue.number}: {problem}")
            continue
        release.announcement.issues_closed.append(issue.number)
        ctx.out.info(f"closed #{issue.number} {issue.title}")
    if failed:  # the milestone stays open, so `resume` finds the issues still open and closes them
        raise CoordinatorError(f"could not close {len(failed)} issue(s) of milestone {milestone.title}: {'; '.join(failed)}")
    if milestone.state != "closed":
        ctx.forge.close_milestone(milestone.id)
    release.announcement.milestone_closed = True


STEPS = ("forge_release", "notification", "milestone")


def run_announce(ctx: Context, release: Release, save: Callable[[], None]) -> None:
    from coordinator.audit import AuditEvent

    done = {
        "forge_release": release.announcement.forge_release_id is not None,
        "notification": release.announcement.notified,
        "milestone": release.announcement.milestone_closed,
    }
    pending: list[str] = []
    _ = ctx.forge  # made here, before a second thread may ask for it
    with ThreadPoolExecutor(max_workers=FORGE_CALLS_AT_ONCE, thread_name_prefix="announce") as pool:
        lookup = pool.submit(_look_up_milestone, ctx, release) if not done["milestone"] else None
        steps: dict[str, Callable[[], None]] = {
            "forge_release": lambda: _publish_release(ctx, release, save),
            "notification": lambda: _notify(ctx, release, save),
            "milestone": lambda: _close_milestone(ctx, release, pool, lookup) if lookup is not None else None,
        }
        for name in STEPS:
            if done[name]:
                continue
            try:
                steps[name]()
            except CoordinatorError as exc:
                ctx.out.warn(f"{name} pending: {exc.message}")
                pending.append(name)
            save()
            failpoints.hit(f"after:announce.{name}")
    release.announcement.pending = pending
    if pending:
        ctx.audit.append(AuditEvent.ANNOUNCE_PENDING, operator=ctx.operator, release_id=release.id, version=release.version,
                         environment=ctx.config.promote_to, outcome="pending", data={"pending": pending})
        raise AnnouncePending(f"{release.tag} is live and verified; announcement steps pending: {', '.join(pending)}. Run `coordinator resume`")
    ctx.audit.append(AuditEvent.RELEASE_ANNOUNCED, operator=ctx.operator, release_id=release.id, version=release.version,
                     environment=ctx.config.promote_to, outcome="completed",
                     data={"release_url": release.announcement.release_url or "", "issues_closed": release.announcement.issues_closed,
                           "digest": release.build.digest if release.build else "", "commit": release.commit_sha or "",
                           "run_id": release.build.run_id if release.build else "",
                           "run_url": release.build.run_url if release.build else ""})
