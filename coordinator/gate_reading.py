"""What production runs, read for the gate summary while the staging deploy runs.

The gate summary shows what production runs now ("live there now"), read from the hosts
with status.yml: a whole ansible-playbook run (2-3 s). It does not depend on staging, so
`stage` starts it beside the staging deploy and the gate takes its answer; a stage that
fails cancels it. Only the hosts are asked here (the thread touches neither the store nor
the output); what to show when they cannot answer is the gate's business.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

from coordinator.context import Context
from coordinator.errors import CoordinatorError
from coordinator.release import Release

# release id -> (environment, (whether its hosts answered, what they run), cancel)
_EARLY: dict[str, tuple[str, Future[tuple[bool, str | None]], threading.Event]] = {}


def _read(ctx: Context, environment: str, cancel: threading.Event) -> tuple[bool, str | None]:
    from coordinator.recognize import live_in

    try:
        live = live_in(ctx, environment, cancel=cancel)
    except CoordinatorError:
        return False, None
    return (False, None) if live.error else (True, live.summary())


def start(ctx: Context, release: Release) -> None:
    """Start reading `promote_to` for `release`'s gate in the background (once per release and process)."""
    if release.id in _EARLY:
        return
    environment = ctx.config.promote_to
    _ = ctx.ssh_control  # made here, in this thread: a cached_property is not made safely by two threads
    cancel = threading.Event()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gate-reading")
    _EARLY[release.id] = (environment, pool.submit(_read, ctx, environment, cancel), cancel)
    pool.shutdown(wait=False)


def cancel(release: Release) -> None:
    """The stage failed: no gate follows, so stop the reading and wait for its playbook to end."""
    early = _EARLY.pop(release.id, None)
    if early is not None:
        early[2].set()
        early[1].exception()  # waits: the runner stops the playbook within a second of the cancel


def take(release: Release, environment: str) -> tuple[bool, str | None]:
    """(True, what runs) when an early reading of `environment` answered; (False, None) when there is none to use."""
    early = _EARLY.pop(release.id, None)
    if early is None or early[0] != environment:
        return False, None
    return early[1].result()
