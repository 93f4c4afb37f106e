"""The per-run SSH ControlPath directory (coordinator/ssh_control.py)."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

from coordinator.ssh_control import PREFIX, ControlDir, socket_path_fits, sweep_dead


def test_directory_is_private_short_and_named_for_the_process(tmp_path: Path) -> None:
    control = ControlDir(tmp_path)
    try:
        mode = stat.S_IMODE(control.path.stat().st_mode)
        assert mode == 0o700
        assert control.path.name.startswith(f"{PREFIX}{os.getpid()}-")
        assert control.env() == {"ANSIBLE_SSH_CONTROL_PATH_DIR": str(control.path)}
    finally:
        control.close()


def test_default_directory_fits_a_unix_socket_path() -> None:
    control = ControlDir()
    try:
        assert socket_path_fits(control.path)
    finally:
        control.close()


def test_concurrent_runs_get_their_own_directories(tmp_path: Path) -> None:
    first, second = ControlDir(tmp_path), ControlDir(tmp_path)
    try:
        assert first.path != second.path
        second.close()
        assert first.path.is_dir()  # closing one run never touches another's masters
    finally:
        first.close()


def test_close_removes_the_directory_with_its_sockets_and_can_repeat() -> None:
    control = ControlDir()  # a short path, as ansible's sockets need
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(control.path / ("a" * 40)))  # not a master: `ssh -O exit` fails, cleanup goes on
    try:
        control.close()
        control.close()
    finally:
        listener.close()
    assert not control.path.exists()


def test_sweep_removes_a_dead_runs_directory_and_keeps_live_ones(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead_dir = tmp_path / f"{PREFIX}{dead.stdout.strip()}-abcdefgh"
    dead_dir.mkdir(mode=0o700)
    live_dir = tmp_path / f"{PREFIX}{os.getpid()}-abcdefgh"
    live_dir.mkdir(mode=0o700)
    other = tmp_path / "coordcp-notapid-x"
    other.mkdir()
    sweep_dead(tmp_path)
    assert not dead_dir.exists()
    assert live_dir.is_dir() and other.is_dir()


def test_a_run_sweeps_leftovers_of_a_killed_run(tmp_path: Path) -> None:
    script = ("import os, sys; from pathlib import Path; from coordinator.ssh_control import ControlDir; "
              "c = ControlDir(Path(sys.argv[1])); print(c.path, flush=True); os._exit(9)")
    killed = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, check=False)
    left = Path(killed.stdout.strip())
    assert killed.returncode == 9 and left.is_dir()
    control = ControlDir(tmp_path)
    try:
        assert not left.exists()
    finally:
        control.close()
