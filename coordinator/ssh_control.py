"""One SSH ControlPath directory per coordinator run, so a release's playbooks share connections.

Why: ansible-runner would put the ControlMaster sockets in each run's private data dir, so
every playbook run of a release (deploy, status, verify, rollback) paid for a fresh SSH
handshake per host. A directory that lasts the coordinator process lets the second and
later playbook runs reuse the masters the first one opened (about 0.4 s per host each).

Promises:
- private: the directory is created 0700 by ``tempfile.mkdtemp`` and owned by us, so no
  other user can reach a master through its socket;
- short: under /tmp (or a short TMPDIR), so ``<dir>/<40 hex>`` stays within the 108-byte
  limit of a unix socket path;
- per run: concurrent coordinator processes each get their own directory (its name carries
  the pid), so one run never uses or stops another's masters;
- bounded: masters exit on their own after ansible.cfg's ControlPersist idle time even if
  we die; at exit (normal, error, SIGINT/SIGTERM through the CLI's handlers) every master
  is told to exit and the directory is removed; directories of dead processes are swept
  when the next run starts.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from coordinator.processes import pid_alive

PREFIX = "coordcp-"
# ansible's ControlPath is <dir>/<40 hex> (its %C hash); a unix socket path holds 107 bytes.
SOCKET_NAME_BYTES = 41
UNIX_PATH_MAX = 107
# Seconds to wait for `ssh -O exit` per master (it only talks to the local socket).
EXIT_TIMEOUT_S = 5


def short_temp_root() -> Path:
    """Where control directories go: the temp dir when its path is short enough, else /tmp."""
    root = Path(tempfile.gettempdir())
    # mkdtemp adds PREFIX, the pid and 8 random characters.
    if len(str(root)) + len(PREFIX) + 20 + SOCKET_NAME_BYTES > UNIX_PATH_MAX:
        root = Path("/tmp")
    return root


class ControlDir:
    """A private directory for ControlMaster sockets, and the masters in it stopped on close."""

    def __init__(self, root: Path | None = None) -> None:
        root = root or short_temp_root()
        sweep_dead(root)
        self.path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=root))
        self._closed = False

    def env(self) -> dict[str, str]:
        """The environment a playbook run needs to put its masters here."""
        return {"ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.path)}

    def close(self) -> None:
        """Stop every master in the directory, then remove it; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        stop_masters(self.path)
        shutil.rmtree(self.path, ignore_errors=True)


def stop_masters(directory: Path) -> None:
    """Ask the master behind each socket in ``directory`` to exit (bounded per master)."""
    try:
        entries = list(directory.iterdir())
    except FileNotFoundError:
        return
    for entry in entries:
        try:
            if not stat.S_ISSOCK(entry.lstat().st_mode):
                continue
        except FileNotFoundError:
            continue
        try:
            # With an explicit ControlPath the host name is never resolved or contacted.
            subprocess.run(["ssh", "-o", f"ControlPath={entry}", "-O", "exit", "controlled-host"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=EXIT_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired):
            pass  # the master still exits after its ControlPersist idle time


def sweep_dead(root: Path) -> None:
    """Remove control directories of our own processes that are gone (a killed run's)."""
    uid = os.getuid()
    for entry in root.glob(f"{PREFIX}*-*"):
        pid_text = entry.name[len(PREFIX):].split("-", 1)[0]
        try:
            if not pid_text.isdigit() or entry.lstat().st_uid != uid or not entry.is_dir() or entry.is_symlink():
                continue
        except FileNotFoundError:
            continue
        if not pid_alive(int(pid_text)):
            stop_masters(entry)
            shutil.rmtree(entry, ignore_errors=True)


def socket_path_fits(directory: Path) -> bool:
    """Whether ansible's sockets in ``directory`` fit a unix socket path."""
    return len(str(directory)) + SOCKET_NAME_BYTES <= UNIX_PATH_MAX

