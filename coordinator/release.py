"""The release record: one object that moves through named stages.

The driver persists this record after every stage and before every irreversible action,
so it is the single source of truth for "where does release X stand". Everything in it is
safe to print: no tokens, no env-file contents.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    return datetime.now(UTC)


class Stage(StrEnum):
    """The stages in the order the driver runs them."""

    VALIDATE = "validate"
    TAG = "tag"
    BUILD = "build"
    STAGE = "stage"
    APPROVE = "approve"
    PROMOTE = "promote"
    VERIFY = "verify"
    ANNOUNCE = "announce"


STAGE_ORDER: tuple[Stage, ...] = tuple(Stage)


class ReleaseStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    AWAITING_APPROVAL = "awaiting_approval"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"
    FIRST_RELEASE_FAILED = "first_release_failed"  # nothing to restore; removed and marked bad on the hosts
    ANNOUNCE_PENDING = "announce_pending"
    COMPLETED = "completed"


MARKED_BAD = frozenset({ReleaseStatus.ROLLED_BACK, ReleaseStatus.ROLLBACK_FAILED, ReleaseStatus.FIRST_RELEASE_FAILED})
"""Releases that failed in the gated environment: never resumed, released again only with --force."""


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BuildInfo(Record):
    run_id: str
    run_url: str
    conclusion: str
    image: str
    digest: str

    @property
    def reference(self) -> str:
        """The immutable image reference deployed everywhere: image@sha256:…"""
        return f"{self.image}@{self.digest}"


class HostState(Record):
    """What one host runs, as reported by the playbooks."""

    version: str | None = None
    digest: str | None = None
    previous_version: str | None = None
    previous_digest: str | None = None
    healthy: bool | None = None


class Deployment(Record):
    environment: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    hosts: dict[str, HostState] = Field(default_factory=dict)
    outcome: str | None = None  # deployed, verified, failed, rolled_back, rollback_failed
    lock_id: str | None = None  # our host-side deploy lock while we hold it


class Approval(Record):
    """One operator's yes, bound to exactly one artifact."""

    operator: str
    confirmed_at: datetime
    tag: str
    commit_sha: str
    run_id: str
    digest: str
    smoke: str
    reason: str | None = None
    verified_by: str | None = None  # how `operator` was established: local, forge or database
    label: str | None = None  # what --operator said, when it is not the verified identity

    def matches(self, release: "Release") -> bool:
        build = release.build
        return (
            build is not None
            and self.tag == release.tag
            and self.commit_sha == release.commit_sha
            and self.run_id == build.run_id
            and self.digest == build.digest
            and self.smoke == (release.smoke_result or "")
        )


class Announcement(Record):
    release_url: str | None = None
    forge_release_id: int | None = None
    notified: bool = False
    notify_attempted: bool = False
    issues_closed: list[int] = Field(default_factory=list)
    milestone_closed: bool = False
    pending: list[str] = Field(default_factory=list)


class GateReading(Record):
    """What the production hosts ran when the release reached the gate (status.yml, read once)."""

    environment: str
    digest: str  # the artifact the gate was for: a rebuilt artifact reads the hosts again
    live: str | None  # as the gate summary shows it; None when nothing runs there
    read_at: datetime


class Intent(Record):
    """An irreversible action we are about to take; cleared when its outcome is known."""

    action: str
    started_at: datetime
    run_id: str | None = None  # the run that took it (machine.pid.nonce): where its unwritten records may wait


class Release(Record):
    id: str
    project: str
    version: str
    tag: str
    operator: str
    releaser: str | None = None  # the person who started it (forbid_self_approval compares it): coordinator.releaser
    releaser_verified_by: str | None = None
    ci_identity: str | None = None  # started from a CI run: the identity the CI job ran as (never approves)
    ci_run: str | None = None  # that run's id and address, as the CI system reported them
    ci_run_url: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    status: ReleaseStatus = ReleaseStatus.IN_PROGRESS
    completed: list[Stage] = Field(default_factory=list)
    commit_sha: str | None = None
    commit_time: datetime | None = None
    changelog: str | None = None
    build: BuildInfo | None = None
    deployments: dict[str, Deployment] = Field(default_factory=dict)
    smoke_result: str | None = None  # of the environment before the gate; part of the approval
    approvals: list[Approval] = Field(default_factory=list)
    gate_counted: dict[str, datetime] = Field(default_factory=dict)  # who the gate counted at promote, and when
    announcement: Announcement = Field(default_factory=Announcement)
    gate_reading: GateReading | None = None  # the gate summary's read of production, reused by `approve`
    stage_seconds: dict[str, float] = Field(default_factory=dict)  # wall time of each stage's last run
    intent: Intent | None = None
    last_error: str | None = None

    @property
    def next_stage(self) -> Stage | None:
        for stage in STAGE_ORDER:
            if stage not in self.completed:
                return stage
        return None

    def mark_completed(self, stage: Stage) -> None:
        if stage not in self.completed:
            self.completed.append(stage)

    def reopen_from(self, stage: Stage) -> None:
        """Forget `stage` and every later stage (a rebuilt artifact voids what followed)."""
        index = STAGE_ORDER.index(stage)
        self.completed = [done for done in self.completed if STAGE_ORDER.index(done) < index]

    def valid_approvals(self) -> list[Approval]:
        return [approval for approval in self.approvals if approval.matches(self)]
