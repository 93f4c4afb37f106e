"""World drills under each `ansible.strategy`, and proof of which one really ran.

A drill that takes the `ansible_strategy` fixture runs once under Ansible's own strategy and
once under Mitogen, with the same assertions: what the operator sees must not depend on it.
The fixture writes the key into the drill's config (kept by every later rewrite) and watches
the machine's processes while the drill runs: Mitogen's interpreter on a host renames itself
`python(mitogen:<context>)` (the sandbox hosts are this machine: staging runs under the test's
own `coordinator` commands, prod1 under the world's sshd), which no Ansible run does.
`assert_ran()` then checks that the strategy the config names is the one that ran.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import WORLD_DIR, ReleaseWorld

MITOGEN_PROCESS = b"(mitogen:"
POLL_S = 0.05
STRATEGIES = ("linear", "mitogen")


def _parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])  # the field after the command name, which may hold spaces


def _descends_from(pid: int, roots: set[int]) -> bool:
    for _ in range(64):  # bounded: a process tree is never that deep here
        if pid in roots:
            return True
        if pid <= 1:
            return False
        pid = _parent(pid)
    return False


def mitogen_processes(roots: set[int]) -> set[str]:
    """The command lines of the Mitogen interpreters running now under `roots` (this test's
    coordinator commands, the world's sshd): another engineer's Mitogen on the machine is not ours."""
    found = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if MITOGEN_PROCESS in text and _descends_from(int(cmdline.parent.name), roots):
            found.add(text.replace(b"\0", b" ").decode(errors="replace").strip())
    return found


class StrategyWatch:
    """Polls the process table in a thread until stopped; remembers every Mitogen interpreter seen."""

    def __init__(self, strategy: str) -> None:
        self.strategy = strategy
        self.roots = {os.getpid(), int((WORLD_DIR / "ssh" / "sshd.pid").read_text().strip())}
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="mitogen-watch", daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(POLL_S):
            self.seen |= mitogen_processes(self.roots)

    def start(self) -> None:
        self.seen |= mitogen_processes(self.roots)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def assert_ran(self) -> None:
        """Mitogen ran the playbooks if and only if the config chose it."""
        if self.strategy == "mitogen":
            assert self.seen, "ansible.strategy is mitogen but no Mitogen interpreter ran on the hosts"
        else:
            assert not self.seen, f"ansible.strategy is {self.strategy} but Mitogen ran: {sorted(self.seen)[:3]}"


@pytest.fixture(params=STRATEGIES)
def ansible_strategy(request: pytest.FixtureRequest, release_world: ReleaseWorld) -> Iterator[StrategyWatch]:
    """The drill's config says `ansible: {strategy: <param>}`; the drill's processes are watched."""
    release_world.keep(ansible={"strategy": request.param})
    watch = StrategyWatch(request.param)
    watch.start()
    try:
        yield watch
    finally:
        watch.stop()
