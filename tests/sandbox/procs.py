"""Background processes the sandbox starts, and bounded waits for them to become ready.

Servers are started in their own session so they outlive `python -m tests.sandbox up` and a
Ctrl-C in a test run. They are stopped only by the PID we recorded, and only when that PID
still runs the program we started (PIDs are reused), never by name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from tests.sandbox.errors import SandboxError

POLL_INTERVAL_S = 0.1


class Started(BaseModel):
    """A process this world started: stopped by `down`, reused by `up` while healthy."""

    model_config = ConfigDict(extra="forbid")

    pid: int
    marker: str  # a word in /proc/<pid>/cmdline proving the PID is still ours
    log: Path
    started_at: float = 0.0  # epoch seconds; lets `up` notice code changed since the start


def _reap(pid: int) -> None:
    """Collect the exit status if `pid` is our child, so a dead server is not a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def is_running(proc: Started | None) -> bool:
    """True when `proc` is alive and its command line still names what we started."""
    if proc is None:
        return False
    _reap(proc.pid)
    try:
        stat = Path(f"/proc/{proc.pid}/stat").read_text(encoding="utf-8", errors="replace")
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
    return state not in {"Z", "X"} and proc.marker in cmdline


def spawn(argv: list[str], log: Path, marker: str, *, cwd: Path | None = None,
          env: dict[str, str] | None = None) -> Started:
    """Start `argv` detached, stdout and stderr appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as sink:
        try:
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                     cwd=cwd, env=env, start_new_session=True)
        except FileNotFoundError as exc:
            raise SandboxError(f"cannot start {argv[0]}: not installed") from exc
    # The server must outlive this Popen object. Marking it finished stops Popen from
    # warning about (and queueing) a running child at garbage collection; `is_running`
    # reaps the child itself if it dies while we are still around.
    popen.returncode = 0
    return Started(pid=popen.pid, marker=marker, log=log, started_at=time.time())


def log_tail(log: Path, lines: int = 5) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(tail) or "(empty log)"


def wait_until(ready: Callable[[], bool], what: str, timeout_s: float, proc: Started | None = None) -> None:
    """Poll `ready` until true; fail early if `proc` dies, and after `timeout_s` at the latest."""
    deadline = time.monotonic() + timeout_s
    while True:
        if ready():
            return
        if proc is not None and not is_running(proc):
            raise SandboxError(f"{what} exited during start-up; log {proc.log}: {log_tail(proc.log)}")
        if time.monotonic() >= deadline:
            where = f"; log {proc.log}: {log_tail(proc.log)}" if proc is not None else ""
            raise SandboxError(f"{what} not ready after {timeout_s:.0f}s{where}")
        time.sleep(POLL_INTERVAL_S)


def stop(proc: Started, timeout_s: float = 10.0) -> bool:
    """SIGTERM, a bounded wait, then SIGKILL. Returns False if it was not running (or not ours)."""
    if not is_running(proc):
        return False
    try:
        os.kill(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not is_running(proc):
            return True
        time.sleep(POLL_INTERVAL_S)
    try:
        os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    wait_until(lambda: not is_running(proc), f"pid {proc.pid} after SIGKILL", 5.0)
    return True
