"""Docker engines other than the world's, through the CLI: Engine 29 deploys, a too-old engine is named (exit 16).

The engines are tests/sandbox/engine_proxy.py in front of the world's real engine: the version
answers and refusals are those engines', the containers and the deploy are real.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from coordinator.errors import ExitCode
from tests.sandbox.coordinator_config import STAGING_URL
from tests.sandbox.engine_proxy import EngineProxy
from tests.drills.conftest import (
    audit_events,
    configure,
    container_exists,
    inventory_copy,
    lock_status,
    one_line_error,
)
from tests.integration.conftest import ReleaseWorld

pytestmark = pytest.mark.world

STAGING = "sample-staging"


def stage_events(rw: ReleaseWorld) -> list[tuple[str, str | None]]:
    return [(e["event"], e.get("outcome")) for e in audit_events(rw) if e.get("environment") == "staging"]


def test_a_release_to_a_host_on_engine29_deploys_speaking_api_1_52(release_world: ReleaseWorld, tmp_path: Path) -> None:
    rw = release_world
    with EngineProxy(tmp_path / "engine29.sock", "engine29") as engine29:
        configure(rw, staging=inventory_copy(tmp_path, "staging", docker_release_docker_socket=str(engine29.socket_path)))

        result = rw.coordinator("release", "1.0.0")

    assert result.returncode == ExitCode.AWAITING_APPROVAL, result.stdout + result.stderr
    assert ("stage.deployed", "passed") in stage_events(rw)
    assert httpx.get(f"{STAGING_URL}/version", timeout=10).text.strip() == "1.0.0"
    assert set(engine29.versions_seen) == {"", "1.52"}, engine29.versions_seen


def test_a_host_on_an_engine_too_old_stops_the_release_naming_both_versions(release_world: ReleaseWorld, tmp_path: Path) -> None:
    rw = release_world
    with EngineProxy(tmp_path / "too-old.sock", "too-old") as too_old:
        configure(rw, staging=inventory_copy(tmp_path, "staging", docker_release_docker_socket=str(too_old.socket_path)))

        result = rw.coordinator("release", "1.0.0")

    assert result.returncode == ExitCode.HOST_NOT_READY, result.stdout + result.stderr
    error = one_line_error(result)
    assert "Docker engine 19.03.15" in error and "API 1.12 to 1.40" in error and "needs API 1.41 or newer" in error, error
    assert "upgrade the engine" in error, error
    assert ("stage.failed", "host_not_ready") in stage_events(rw)
    assert not container_exists(STAGING)
    hosts = lock_status(rw, "staging")
    assert hosts and not any(info.get("held") for info in hosts.values()), hosts


def test_hosts_check_names_an_engine_too_old_and_exits_16(release_world: ReleaseWorld, tmp_path: Path) -> None:
    rw = release_world
    with EngineProxy(tmp_path / "too-old.sock", "too-old") as too_old:
        configure(rw, staging=inventory_copy(tmp_path, "staging", docker_release_docker_socket=str(too_old.socket_path)))

        result = rw.coordinator("hosts", "check", "staging")

    assert result.returncode == ExitCode.HOST_NOT_READY, result.stdout + result.stderr
    error = one_line_error(result)
    assert "docker engine:" in error and "too old" in error and "1.40" in error and "1.41" in error, error
    assert "systemctl start docker" not in error, "it answers: starting it is not the fix"
