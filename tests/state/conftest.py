"""PostgreSQL-state fixtures: one real cluster per session, a fresh database per test, and
coordinator "machines" (own directory, config and DSN) that run the CLI as a subprocess."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sandbox.postgres import PostgresCluster
from tests.pg import TeamDatabase, fresh_database, machine_factory, running_cluster


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


@pytest.fixture
def machine(tmp_path: Path) -> Any:
    """`machine(name, dsn, **config)`: a coordinator installation in its own directory."""
    return machine_factory(tmp_path)
