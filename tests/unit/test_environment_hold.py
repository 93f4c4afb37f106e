"""The environment deploy lock a run holds across its stages (`coordinator.driver._EnvironmentHold`).

Promote and verify both act on production: the hold must not let go between them, or a
manual rollback could start on a fleet nobody has verified yet while verify judges it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from coordinator.driver import _EnvironmentHold


class Locks:
    """Records every take and give-back of an environment lock, in order."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def taker(self, environment: str):  # type: ignore[no-untyped-def]
        @contextmanager
        def held(_environment: str) -> Iterator[None]:
            self.events.append(f"take {environment}")
            try:
                yield
            finally:
                self.events.append(f"give {environment}")
        return held


def walk(locks: Locks, environments: list[str | None]) -> None:
    with _EnvironmentHold() as hold:
        for environment in environments:
            hold.move_to(environment, locks.taker(environment or "none"))
            locks.events.append(f"run on {environment}")


def test_promote_and_verify_keep_one_hold_of_production() -> None:
    locks = Locks()
    walk(locks, [None, "staging", None, "production", "production", None])
    assert locks.events == ["run on None", "take staging", "run on staging", "give staging", "run on None",
                            "take production", "run on production", "run on production", "give production",
                            "run on None"]


def test_the_hold_is_given_back_when_a_stage_fails() -> None:
    locks = Locks()
    with pytest.raises(RuntimeError), _EnvironmentHold() as hold:
        hold.move_to("production", locks.taker("production"))
        raise RuntimeError("promote failed")
    assert locks.events == ["take production", "give production"]


def test_a_refused_lock_leaves_nothing_held() -> None:
    locks = Locks()

    @contextmanager
    def refused(_environment: str) -> Iterator[None]:
        raise PermissionError("held by a rollback")
        yield

    with pytest.raises(PermissionError), _EnvironmentHold() as hold:
        hold.move_to("staging", locks.taker("staging"))
        hold.move_to("production", refused)
    assert locks.events == ["take staging", "give staging"]
