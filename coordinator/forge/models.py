"""What the forge answers, as typed objects: only the fields the coordinator reads.

Models ignore unknown fields (Gitea adds fields between versions) and normalise the
quirks once, here: `statuses: null` becomes an empty list, and an unset timestamp sent
as the Unix epoch (or Go's zero time) becomes None.
"""

from __future__ import annotations

from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_UNSET_TIMES = (datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(1, 1, 1, tzinfo=timezone.utc))


def unset_time_to_none(value: Any) -> Any:
    """Gitea sends unset timestamps as the epoch (or Go's zero time), not null."""
    if value in (None, "", 0):
        return None
    if isinstance(value, str) and value.startswith(("1970-01-01T00:00:00", "0001-01-01T00:00:00")):
        return None
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        if aware in _UNSET_TIMES:
            return None
    return value


class ForgeModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class StatusState(StrEnum):
    """A commit status or combined state, as the coordinator judges it."""

    NONE = "none"  # no CI has reported at all
    PENDING = "pending"
    SUCCESS = "success"
    FAILURE = "failure"  # failure, error and (1.26+) warning
    SKIPPED = "skipped"


_FAILING = frozenset({"failure", "error", "warning"})


def judge_state(raw: str) -> StatusState:
    """Map Gitea's state words onto ours; `warning` is a failure, unknown words are pending."""
    word = (raw or "").lower()
    if word == "success":
        return StatusState.SUCCESS
    if word in _FAILING:
        return StatusState.FAILURE
    if word == "skipped":
        return StatusState.SKIPPED
    return StatusState.PENDING


class CommitStatus(ForgeModel):
    """One CI context's report; Gitea names the state field `status` here."""

    context: str = ""
    status: str = ""
    target_url: str | None = None
    description: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _state_alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("status") and data.get("state"):
            data = {**data, "status": data["state"]}
        return data


class CombinedStatus(ForgeModel):
    """The combined status of a ref. `total_count == 0` means "no CI reported", never green."""

    sha: str = ""
    state: str = ""
    total_count: int = 0
    statuses: list[CommitStatus] = Field(default_factory=list)

    @field_validator("statuses", mode="before")
    @classmethod
    def _null_statuses(cls, value: Any) -> Any:
        return value or []

    @field_validator("state", mode="before")
    @classmethod
    def _null_state(cls, value: Any) -> Any:
        return value or ""

    @property
    def reported(self) -> bool:
        return self.total_count > 0

    @property
    def outcome(self) -> StatusState:
        """Our judgement: NONE without statuses (Gitea says "" ≤1.25 or "pending" 1.26+)."""
        if not self.reported:
            return StatusState.NONE
        return judge_state(self.state)

    @property
    def is_success(self) -> bool:
        return self.outcome is StatusState.SUCCESS

    @property
    def is_failure(self) -> bool:
        return self.outcome is StatusState.FAILURE


class Tag(ForgeModel):
    """A git tag as the forge sees it; `commit_sha` is the peeled commit."""

    name: str
    commit_sha: str
    id: str = ""

    @model_validator(mode="before")
    @classmethod
    def _peel(cls, data: Any) -> Any:
        if isinstance(data, dict) and "commit_sha" not in data:
            commit = data.get("commit") or {}
            data = {**data, "commit_sha": commit.get("sha", "") if isinstance(commit, dict) else ""}
        return data


class GitRef(ForgeModel):
    """A ref (`refs/tags/v1.0.0`) and the object it points at (a tag object or a commit)."""

    ref: str
    object_sha: str
    object_type: str = ""

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, data: Any) -> Any:
        if isinstance(data, dict) and "object_sha" not in data:
            obj = data.get("object") or {}
            data = {**data, "object_sha": obj.get("sha", ""), "object_type": obj.get("type", "")}
        return data


class Label(ForgeModel):
    id: int
    name: str


class Milestone(ForgeModel):
    id: int
    title: str
    state: str = "open"
    open_issues: int = 0
    closed_issues: int = 0
    closed_at: datetime | None = None

    @field_validator("closed_at", mode="before")
    @classmethod
    def _unset_time(cls, value: Any) -> Any:
        return unset_time_to_none(value)


class Issue(ForgeModel):
    number: int
    title: str
    state: str = "open"
    html_url: str = ""
    labels: list[str] = Field(default_factory=list)
    milestone_id: int | None = None
    is_pull_request: bool = False

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        flat = dict(data)
        labels = data.get("labels") or []
        flat["labels"] = [label.get("name", "") if isinstance(label, dict) else str(label) for label in labels]
        milestone = data.get("milestone")
        if isinstance(milestone, dict):
            flat["milestone_id"] = milestone.get("id")
        flat.pop("milestone", None)
        flat["is_pull_request"] = bool(data.get("pull_request"))
        flat.pop("pull_request", None)
        return flat


class IssueComment(ForgeModel):
    """A comment as the forge attributes it: `login` is the author the forge recorded."""

    id: int
    login: str
    body: str
    created_at: datetime
    updated_at: datetime
    html_url: str = ""

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        flat = dict(data)
        user = data.get("user")
        flat["login"] = user.get("login", "") if isinstance(user, dict) else ""
        flat.pop("user", None)
        return flat


class ReleaseAsset(ForgeModel):
    id: int
    name: str
    browser_download_url: str = ""
    size: int = 0


class Release(ForgeModel):
    id: int
    tag_name: str
    name: str = ""
    body: str = ""
    html_url: str = ""
    draft: bool = False
    prerelease: bool = False
    target_commitish: str = ""
    assets: list[ReleaseAsset] = Field(default_factory=list)

    @field_validator("name", "body", "html_url", "target_commitish", mode="before")
    @classmethod
    def _null_text(cls, value: Any) -> Any:
        return value or ""

    @field_validator("assets", mode="before")
    @classmethod
    def _null_assets(cls, value: Any) -> Any:
        return value or []
