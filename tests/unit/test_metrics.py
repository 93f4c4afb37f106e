"""DORA metrics from a synthetic audit history with answers worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coordinator.audit import AuditEvent, AuditLog, AuditRecord
from coordinator.metrics import dora_metrics, format_duration

END = datetime(2025, 3, 8, 0, 0, tzinfo=UTC)
WEEK = timedelta(days=7)
HOUR = 3600.0


def day(n: int, hour: int, minute: int = 0) -> datetime:
    """March n, 2025 at hour:minute UTC (the window is March 1 00:00 .. March 8 00:00)."""
    return datetime(2025, 3, n, hour, minute, tzinfo=UTC)


def record(ts: datetime, event: AuditEvent, environment: str | None = "production", **data: object) -> AuditRecord:
    return AuditRecord(seq=1, ts=ts, event=event, operator="ci", environment=environment, data=data,
                       prev_hash=None, hash="0" * 64)


def verified(ts: datetime, lead_hours: float | None, environment: str = "production") -> AuditRecord:
    commit_time = (ts - timedelta(hours=lead_hours)).isoformat().replace("+00:00", "Z") if lead_hours is not None else ""
    return record(ts, AuditEvent.DEPLOY_VERIFIED, environment, commit_time=commit_time)


# Production, March 1-7:
#   d1 verified (lead 1h), d2 verified (lead 2h),
#   d3 failed 10:00 -> rolled back 10:30 (restore 30 min),
#   d4 verified (lead 4h),
#   d5 failed 09:00, rollback failed 09:10, verified 11:00 (lead 1h; restore 2h).
# Staging: one failed deploy on d6, never restored.
HISTORY = [
    verified(datetime(2025, 2, 20, 10, tzinfo=UTC), 1),  # before the window
    record(day(1, 8), AuditEvent.RELEASE_STARTED, environment=None),
    verified(day(1, 10), 1),
    verified(day(2, 10), 2),
    record(day(3, 10), AuditEvent.DEPLOY_FAILED),
    record(day(3, 10, 30), AuditEvent.ROLLBACK_COMPLETED),
    verified(day(4, 10), 4),
    record(day(5, 9), AuditEvent.DEPLOY_FAILED),
    record(day(5, 9, 10), AuditEvent.ROLLBACK_FAILED),
    verified(day(5, 11), 1),
    record(day(6, 12), AuditEvent.DEPLOY_FAILED, environment="staging"),
    verified(END + timedelta(hours=1), 1),  # after the window
]


@pytest.fixture
def report():
    return dora_metrics(HISTORY, window=WEEK, until=END)


def test_only_environments_with_deploy_events_in_the_window_are_reported(report) -> None:
    assert sorted(report.environments) == ["production", "staging"]


def test_deployment_frequency_counts_verified_deploys_in_the_window(report) -> None:
    production = report.environments["production"]
    assert production.deployments == 4
    assert production.deploys_per_week == pytest.approx(4.0)
    assert production.deploys_per_day == pytest.approx(4 / 7)


def test_lead_time_is_median_and_nearest_rank_p90_of_commit_to_verified(report) -> None:
    production = report.environments["production"]
    # lead times: 1h, 2h, 4h, 1h -> sorted 1, 1, 2, 4
    assert production.lead_time_median_s == pytest.approx(1.5 * HOUR)
    assert production.lead_time_p90_s == pytest.approx(4 * HOUR)


def test_change_failure_rate_is_failed_attempts_over_all_attempts(report) -> None:
    production = report.environments["production"]
    assert production.failed_deployments == 2
    assert production.change_failure_rate == pytest.approx(2 / 6)


def test_time_to_restore_runs_from_first_failure_to_next_good_state(report) -> None:
    production = report.environments["production"]
    # 30 min (rolled back) and 2 h (rollback failed, fixed by the next verified deploy)
    assert production.restores == 2
    assert production.time_to_restore_median_s == pytest.approx(1.25 * HOUR)
    assert production.open_incidents == 0


def test_an_unrestored_failure_is_an_open_incident(report) -> None:
    staging = report.environments["staging"]
    assert (staging.open_incidents, staging.restores, staging.time_to_restore_median_s) == (1, 0, None)
    assert staging.change_failure_rate == pytest.approx(1.0)


def test_environment_without_deploys_has_no_rates(report) -> None:
    staging = report.environments["staging"]
    assert (staging.deployments, staging.lead_time_median_s, staging.lead_time_p90_s) == (0, None, None)


def test_deploys_without_a_commit_time_count_but_have_no_lead_time() -> None:
    report = dora_metrics([verified(day(2, 10), None), verified(day(3, 10), 3)], window=WEEK, until=END)
    production = report.environments["production"]
    assert (production.deployments, production.lead_time_median_s) == (2, 3 * HOUR)


def test_incident_that_started_before_the_window_is_not_counted() -> None:
    history = [record(day(1, 10) - WEEK, AuditEvent.DEPLOY_FAILED), record(day(1, 10), AuditEvent.ROLLBACK_COMPLETED)]
    production = dora_metrics(history, window=WEEK, until=END).environments["production"]
    assert (production.restores, production.open_incidents) == (0, 0)


def test_named_environments_are_reported_even_when_idle() -> None:
    report = dora_metrics(HISTORY, window=WEEK, until=END, environments=["canary"])
    assert report.environments["canary"].deployments == 0


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window"):
        dora_metrics(HISTORY, window=timedelta(0), until=END)


def test_table_has_one_row_per_environment_with_readable_durations(report) -> None:
    table = report.to_table()
    production_row = next(line for line in table.splitlines() if line.startswith("production"))
    assert production_row.split() == ["production", "4", "4.0", "1h", "30m", "4h", "00m", "33%", "1h", "15m", "0"]
    assert "staging" in table


def test_metrics_come_straight_from_a_real_audit_log(tmp_path: Path) -> None:
    times = iter([day(2, 9), day(2, 10), day(2, 10, 5), day(3, 10)])
    log = AuditLog(tmp_path / "audit.jsonl", clock=lambda: next(times))
    log.append(AuditEvent.DEPLOY_STARTED, operator="ann", environment="production")
    log.append(AuditEvent.DEPLOY_FAILED, operator="ann", environment="production", outcome="failed")
    log.append(AuditEvent.ROLLBACK_COMPLETED, operator="ann", environment="production", outcome="rolled_back")
    log.append(AuditEvent.DEPLOY_VERIFIED, operator="ann", environment="production", outcome="verified",
               data={"commit_time": "2025-03-03T08:00:00+00:00"})
    production = dora_metrics(log.records(), window=WEEK, until=END).environments["production"]
    assert (production.deployments, production.change_failure_rate) == (1, 0.5)
    assert (production.lead_time_median_s, production.time_to_restore_median_s) == (2 * HOUR, 300)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (9, "9s"), (750, "12m 30s"), (4 * HOUR + 300, "4h 05m"), (2 * 86400 + 3 * HOUR, "2d 3h")],
)
def test_durations_are_shown_in_their_two_largest_units(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text
