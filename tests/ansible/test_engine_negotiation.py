"""The hosts' Docker client negotiates its API version: the real engine, Engine 29 and a too-old engine.

The Engine 29 and too-old engines are tests/sandbox/engine_proxy.py in front of the real engine's
socket: their version answers and refusals are those engines', the containers are real.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sandbox.engine_proxy import EngineProxy
from tests.ansible.conftest import (
    Images,
    InventoryFactory,
    container_exists,
    deploy_vars,
    run_playbook,
    running_digest,
)
from tests.unit.test_engine_api_version import engine as docker_engine

REAL_SOCKET = "/var/run/docker.sock"


@pytest.fixture
def engine29(tmp_path: Path) -> Iterator[EngineProxy]:
    with EngineProxy(tmp_path / "engine29.sock", "engine29", REAL_SOCKET) as proxy:
        yield proxy


@pytest.fixture
def too_old(tmp_path: Path) -> Iterator[EngineProxy]:
    with EngineProxy(tmp_path / "too-old.sock", "too-old", REAL_SOCKET) as proxy:
        yield proxy


def _raw_get(socket_path: Path, path: str) -> tuple[int, dict]:
    class Connection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(10)
            self.sock.connect(str(socket_path))

    connection = Connection("localhost", timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_the_real_engine_is_spoken_to_in_the_highest_version_both_know() -> None:
    server_api = subprocess.run(["docker", "version", "--format", "{{.Server.APIVersion}}"], capture_output=True,
                                text=True, check=True, timeout=30).stdout.strip()
    engine = docker_engine.Engine(REAL_SOCKET, timeout=10)

    expected = min(docker_engine.parse_api_version(server_api), docker_engine.MAX_API)
    assert engine.api_version == docker_engine.format_api_version(expected)
    assert engine.inspect_container("no-such-container-for-negotiation") is None  # a versioned call the engine accepts


def test_the_engine29_stand_in_refuses_the_old_fixed_client_version(engine29: EngineProxy) -> None:
    """What the hosts' client met before it negotiated: Engine 29 refuses API 1.41 outright."""
    status, body = _raw_get(engine29.socket_path, "/v1.41/version")
    assert status == 400
    assert body["message"] == ("client version 1.41 is too old. Minimum supported API version is 1.44, "
                               "please upgrade your client to a newer version")
    status, body = _raw_get(engine29.socket_path, "/version")
    assert status == 200 and (body["ApiVersion"], body["MinAPIVersion"]) == ("1.52", "1.44")


def test_a_deploy_behind_engine29_speaks_1_52_and_runs_the_release(
        engine29: EngineProxy, images: Images, make_inventory: InventoryFactory) -> None:
    image = images.sample["1.0.0"]
    inventory = make_inventory(["web"], {"web": {"docker_release_docker_socket": str(engine29.socket_path)}})

    run = run_playbook("deploy.yml", inventory.path, deploy_vars(image))

    assert not run.failed, str(run)
    assert running_digest(inventory.container("web")) == image.digest
    spoken = set(engine29.versions_seen)
    assert spoken == {"", "1.52"}, spoken  # the unversioned /version, then 1.52 only


def test_a_deploy_behind_an_engine_too_old_fails_naming_both_versions_and_changes_nothing(
        too_old: EngineProxy, images: Images, make_inventory: InventoryFactory) -> None:
    inventory = make_inventory(["web"], {"web": {"docker_release_docker_socket": str(too_old.socket_path)}})

    run = run_playbook("deploy.yml", inventory.path, deploy_vars(images.sample["1.0.0"]))

    assert run.failed
    failure = " ".join(run.failures)
    assert "19.03.15" in failure and "1.40" in failure and "1.41" in failure, failure
    assert "upgrade the engine" in failure, failure
    assert set(too_old.versions_seen) == {""}, "nothing but the unversioned /version was asked"
    assert not container_exists(inventory.container("web"))


def test_a_deploy_behind_an_engine_past_our_newest_version_fails_saying_upgrade_coordinator(
        tmp_path: Path, images: Images, make_inventory: InventoryFactory) -> None:
    with EngineProxy(tmp_path / "future.sock", "future", REAL_SOCKET) as future:
        inventory = make_inventory(["web"], {"web": {"docker_release_docker_socket": str(future.socket_path)}})

        run = run_playbook("deploy.yml", inventory.path, deploy_vars(images.sample["1.0.0"]))

    assert run.failed
    failure = " ".join(run.failures)
    assert "40.0.0" in failure and "1.53" in failure and "1.52" in failure and "upgrade coordinator" in failure, failure
    assert set(future.versions_seen) == {""}
    assert not container_exists(inventory.container("web"))


def test_a_module_call_negotiates_once_however_many_engine_objects_it_makes(engine29: EngineProxy) -> None:
    """A health wait makes an Engine per poll; GET /version is asked once per socket per call
    (Docker 20.10 answers it by running `runc --version` and `docker-init --version`)."""
    first = docker_engine.Engine(str(engine29.socket_path), timeout=10)
    second = docker_engine.Engine(str(engine29.socket_path), timeout=10)

    assert first.inspect_container("no-such-container-for-negotiation") is None
    assert second.inspect_container("no-such-container-for-negotiation") is None

    assert second.api_version == "1.52"
    assert engine29.versions_seen.count("") == 1, engine29.versions_seen
    assert engine29.versions_seen.count("1.52") == 2, engine29.versions_seen
