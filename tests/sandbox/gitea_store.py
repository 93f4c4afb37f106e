"""The stand-in forge's memory: labels, issues, milestones, statuses, releases, CI runs.

One `Store` holds everything behind one lock and writes itself atomically to the state
file after each change, so a restarted stand-in answers exactly as before. Records are
plain dataclasses in the forge's own terms; turning them into Gitea JSON is
`gitea_render`'s job.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

EPOCH = "1970-01-01T00:00:00Z"
STATE_VERSION = 1


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class RunStatus(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


class RunConclusion(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


@dataclass
class Label:
    id: int
    name: str
    color: str
    description: str = ""
    exclusive: bool = False


@dataclass
class Milestone:
    id: int
    title: str
    description: str = ""
    state: str = "open"
    due_on: str | None = None
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    closed_at: str | None = None


@dataclass
class Issue:
    id: int
    number: int
    title: str
    body: str = ""
    state: str = "open"
    label_ids: list[int] = field(default_factory=list)
    milestone_id: int | None = None
    is_pull: bool = False
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    closed_at: str | None = None


@dataclass
class Comment:
    """An issue comment; `user` is the login of the token that wrote it. Anyone with write
    access may edit it (as in Gitea), which moves `updated_at` but never `user`."""

    id: int
    issue_number: int
    user: str
    body: str
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)


@dataclass
class CommitStatus:
    id: int
    sha: str
    state: str
    context: str
    description: str = ""
    target_url: str = ""
    created_at: str = field(default_factory=now_iso)


@dataclass
class Release:
    id: int
    tag_name: str
    target_commitish: str
    name: str = ""
    body: str = ""
    draft: bool = False
    prerelease: bool = False
    created_at: str = field(default_factory=now_iso)


@dataclass
class Run:
    """One Actions run with its single job (`build`): the stand-in has one runner."""

    id: int
    run_number: int
    job_id: int
    event: str
    head_sha: str
    ref: str  # refs/tags/v1.0.0 or refs/heads/main
    title: str
    status: str = RunStatus.QUEUED.value
    conclusion: str | None = None
    created_at: str = field(default_factory=now_iso)
    started_at: str = EPOCH
    completed_at: str = EPOCH
    log: str = ""
    fail_without_build: bool = False  # set by admin `fail_next_run`
    actor: str = ""  # the login who triggered it (Gitea's `actor` and `trigger_actor`)
    workflow: str = "release.yml"  # the workflow file's name, under .gitea/workflows


@dataclass
class Artifact:
    id: int
    run_id: int
    name: str
    files: dict[str, str]  # file name in the zip → text content
    created_at: str = field(default_factory=now_iso)
    expires_at: str = "2099-01-01T00:00:00Z"


@dataclass
class RepoState:
    labels: list[Label] = field(default_factory=list)
    milestones: list[Milestone] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    statuses: list[CommitStatus] = field(default_factory=list)
    releases: list[Release] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)
    seen_tags: dict[str, str] = field(default_factory=dict)   # tag → peeled commit
    seen_heads: dict[str, str] = field(default_factory=dict)  # branch → head commit
    tags_baselined: bool = False  # existing tags were recorded as seen (no runs for them)


@dataclass
class CIConfig:
    branch_ci: bool = True
    ci_delay_s: float = 0.3
    fail_next_run: bool = False
    # Failure injection: the next `fail_500_count` API requests whose path (after /api/v1)
    # matches the regex `fail_500_path` are answered HTTP 500, as a busy Gitea does.
    fail_500_count: int = 0
    fail_500_path: str = ""


_Record = TypeVar("_Record")
_LISTS: dict[str, type] = {"labels": Label, "milestones": Milestone, "issues": Issue, "comments": Comment,
                           "statuses": CommitStatus,
                           "releases": Release, "runs": Run, "artifacts": Artifact}


def _build(cls: type[_Record], raw: dict[str, Any]) -> _Record:
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in raw.items() if k in names})


class Store:
    """All forge state, guarded by `lock`; mutate only inside `change()`."""

    def __init__(self, state_file: Path | None = None) -> None:
        self.state_file = state_file
        self.lock = threading.RLock()
        self.repos: dict[str, RepoState] = {}
        self.config = CIConfig()
        self.next_id = 1
        if state_file is not None and state_file.is_file():
            self._load(state_file)

    def new_id(self) -> int:
        """Ids are unique across repositories and kinds, like database ids."""
        with self.lock:
            value = self.next_id
            self.next_id += 1
            return value

    def repo(self, full_name: str) -> RepoState:
        with self.lock:
            return self.repos.setdefault(full_name, RepoState())

    @contextmanager
    def change(self) -> Iterator[None]:
        """Hold the lock for a mutation and persist when it completes."""
        with self.lock:
            yield
            self.save()

    def reset(self) -> None:
        with self.change():
            self.repos.clear()
            self.config = CIConfig()

    def save(self) -> None:
        if self.state_file is None:
            return
        with self.lock:
            payload = json.dumps(self.snapshot(), indent=1, sort_keys=True)
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        scratch = self.state_file.with_name(f".{self.state_file.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        scratch.write_text(payload, encoding="utf-8")
        os.replace(scratch, self.state_file)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"version": STATE_VERSION, "next_id": self.next_id, "config": asdict(self.config),
                    "repos": {name: asdict(state) for name, state in self.repos.items()}}

    def _load(self, path: Path) -> None:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("version") != STATE_VERSION:
            return  # an older layout: start empty rather than misread it
        self.next_id = int(raw.get("next_id", 1))
        self.config = _build(CIConfig, raw.get("config", {}))
        for name, state in raw.get("repos", {}).items():
            repo = RepoState(seen_tags=dict(state.get("seen_tags", {})), seen_heads=dict(state.get("seen_heads", {})),
                             tags_baselined=bool(state.get("tags_baselined", False)))
            for key, cls in _LISTS.items():
                setattr(repo, key, [_build(cls, item) for item in state.get(key, [])])
            self.repos[name] = repo
