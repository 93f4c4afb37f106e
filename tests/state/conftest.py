from __future__ import annotations

import copy
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.postgres import PostgresCluster
from tests.pg import TeamDatabase, fresh_database, running_cluster
from tests.unit.test_config import MINIMAL

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    yield from running_cluster()


@pytest.fixture
def team_db(pg_cluster: PostgresCluster) -> TeamDatabase:
    return fresh_database(pg_cluster)


@pytest.fixture
def bare_db(pg_cluster: PostgresCluster) -> TeamDatabase:
    """A database without the coordinator schema."""
    return fresh_database(pg_cluster, migrated=False)


@dataclass
class Machine:
    """One coordinator installation: its own working directory, config and environment."""

    dir: Path
    env: dict[str, str]

    @property
    def config(self) -> Path:
        return self.dir / "coordinator.yml"

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "coordinator", "-c", str(self.config), *args], cwd=self.dir,
                              env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=60, check=False)


def team_config(directory: Path, **overrides: Any) -> Path:
    data: dict[str, Any] = {**copy.deepcopy(MINIMAL), "state_dir": "state", "state": {"backend": "postgres"}}
    data.update(overrides)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "coordinator.yml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def machine(tmp_path: Path) -> Any:
    """`machine(name, dsn, **config)`: a coordinator installation in its own directory."""

    def make(name: str, dsn: str | None, **overrides: Any) -> Machine:
        directory = tmp_path / name
        team_config(directory, **overrides)
        env = {key: value for key, value in os.environ.items() if not key.startswith("COORDINATOR_")}
        env["PYTHONPATH"] = str(REPO)
        if dsn is not None:
            env["COORDINATOR_DATABASE_URL"] = dsn
        return Machine(directory, env)

    return make
