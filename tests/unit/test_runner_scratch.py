"""ansible-runner's private dirs: outside the state dir, private, and swept only when their run is gone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coordinator import runner_scratch
from coordinator.runner_scratch import OWNER, private_run_dir, scratch_root, sweep

HOLD = """
import fcntl, os, sys, time
from pathlib import Path
path = Path(sys.argv[1])
path.mkdir(mode=0o700)
fd = os.open(path / "owner", os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(60)
"""


@pytest.fixture
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    return runtime


def test_the_run_dir_is_private_outside_the_state_dir_and_removed_after(runtime_dir: Path) -> None:
    with private_run_dir() as path:
        assert path.parent == runtime_dir / "coordinator-runner"
        assert path.name.startswith(f"run-{os.getpid()}-")
        assert path.stat().st_mode & 0o777 == 0o700 and path.parent.stat().st_mode & 0o777 == 0o700
    assert not path.exists()


def test_a_sweep_removes_a_dead_runs_dir_and_never_a_live_runs(runtime_dir: Path) -> None:
    root = scratch_root()
    assert root is not None
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True, timeout=30)
    dead_pid = dead.stdout.strip()
    dead_unlocked = root / f"run-{dead_pid}-abc"  # killed before it locked its owner file
    dead_unlocked.mkdir()
    dead_locked = root / f"run-{dead_pid}-old"  # its owner file exists and nobody holds it
    dead_locked.mkdir()
    (dead_locked / OWNER).touch()
    live_unlocked = root / f"run-{os.getpid()}-new"  # made a moment ago by a run that has not locked it yet
    live_unlocked.mkdir()
    (live_unlocked / OWNER).touch()
    live = root / "run-99999999-live"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(live)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        removed = sweep(root)
        assert sorted(removed) == sorted([dead_unlocked, dead_locked])
        assert live.exists() and live_unlocked.exists()
    finally:
        holder.kill()
        holder.wait(timeout=30)
    deadline = time.monotonic() + 10
    while live.exists() and time.monotonic() < deadline:
        sweep(root)  # its process is gone now: the kernel freed the lock
        time.sleep(0.05)
    assert not live.exists()


def test_a_root_another_user_could_reach_is_not_used(runtime_dir: Path) -> None:
    (runtime_dir / "coordinator-runner").mkdir(mode=0o777)
    os.chmod(runtime_dir / "coordinator-runner", 0o777)
    assert scratch_root() is None
    with private_run_dir() as path:
        assert path.parent != runtime_dir / "coordinator-runner"
        assert path.stat().st_mode & 0o777 == 0o700


def test_without_a_runtime_dir_the_root_is_per_user_under_the_temp_dir(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(runner_scratch.tempfile, "gettempdir", lambda: str(tmp_path))
    assert scratch_root() == tmp_path / f"coordinator-runner-{os.getuid()}"
