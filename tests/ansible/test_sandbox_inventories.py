"""The committed sandbox inventories work against the local world (``python -m tests.sandbox up``).

They are exercised with a test container name, port and state directory given as extra
vars, so the world's own ``sample-staging`` / ``sample-prod1`` containers are not touched;
what is tested is the inventory itself: the connection (local, or SSH to the sandbox
sshd with its pinned host key), the interpreter, and the shared group vars.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ansible.conftest import (
    REPO,
    Images,
    deploy_vars,
    docker_inspect,
    run_playbook,
    running_digest,
)

pytestmark = pytest.mark.world

WORLD = REPO / ".sandbox" / "world.json"
TEST_PORTS = {"sandbox-staging": 46180, "sandbox-production": 46181}


def _sshd_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 45022), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(params=sorted(TEST_PORTS))
def sandbox_inventory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, dict[str, object]]]:
    """A committed sandbox inventory and extra vars that point it at a test container."""
    if not WORLD.exists():
        pytest.skip("the sandbox world is not up (python -m tests.sandbox up)")
    if request.param == "sandbox-production" and not _sshd_answers():
        pytest.skip("the sandbox sshd on 127.0.0.1:45022 does not answer")
    port = TEST_PORTS[request.param]
    container = f"anstest-{request.param}"
    overrides: dict[str, object] = {
        "docker_release_container_name": container,
        "docker_release_published_port": port,
        "release_health_base_url": f"http://127.0.0.1:{port}",
        "docker_release_state_root": str(tmp_path / "state"),
        "deploy_lock_root": str(tmp_path / "locks"),
        "docker_release_env_file": str(tmp_path / "state" / container / "app.env"),
        # Not the sandbox label: the world's reset removes every container carrying it,
        # and it may run while these tests do.
        "docker_release_labels": {"coordinator.test": "true"},
    }
    yield REPO / "inventory" / request.param, overrides
    subprocess.run(["docker", "rm", "--force", container], capture_output=True, check=False, timeout=60)


def test_status_reaches_the_sandbox_host(sandbox_inventory: tuple[Path, dict[str, object]]) -> None:
    inventory, overrides = sandbox_inventory

    run = run_playbook("status.yml", inventory, overrides)

    assert not run.failed, str(run)
    assert len(run.hosts) == 1


def test_deploy_and_manual_rollback_through_the_sandbox_inventory(
    sandbox_inventory: tuple[Path, dict[str, object]], images: Images
) -> None:
    inventory, overrides = sandbox_inventory
    old, new = images.sample["1.0.0"], images.sample["2.0.0"]
    for release in (old, new):
        deploy = run_playbook("deploy.yml", inventory, {**deploy_vars(release), **overrides})
        assert not deploy.failed, str(deploy)

    rollback = run_playbook("rollback.yml", inventory, overrides)

    assert not rollback.failed, str(rollback)
    container = str(overrides["docker_release_container_name"])
    assert running_digest(container) == old.digest
    assert docker_inspect(container)["HostConfig"]["PortBindings"]["8080/tcp"][0]["HostIp"] == "127.0.0.1"
