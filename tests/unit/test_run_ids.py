"""Host lock ids name the run: a second command never enters the first one's lock, while a
crashed run's lock on this machine is still recognized and re-entered."""

from __future__ import annotations

import subprocess
import sys

from coordinator.context import new_run_id
from coordinator.locks import lock_run_gone, run_lock_id


def test_two_commands_get_two_lock_ids_for_the_same_release() -> None:
    assert run_lock_id("abc", new_run_id()) != run_lock_id("abc", new_run_id())


def test_a_live_run_of_this_machine_is_not_gone_so_its_lock_is_not_entered() -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        machine = new_run_id().split(".")[0]
        assert not lock_run_gone(f"abc.{machine}.{other.pid}.ffffff", new_run_id())
    finally:
        other.kill()
        other.wait(timeout=10)
    assert lock_run_gone(f"abc.{machine}.{other.pid}.ffffff", new_run_id())  # crashed: re-entered as before


def test_another_machines_run_is_never_assumed_gone() -> None:
    assert not lock_run_gone("abc.elsewhere.1.ffffff", new_run_id())


def test_a_per_release_id_from_before_is_re_entered_as_it_always_was() -> None:
    assert lock_run_gone("0123456789abcdef", new_run_id())
