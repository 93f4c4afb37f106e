"""Where release records live, and the lock that keeps one coordinator per state dir.

Records are JSON files written atomically (a reader never sees half a record); the lock
is an OS file lock, so the kernel releases it when the process dies: no stale PID files
after a `kill -9`.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from coordinator.errors import LockHeld
from coordinator.fsutil import atomic_write_text
from coordinator.release import Approval, Release, utcnow
from coordinator.release_read import read_release


class ReleaseStore:
    """Release records under `<state_dir>/releases/<release id>.json`."""

    def __init__(self, state_dir: Path, run_id: str | None = None) -> None:
        self.state_dir = state_dir
        self.releases_dir = state_dir / "releases"
        self.run_id = run_id  # this command's run, named in the lock file to whoever it refuses

    @property
    def audit_path(self) -> Path:
        return self.state_dir / "audit.jsonl"

    def describe(self) -> str:
        return f"state dir {self.state_dir}"

    def add_approval(self, release: Release, approval: Approval) -> None:
        """Nothing to do: the approval is saved with the release record."""

    def database_role(self) -> str | None:
        return None

    def ensure(self) -> None:
        self.releases_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def path_for(self, release_id: str) -> Path:
        return self.releases_dir / f"{release_id}.json"

    def save(self, release: Release) -> None:
        self.ensure()
        release.updated_at = utcnow()
        atomic_write_text(self.path_for(release.id), release.model_dump_json(indent=2) + "\n")

    def load(self, release_id: str) -> Release | None:
        path = self.path_for(release_id)
        if not path.exists():
            return None
        return read_release(path.read_text(encoding="utf-8"), str(path))

    def all(self) -> list[Release]:
        if not self.releases_dir.is_dir():
            return []
        releases = [
            read_release(path.read_text(encoding="utf-8"), str(path))
            for path in sorted(self.releases_dir.glob("*.json"))
        ]
        return sorted(releases, key=lambda release: release.created_at)

    def run_active(self, release_id: str) -> bool:
        """Whether a command holds the state dir's lock (one lock for every release)."""
        fd = os.open(self.state_dir / "coordinator.lock", os.O_RDWR | os.O_CREAT, 0o600) if self.state_dir.is_dir() else -1
        if fd < 0:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    @contextmanager
    def deploying(self, environment: str, purpose: str, *, exclusive: bool = False,
                  advice: str | None = None) -> Iterator[None]:
        """Nothing more to take: every command that deploys or rolls back holds the state dir's lock."""
        yield

    @contextmanager
    def locked(self, purpose: str, release_id: str | None = None, *, advice: str | None = None) -> Iterator[None]:
        """Hold the state dir's lock for the duration; refuse at once (naming the holder, then
        `advice`) if another holds it.

        One lock for the whole dir whatever `release_id` is: one machine, one run at a time."""
        self.ensure()
        lock_path = self.state_dir / "coordinator.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LockHeld(
                    f"state dir {self.state_dir} is in use by {_holder(lock_path)}: "
                    + (advice or "wait for it to finish (the lock is freed automatically when that process exits)")
                ) from None
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"run_id": self.run_id, "pid": os.getpid(), "purpose": purpose,
                                     "since": utcnow().isoformat(timespec="seconds")}).encode())
            yield
        finally:
            os.close(fd)

    def ensure_locked(self, before: str) -> None:
        """The state dir's flock is the kernel's: held until this process exits, never lost."""


def _holder(lock_path: Path) -> str:
    """Who holds the state dir's lock, from what it wrote into the lock file."""
    try:
        data = json.loads(lock_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "another coordinator"
    if not isinstance(data, dict):
        return "another coordinator"
    who = f"run {data['run_id']}" if data.get("run_id") else f"pid {data.get('pid', '?')}"
    return f"coordinator {who} ({data.get('purpose', '?')}, since {data.get('since', '?')})"
