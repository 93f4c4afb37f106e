"""The gate under a real pseudo-terminal, as CI runners (Buildkite, `docker run -t`) give one.

The coordinator runs as a child on the slave side of `pty.openpty()`, so `isatty()` is true
for its stdin and stdout exactly as on such a runner. With `--no-input`, `CI=true` or
`COORDINATOR_NO_INPUT=1` the gate must stop with exit 4 without asking; without them it asks,
and a wrong answer refuses with exit 12. Every wait is bounded and the child is killed on
any failure.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coordinator.errors import ExitCode
from tests.integration.conftest import ReleaseWorld

pytestmark = pytest.mark.world

PROMPT = "Type 1.0.0 to approve"
RUN_TIMEOUT_S = 600


class Terminal:
    """One CLI process on a pseudo-terminal: read what it shows, type, collect the exit code."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        self.output = ""
        try:
            self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
        finally:
            os.close(slave)

    def _read(self, timeout_s: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout_s)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 4096)
        except OSError:  # EIO: the child closed the terminal
            return False
        self.output += chunk.decode(errors="replace")
        return bool(chunk)

    def wait_for(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.output:
            assert time.monotonic() < deadline, f"{text!r} did not appear within {timeout_s}s:\n{self.output}"
            if not self._read(1.0) and self.proc.poll() is not None:
                raise AssertionError(f"exited {self.proc.returncode} before showing {text!r}:\n{self.output}")

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def exit_code(self, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, f"still running after {timeout_s}s:\n{self.output}"
            self._read(0.5)
        while self._read(0.1) and time.monotonic() < deadline:
            pass
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        os.close(self.master)


def on_terminal(rw: ReleaseWorld, *args: str, env: dict[str, str] | None = None) -> Terminal:
    """Start the CLI on a pty with no automation signal in its environment unless `env` adds one."""
    base = {k: v for k, v in os.environ.items() if k not in ("CI", "COORDINATOR_NO_INPUT")}
    argv = [sys.executable, "-m", "coordinator", "-c", str(rw.config), *args]
    return Terminal(argv, {**base, "COORDINATOR_OPERATOR": "release-manager", **(env or {})})


def run_on_terminal(rw: ReleaseWorld, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    term = on_terminal(rw, *args, env=env)
    try:
        return term.exit_code(RUN_TIMEOUT_S), term.output
    finally:
        term.close()


def audit_events(rw: ReleaseWorld) -> list[str]:
    return [json.loads(line)["event"] for line in (rw.state_dir / "audit.jsonl").read_text().splitlines()]


def the_release(rw: ReleaseWorld) -> dict:
    shown = rw.coordinator("status", "--json")
    assert shown.returncode == ExitCode.OK, shown.stderr
    return json.loads(shown.stdout)[0]


def test_no_input_signals_stop_the_gate_on_a_terminal_with_exit_4_without_asking(release_world: ReleaseWorld):
    rw = release_world
    code, output = run_on_terminal(rw, "release", "1.0.0", env={"CI": "true"})
    assert code == ExitCode.AWAITING_APPROVAL, output
    assert PROMPT not in output and "awaits 1 approval(s) for production" in output
    for args, env in ((("--no-input", "resume"), None), (("resume",), {"COORDINATOR_NO_INPUT": "1"})):
        started = time.monotonic()
        code, output = run_on_terminal(rw, *args, env=env)
        assert code == ExitCode.AWAITING_APPROVAL, output
        assert PROMPT not in output and "run `coordinator approve 1.0.0`" in output
        assert time.monotonic() - started < 120, "it must not wait for an answer"
    assert "approval.recorded" not in audit_events(rw)
    assert the_release(rw)["status"] == "awaiting_approval"


def test_on_a_terminal_the_gate_prompts_and_a_wrong_answer_refuses_with_12(release_world: ReleaseWorld):
    rw = release_world
    term = on_terminal(rw, "release", "1.0.0", env={"CI": "false"})  # a false CI value is no signal
    try:
        term.wait_for(PROMPT, RUN_TIMEOUT_S)
        assert "Promote v1.0.0" in term.output
        term.type("no\r")
        code = term.exit_code(120)
    finally:
        term.close()
    assert code == ExitCode.GATE_REFUSED, term.output
    assert "promotion of v1.0.0 refused by release-manager; nothing was deployed to production" in term.output
    assert "approval.recorded" not in audit_events(rw)
    record = the_release(rw)
    assert "approve" not in record["completed"] and "promote" not in record["completed"]
