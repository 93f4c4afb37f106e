"""Records that may wait in another machine's spool, said wherever the release is looked at.

A command that cannot reach the database keeps its records in its own machine's spool, and
only that machine can append them. Until it does, the database shows the release as it was
when the records stopped: a stage in progress (`intent`) by a run that is gone. Nothing here
can read that spool, but nobody may be misled by what the database shows: `status`, `audit
verify` and `resume` name the run and machine that may hold the rest, and what to run there.
"""

from __future__ import annotations

from collections.abc import Iterable

from coordinator.context import Context
from coordinator.release import Release, ReleaseStatus


def machine_of(run_id: str) -> str:
    """The machine part of a run id (`machine.pid.nonce`)."""
    return run_id.rsplit(".", 2)[0]


def runs_gone(ctx: Context, releases: Iterable[Release], *, we_hold_the_lock: bool = False) -> list[str]:
    """One line per release whose record shows a stage in progress by another run that no longer
    holds the release's run lock (team mode; a local state dir's spool is drained by every command).
    `we_hold_the_lock`: this command holds the release's run lock, so that other run is gone."""
    if not ctx.team_mode:
        return []
    lines = []
    for release in releases:
        intent = release.intent
        if release.status is not ReleaseStatus.IN_PROGRESS or intent is None or not intent.run_id:
            continue  # an outcome was recorded (a failure keeps its stale intent): nothing is left in progress
        if intent.run_id == ctx.run_id:
            continue
        if not we_hold_the_lock and ctx.store.run_active(release.id):
            continue  # that run (or another) is still at it: its records are not late yet
        machine = machine_of(intent.run_id)
        lines.append(
            f"{release.id}: {intent.action} was in progress in run {intent.run_id} (machine {machine}, since "
            f"{intent.started_at:%Y-%m-%d %H:%M:%S} UTC), which no longer runs; what happened after (a failure, a "
            f"rollback) may wait in {machine}'s spool if it could not reach the database: run `coordinator status` on "
            f"{machine} to append it, and check `coordinator lock status` before acting on this release")
    return lines
