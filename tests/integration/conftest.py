"""The real local world for integration tests: one per session, reset for every test."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.sandbox.coordinator_config import REPO_ROOT, write_sandbox_config
from tests.sandbox.forge_seed import ensure_label, forge_client, wait_for_green
from tests.sandbox.receiver import Receiver

WORLD_DIR = REPO_ROOT / ".sandbox"


@pytest.fixture(scope="session")
def world():
    from tests.sandbox.world import up

    return up(WORLD_DIR)


@dataclass
class ReleaseWorld:
    """One test's view: a fresh app checkout, forge state, state dir, config and chat receiver."""

    world_dir: Path
    config: Path
    state_dir: Path
    checkout: Path
    forge: httpx.Client
    chat: Receiver
    outputs: list[str] = field(default_factory=list)
    forge_url: str = "http://127.0.0.1:45300"
    kept: dict[str, Any] = field(default_factory=dict)  # config sections every rewrite keeps (`keep`)

    def coordinator(self, *args: str, operator: str = "release-manager", env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "coordinator", "-c", str(self.config), *args]
        completed = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False,
                                   env={**os.environ, "COORDINATOR_OPERATOR": operator, **(env or {})}, timeout=900)
        self.outputs.append(completed.stdout + completed.stderr)
        return completed

    def head(self) -> str:
        return subprocess.run(["git", "-C", str(self.checkout), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()

    def rewrite_config(self, **overrides) -> None:
        write_sandbox_config(self.config, self.world_dir, self.state_dir, **{**self.kept, **overrides})

    def keep(self, **sections: Any) -> None:
        """Set top-level config `sections` now and in every later rewrite (a drill's ansible.strategy)."""
        self.kept.update(sections)
        data = yaml.safe_load(self.config.read_text(encoding="utf-8"))
        self.config.write_text(yaml.safe_dump({**data, **sections}, sort_keys=False), encoding="utf-8")


@pytest.fixture
def release_world(world, tmp_path) -> Iterator[ReleaseWorld]:
    from tests.sandbox.world import reset

    reset(world)
    state_dir = tmp_path / "state"
    with Receiver() as chat, forge_client(WORLD_DIR) as forge:
        config = write_sandbox_config(
            tmp_path / "coordinator.yml", WORLD_DIR, state_dir,
            notify={"announce": [chat.url("json", "announce")], "escalate": [chat.url("json", "escalate")]},
        )
        ensure_label(forge)
        rw = ReleaseWorld(WORLD_DIR, config, state_dir, WORLD_DIR / "work" / "sample", forge, chat)
        wait_for_green(forge, rw.head())
        yield rw


def running_digest(container: str) -> str:
    """The repo digest of the image the container runs, from `docker inspect`."""
    image_id = subprocess.run(["docker", "inspect", "--format", "{{.Image}}", container], capture_output=True, text=True,
                              check=True).stdout.strip()
    digests = subprocess.run(["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", image_id],
                             capture_output=True, text=True, check=True).stdout.strip()
    import json

    return json.loads(digests)[0].split("@", 1)[1]
