"""Progress of a health wait: the probe returns once per slice, each retry is one line.

The events are shaped like the ones ansible-runner 2.4 emits for the release_health
probe task (runner_on_start, runner_retry per slice, then runner_on_ok / runner_on_failed).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from coordinator.ansible import _progress_line, _ProgressLines

TASK = "Wait for /health and /version until the deadline"
STARTED = datetime(2026, 11, 24, 18, 0, 0, tzinfo=UTC)


def event(kind: str, host: str, at_s: float | None, task: str = TASK, **res: Any) -> dict[str, Any]:
    created = {} if at_s is None else {"created": (STARTED + timedelta(seconds=at_s)).isoformat()}
    data: dict[str, Any] = {"host": host, "task": task}
    if res:
        data["res"] = res
    return {"event": kind, "event_data": data, **created}


def unhealthy_slice(host: str, at_s: float | None, attempt: int, last_status: str, polls: int = 9) -> dict[str, Any]:
    return event("runner_retry", host, at_s, attempts=attempt, retries=61, failed_when_result=True, healthy=False,
                 fatal=False, last_status=last_status, polls=polls, elapsed=4.51, timeout=300.0,
                 msg=f"no healthy answer within the 300 s deadline from http://127.0.0.1:45081: last {last_status}")


def lines(*events: dict[str, Any]) -> list[str | None]:
    progress = _ProgressLines()
    return [progress.for_event(e) for e in events]


def test_each_unhealthy_slice_prints_the_attempt_the_last_status_and_the_time_left():
    printed = lines(
        event("runner_on_start", "prod1", 0),
        unhealthy_slice("prod1", 5.4, 1, "connection refused"),
        unhealthy_slice("prod1", 10.9, 2, "/health answered 503"),
    )

    assert printed == [
        f"  prod1: {TASK} ...",
        "  prod1: waiting for health: attempt 1/61, last connection refused, 295 s left",
        "  prod1: waiting for health: attempt 2/61, last /health answered 503, 290 s left",
    ]


def test_a_wrong_version_is_shown_as_what_the_service_says():
    printed = lines(event("runner_on_start", "prod1", 0),
                    unhealthy_slice("prod1", 5, 1, "/version says '1.0.0', expected '1.1.0'"))

    assert printed[1] == "  prod1: waiting for health: attempt 1/61, last /version says '1.0.0', expected '1.1.0', 295 s left"


def test_time_left_does_not_go_below_zero():
    printed = lines(event("runner_on_start", "prod1", 0), unhealthy_slice("prod1", 301.5, 60, "/health answered 503"))

    assert printed[1] == "  prod1: waiting for health: attempt 60/61, last /health answered 503, 0 s left"


def test_time_left_is_left_out_when_the_events_carry_no_time():
    printed = lines(event("runner_on_start", "prod1", None), unhealthy_slice("prod1", None, 1, "connection refused"))

    assert printed[1] == "  prod1: waiting for health: attempt 1/61, last connection refused"


def test_a_retry_line_needs_no_tracking_of_the_start():
    line = _progress_line("runner_retry", unhealthy_slice("prod1", 5, 3, "/health answered 503")["event_data"])

    assert line == "  prod1: waiting for health: attempt 3/61, last /health answered 503"


def test_the_healthy_line_counts_the_polls_and_the_time_of_every_slice():
    printed = lines(
        event("runner_on_start", "prod1", 0),
        unhealthy_slice("prod1", 5.4, 1, "connection refused", polls=9),
        unhealthy_slice("prod1", 10.8, 2, "/health answered 503", polls=9),
        event("runner_on_ok", "prod1", 12.25, healthy=True, fatal=False, version="1.1.0", polls=3, elapsed=1.01,
              last_status="healthy", timeout=300.0),
    )

    assert printed[-1] == "  prod1: healthy, /version 1.1.0 after 21 poll(s) in 12.2 s"


def test_hosts_waiting_at_the_same_time_are_followed_apart():
    printed = lines(
        event("runner_on_start", "prod1", 0),
        event("runner_on_start", "prod2", 1),
        unhealthy_slice("prod1", 5, 1, "connection refused"),
        unhealthy_slice("prod2", 7, 1, "/health answered 503"),
        event("runner_on_ok", "prod2", 8, healthy=True, version="1.1.0", polls=3, elapsed=1.0),
        event("runner_on_ok", "prod1", 9, healthy=True, version="1.1.0", polls=3, elapsed=1.0),
    )

    assert printed[2:] == [
        "  prod1: waiting for health: attempt 1/61, last connection refused, 295 s left",
        "  prod2: waiting for health: attempt 1/61, last /health answered 503, 294 s left",
        "  prod2: healthy, /version 1.1.0 after 12 poll(s) in 7.0 s",
        "  prod1: healthy, /version 1.1.0 after 12 poll(s) in 9.0 s",
    ]


def test_the_next_wait_on_a_host_starts_from_zero():
    printed = lines(
        event("runner_on_start", "prod1", 0),
        unhealthy_slice("prod1", 5, 1, "connection refused"),
        event("runner_on_failed", "prod1", 6, healthy=False, fatal=True, msg="container sample has exited"),
        event("runner_on_start", "prod1", 100),
        event("runner_on_ok", "prod1", 101.5, healthy=True, version="1.0.0", polls=3, elapsed=1.0),
    )

    assert printed[2] == f"  prod1: {TASK} [FAILED]: container sample has exited"
    assert printed[-1] == "  prod1: healthy, /version 1.0.0 after 3 poll(s) in 1.5 s"


def test_retries_of_other_tasks_print_nothing():
    printed = lines(event("runner_on_start", "prod1", 0, task="Wait for the port"),
                    event("runner_retry", "prod1", 1, task="Wait for the port", attempts=1, retries=4))

    assert printed == [None, None]


DEPLOY_TASK = "Deploy the release and wait for /health and /version"


def test_a_wait_that_goes_on_after_the_deploy_calls_slice_counts_from_the_deploy_call():
    """The deploy call polls the first slice itself; the wait task's retries continue its clock and polls."""
    printed = lines(
        event("runner_on_start", "prod1", 0, task=DEPLOY_TASK),
        event("runner_on_ok", "prod1", 6.0, task=DEPLOY_TASK, changed=True, healthy=False, fatal=False, polls=9,
              last_status="connection refused", timeout=300.0, elapsed=5.0),
        event("runner_on_start", "prod1", 6.1),
        unhealthy_slice("prod1", 11.5, 1, "/health answered 503", polls=9),
        event("runner_on_ok", "prod1", 13.0, healthy=True, fatal=False, polls=3, version="1.1.0", elapsed=1.2),
    )

    assert printed[0] == f"  prod1: {DEPLOY_TASK} ..."
    assert printed[3] == "  prod1: waiting for health: attempt 1/61, last /health answered 503, 289 s left"
    assert printed[4] == "  prod1: healthy, /version 1.1.0 after 21 poll(s) in 13.0 s"


def test_a_deploy_call_that_is_healthy_at_once_prints_the_healthy_line():
    printed = lines(
        event("runner_on_start", "prod1", 0, task=DEPLOY_TASK),
        event("runner_on_ok", "prod1", 2.5, task=DEPLOY_TASK, changed=True, healthy=True, fatal=False, polls=4,
              version="1.1.0", elapsed=1.5),
    )

    assert printed[1] == "  prod1: healthy, /version 1.1.0 after 4 poll(s) in 2.5 s"
