"""One world per machine: a second checkout's world is refused at once, naming the first."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.sandbox import world as world_module
from tests.sandbox.errors import SandboxError
from tests.sandbox.procs import Started
from tests.sandbox.world import Part, World


@pytest.fixture
def claim_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "claim.json"
    monkeypatch.setattr(world_module, "CLAIM_FILE", path)
    return path


def running_world(directory: Path) -> World:
    """A world whose registry 'runs': this test process stands in for it."""
    marker = Path(sys.executable).name
    other = World(dir=directory, started={Part.REGISTRY: Started(pid=os.getpid(), marker=marker, log=directory / "r.log")})
    other.save()
    return other


def test_a_second_world_is_refused_naming_the_first(tmp_path: Path, claim_file: Path):
    first = running_world(tmp_path / "checkout-a" / ".sandbox")
    world_module._claim(first)

    with pytest.raises(SandboxError, match=r"another world is up on this machine: .*checkout-a/\.sandbox.*sandbox down --dir"):
        world_module._claim(World(dir=tmp_path / "checkout-b" / ".sandbox"))


def test_a_claim_left_by_a_world_that_is_down_is_taken_over(tmp_path: Path, claim_file: Path):
    gone = World(dir=tmp_path / "checkout-a" / ".sandbox")
    gone.save()  # nothing recorded as started: that world is down
    world_module._claim(gone)

    second = World(dir=tmp_path / "checkout-b" / ".sandbox")
    world_module._claim(second)

    assert str(second.dir) in claim_file.read_text()


def test_down_gives_the_claim_back(tmp_path: Path, claim_file: Path):
    mine = running_world(tmp_path / "checkout-a" / ".sandbox")
    world_module._claim(mine)

    world_module._unclaim(mine)

    assert not claim_file.exists()
