"""DORA figures per environment, computed from the audit trail alone.

The trail already records every deploy, verification, failure and rollback with a
timestamp, so the four figures need no other data source and cannot drift from what
actually happened:

* deployment frequency: successful deploys (`deploy.verified`) per day and per week;
* lead time for changes: commit time (`deploy.verified`.data["commit_time"]) to the
  verified deploy; median and p90 (nearest rank: always an observed value);
* change failure rate: failed deploy attempts (`deploy.failed`, which precedes every
  rollback) / all deploy attempts (`deploy.verified` + `deploy.failed`);
* time to restore: from the first failure (`deploy.failed` or `rollback.failed`) while the
  environment was healthy to the next `deploy.verified` or `rollback.completed` there;
  median. Incidents are counted in the window they started in; one still unresolved at the
  end of the window is reported as open.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict

from coordinator.audit import AuditEvent, AuditRecord, utcnow

__all__ = ["DoraReport", "EnvironmentMetrics", "dora_metrics", "format_duration"]

_SUCCESS = AuditEvent.DEPLOY_VERIFIED
_FAILURES = {AuditEvent.DEPLOY_FAILED, AuditEvent.ROLLBACK_FAILED}
_RESTORES = {AuditEvent.DEPLOY_VERIFIED, AuditEvent.ROLLBACK_COMPLETED}
_RELEVANT = _FAILURES | _RESTORES


class EnvironmentMetrics(BaseModel):
    """The four DORA figures for one environment over one window. Durations in seconds."""

    model_config = ConfigDict(extra="forbid")

    environment: str
    window_start: datetime
    window_end: datetime
    deployments: int
    failed_deployments: int
    deploys_per_day: float
    deploys_per_week: float
    lead_time_median_s: float | None
    lead_time_p90_s: float | None
    change_failure_rate: float | None
    restores: int
    time_to_restore_median_s: float | None
    open_incidents: int


class DoraReport(BaseModel):
    """Metrics for every environment that saw a deploy, failure or rollback in the window."""

    model_config = ConfigDict(extra="forbid")

    window_start: datetime
    window_end: datetime
    environments: dict[str, EnvironmentMetrics]

    def to_table(self) -> str:
        """A fixed-width text table, one row per environment."""
        header = ("environment", "deploys", "per week", "lead time p50", "lead time p90",
                  "change fail", "restore p50", "open")
        rows = [header]
        for name in sorted(self.environments):
            m = self.environments[name]
            rows.append((
                name,
                str(m.deployments),
                f"{m.deploys_per_week:.1f}",
                format_duration(m.lead_time_median_s),
                format_duration(m.lead_time_p90_s),
                "-" if m.change_failure_rate is None else f"{m.change_failure_rate:.0%}",
                format_duration(m.time_to_restore_median_s),
                str(m.open_incidents),
            ))
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = [f"DORA metrics {self.window_start:%Y-%m-%d %H:%M} .. {self.window_end:%Y-%m-%d %H:%M} UTC"]
        for row in rows:
            lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if len(rows) == 1:
            lines.append("(no deploys in this window)")
        return "\n".join(lines) + "\n"


def dora_metrics(
    records: Iterable[AuditRecord],
    *,
    window: timedelta = timedelta(days=30),
    until: datetime | None = None,
    environments: Iterable[str] | None = None,
) -> DoraReport:
    """Compute the figures over (until - window, until]; `until` defaults to now.

    `environments` limits the report (each named one appears, even with no events).
    """
    if window <= timedelta(0):
        raise ValueError(f"window must be positive, got {window}")
    end = _utc(until or utcnow())
    start = end - window
    relevant = sorted(
        (r for r in records if r.environment and r.event in _RELEVANT and r.ts <= end),
        key=lambda r: (r.ts, r.seq),
    )
    by_env: dict[str, list[AuditRecord]] = {}
    for record in relevant:
        by_env.setdefault(record.environment or "", []).append(record)
    if environments is not None:
        wanted = list(environments)
    else:
        wanted = sorted(name for name, items in by_env.items() if any(r.ts > start for r in items))
    return DoraReport(
        window_start=start,
        window_end=end,
        environments={name: _environment_metrics(name, by_env.get(name, []), start, end) for name in wanted},
    )


def _environment_metrics(name: str, history: list[AuditRecord], start: datetime, end: datetime) -> EnvironmentMetrics:
    in_window = [r for r in history if r.ts > start]
    verified = [r for r in in_window if r.event == _SUCCESS]
    failed = [r for r in in_window if r.event == AuditEvent.DEPLOY_FAILED]
    days = (end - start).total_seconds() / 86400
    lead_times = sorted(
        (r.ts - commit_time).total_seconds()
        for r in verified
        if (commit_time := _commit_time(r)) is not None
    )
    restore_times, open_incidents = _restores(history, start)
    attempts = len(verified) + len(failed)
    return EnvironmentMetrics(
        environment=name,
        window_start=start,
        window_end=end,
        deployments=len(verified),
        failed_deployments=len(failed),
        deploys_per_day=len(verified) / days,
        deploys_per_week=len(verified) / days * 7,
        lead_time_median_s=statistics.median(lead_times) if lead_times else None,
        lead_time_p90_s=_nearest_rank(lead_times, 0.9) if lead_times else None,
        change_failure_rate=len(failed) / attempts if attempts else None,
        restores=len(restore_times),
        time_to_restore_median_s=statistics.median(restore_times) if restore_times else None,
        open_incidents=open_incidents,
    )


def _restores(history: list[AuditRecord], start: datetime) -> tuple[list[float], int]:
    """Durations of incidents that started in the window, and how many are still open."""
    durations: list[float] = []
    incident_start: datetime | None = None
    for record in history:
        if record.event in _FAILURES:
            if incident_start is None:
                incident_start = record.ts
        elif record.event in _RESTORES and incident_start is not None:
            if incident_start > start:
                durations.append((record.ts - incident_start).total_seconds())
            incident_start = None
    open_incidents = 1 if incident_start is not None and incident_start > start else 0
    return durations, open_incidents


def _commit_time(record: AuditRecord) -> datetime | None:
    value = record.data.get("commit_time")
    if not isinstance(value, str) or not value:
        return None
    try:
        return _utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def _nearest_rank(sorted_values: list[float], fraction: float) -> float:
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def format_duration(seconds: float | None) -> str:
    """'-' for no value, else the two largest units: '2d 3h', '4h 05m', '12m 30s', '9s'."""
    if seconds is None:
        return "-"
    total = int(round(seconds))
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours}h"
    if hours:
        return f"{sign}{hours}h {minutes:02d}m"
    if minutes:
        return f"{sign}{minutes}m {secs:02d}s"
    return f"{sign}{secs}s"
