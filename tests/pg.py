"""Shared fixtures' helpers for team-mode tests: a real PostgreSQL cluster (tests.sandbox.postgres),
one fresh, migrated database per test, and login roles for people and jobs."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from coordinator.state.postgres import Database, migrate
from tests.sandbox.postgres import APP_ROLE, OWNER, PostgresCluster
from tests.unit.test_config import MINIMAL

REPO = Path(__file__).resolve().parents[1]

MEMBERS = ("ci_bot", "alice", "bob", "mallory", "dave")


def running_cluster() -> Iterator[PostgresCluster]:
    """Started once per session; stopped (and its files removed) however the session ends."""
    with PostgresCluster() as cluster:
        for role in MEMBERS:
            cluster.add_member(role)
        yield cluster


@dataclass
class TeamDatabase:
    """One migrated database in the shared cluster."""

    cluster: PostgresCluster
    name: str

    def dsn(self, role: str) -> str:
        return self.cluster.dsn_for(role, self.name)

    def connect(self, role: str) -> Database:
        return Database(self.dsn(role))

    def owner_sql(self, *statements: str) -> None:
        db = Database(self.dsn(OWNER), check_schema=False)
        try:
            for statement in statements:
                db.execute(statement)
        finally:
            db.close()


def fresh_database(cluster: PostgresCluster, *, migrated: bool = True) -> TeamDatabase:
    name = f"t_{uuid.uuid4().hex[:12]}"
    cluster.create_database(name)
    team = TeamDatabase(cluster, name)
    if migrated:
        db = Database(team.dsn(OWNER), check_schema=False)
        try:
            migrate(db, APP_ROLE)
        finally:
            db.close()
    return team


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
                              env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=60, check=False,
                              stdin=subprocess.DEVNULL)


@dataclass
class WorldMachine:
    """One installation against the world (its own directory, config and state dir) and who
    runs it: `name` is the operator label, `login` the database login its DSN uses, if any."""

    name: str
    config: Path
    state_dir: Path
    env: dict[str, str]
    login: str | None = None

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "coordinator", "-c", str(self.config), *args]

    def run(self, *args: str, operator: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              env={**self.env, "COORDINATOR_OPERATOR": operator or self.name}, timeout=900, check=False)

    def start(self, *args: str) -> subprocess.Popen[str]:
        """The command in the background, its output piped (a drill stops or kills it midway)."""
        return subprocess.Popen(self.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True,
                                env={**self.env, "COORDINATOR_OPERATOR": self.name})


def team_config(directory: Path, **overrides: Any) -> Path:
    data: dict[str, Any] = {**copy.deepcopy(MINIMAL), "state_dir": "state", "state": {"backend": "postgres"}}
    data.update(overrides)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "coordinator.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def machine_factory(root: Path) -> Callable[..., Machine]:
    """`make(name, dsn, **config)`: a coordinator installation in its own directory under `root`."""

    def make(name: str, dsn: str | None, **overrides: Any) -> Machine:
        directory = root / name
        team_config(directory, **overrides)
        # Not COORDINATOR_* and not a CI's run-id variable: a test that runs inside a CI job is no release in it.
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("COORDINATOR_") and key not in ("GITHUB_RUN_ID", "CI_PIPELINE_NUMBER")}
        env["PYTHONPATH"] = str(REPO)
        if dsn is not None:
            env["COORDINATOR_DATABASE_URL"] = dsn
        return Machine(directory, env)

    return make
