"""One coordinator run keeps one SSH master per host across its playbook runs, and leaves none behind."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from coordinator.ansible import run_playbook
from coordinator.strategy import AnsibleStrategy
from coordinator.ssh_control import ControlDir
from tests.sandbox.coordinator_config import REPO_ROOT

pytestmark = pytest.mark.world

PRODUCTION = REPO_ROOT / "inventory" / "sandbox-production"


def _sockets(directory: Path) -> list[Path]:
    return [entry for entry in directory.iterdir() if entry.is_socket()]


def _master_pid(socket_path: Path) -> int | None:
    """The pid of the ssh master behind `socket_path` (`ssh -O check`), or None when none answers."""
    checked = subprocess.run(["ssh", "-o", f"ControlPath={socket_path}", "-O", "check", "prod1"],
                             capture_output=True, text=True, timeout=10, check=False)
    found = re.search(r"pid=(\d+)", checked.stderr)
    return int(found.group(1)) if checked.returncode == 0 and found else None


def _gone(pid: int, within_s: float = 10.0) -> bool:
    """Whether process `pid` has ended, waiting at most `within_s` (a master exits just after it is told)."""
    deadline = time.monotonic() + within_s
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not Path(f"/proc/{pid}").exists()


def _status(control: ControlDir, ident: str) -> bool:
    return run_playbook(ansible_dir=REPO_ROOT, playbook="status.yml", inventory=PRODUCTION, extravars={}, ident=ident,
                        strategy=AnsibleStrategy.LINEAR, timeout_s=300, control_dir=control.path).ok


def test_playbook_runs_of_one_run_share_the_ssh_master_and_close_leaves_none(world: object) -> None:
    control = ControlDir()
    master = None
    try:
        assert _status(control, "ssh-control-1")
        [socket_path] = _sockets(control.path)
        master = _master_pid(socket_path)
        assert master is not None

        assert _status(control, "ssh-control-2")

        assert _sockets(control.path) == [socket_path]
        assert _master_pid(socket_path) == master  # the second run rode on the first run's connection
    finally:
        control.close()
    assert not control.path.exists()
    assert master is not None and _gone(master), "the ssh master outlived the run"


def test_a_killed_run_leaves_only_a_directory_the_next_run_sweeps(world: object, tmp_path: Path) -> None:
    script = ("import os, sys; from pathlib import Path; from coordinator.ansible import run_playbook; "
              "from coordinator.ssh_control import ControlDir; c = ControlDir(); print(c.path, flush=True); "
              f"ok = run_playbook(ansible_dir=Path({str(REPO_ROOT)!r}), playbook='status.yml', "
              f"inventory=Path({str(PRODUCTION)!r}), extravars={{}}, ident='killed', strategy='linear', "
              "control_dir=c.path).ok; "
              "print(ok, flush=True); os._exit(9)")
    killed = subprocess.run([_python(), "-c", script],
                            capture_output=True, text=True, timeout=300, check=False)
    left_text, ran = killed.stdout.split()[:2]
    left = Path(left_text)
    assert killed.returncode == 9 and ran == "True", killed.stderr[-2000:]
    [socket_path] = _sockets(left)
    master = _master_pid(socket_path)

    ControlDir().close()  # the next run: sweeps the dead run's directory and stops its master

    assert not left.exists()
    assert master is not None and _gone(master), "the dead run's ssh master was not stopped"


def _python() -> str:
    return str(REPO_ROOT / ".venv" / "bin" / "python")
