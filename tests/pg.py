"""Shared fixtures' helpers for team-mode tests: a real PostgreSQL cluster (sandbox.postgres),
one fresh, migrated database per test, and login roles for people and jobs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from coordinator.state.postgres import Database, migrate
from sandbox.postgres import APP_ROLE, OWNER, PostgresCluster

MEMBERS = ("ci_bot", "alice", "bob", "mallory")


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
