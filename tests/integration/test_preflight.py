"""`hosts check` and `plan` tell the operator, before anything moves, what is wrong and exit non-zero."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from coordinator.errors import ExitCode
from tests.sandbox.coordinator_config import REPO_ROOT
from tests.integration.conftest import ReleaseWorld

pytestmark = pytest.mark.world

PRODUCTION_INVENTORY = REPO_ROOT / "inventory" / "sandbox-production"


def production_inventory_copy(tmp_path: Path, **host_overrides: object) -> Path:
    """The sandbox production inventory with prod1's connection settings changed."""
    inventory = tmp_path / "inventory" / "production"
    shutil.copytree(PRODUCTION_INVENTORY, inventory)
    hosts_file = inventory / "hosts.yml"
    hosts = yaml.safe_load(hosts_file.read_text())
    prod1 = hosts["app"]["hosts"]["prod1"]
    for key in ("ansible_ssh_private_key_file", "ansible_ssh_common_args"):  # keep pointing at the world's keys
        prod1[key] = prod1[key].replace("{{ inventory_dir }}/../..", str(REPO_ROOT))
    prod1.update(host_overrides)
    hosts_file.write_text(yaml.safe_dump(hosts), encoding="utf-8")
    return inventory


def use_production_inventory(rw: ReleaseWorld, inventory: Path) -> None:
    config = yaml.safe_load(rw.config.read_text())
    config["environments"]["production"]["inventory"] = str(inventory)
    rw.config.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def closed_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_hosts_check_reports_every_finding_of_a_ready_host(release_world: ReleaseWorld):
    result = release_world.coordinator("hosts", "check", "production", "--json")

    assert result.returncode == 0, result.stdout + result.stderr
    [prod1] = json.loads(result.stdout)
    assert prod1["host"] == "prod1" and prod1["reachable"] and prod1["ready"]
    assert [item["check"] for item in prod1["findings"]] == [
        "ssh", "python", "docker engine", "state directory"]
    assert prod1["lock"] == "free"


def test_a_host_python_without_any_library_is_ready(release_world: ReleaseWorld, tmp_path: Path):
    """The roles use the standard library only: Python 3 and a Docker engine are all a host needs."""
    bare_venv = tmp_path / "bare-python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare_venv)], check=True, timeout=120)
    use_production_inventory(release_world, production_inventory_copy(
        tmp_path, ansible_python_interpreter=str(bare_venv / "bin" / "python")))

    result = release_world.coordinator("hosts", "check", "production", "--json")

    assert result.returncode == 0, result.stdout + result.stderr
    [prod1] = json.loads(result.stdout)
    assert prod1["ready"], prod1


def test_hosts_check_names_a_docker_engine_that_does_not_answer_and_exits_16(release_world: ReleaseWorld, tmp_path: Path):
    missing = tmp_path / "no-docker.sock"
    use_production_inventory(release_world, production_inventory_copy(tmp_path, docker_release_docker_socket=str(missing)))

    result = release_world.coordinator("hosts", "check", "production")

    assert result.returncode == ExitCode.HOST_NOT_READY, result.stdout + result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: production: prod1: docker engine:"), error
    assert str(missing) in error, error


def test_hosts_check_names_an_unreachable_host_and_exits_15(release_world: ReleaseWorld, tmp_path: Path):
    port = closed_loopback_port()
    use_production_inventory(release_world, production_inventory_copy(tmp_path, ansible_port=port))

    result = release_world.coordinator("hosts", "check", "production")

    assert result.returncode == ExitCode.HOST_UNREACHABLE, result.stdout + result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: production: prod1: ssh: unreachable:"), error
    assert str(port) in error or "Connection refused" in error, error


def test_a_host_whose_key_is_not_the_pinned_one_is_refused(release_world: ReleaseWorld, tmp_path: Path):
    """ansible-runner turns host key checking off by default; we must not deploy to a host we cannot identify."""
    other_key = tmp_path / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)], check=True, timeout=60)
    known_hosts = tmp_path / "known_hosts"
    key_type, key_data = (tmp_path / "other_host_key.pub").read_text().split()[:2]
    known_hosts.write_text(f"[127.0.0.1]:45022 {key_type} {key_data}\n")
    inventory = production_inventory_copy(tmp_path)
    hosts_file = inventory / "hosts.yml"
    hosts = yaml.safe_load(hosts_file.read_text())
    prod1 = hosts["app"]["hosts"]["prod1"]
    prod1["ansible_ssh_common_args"] = (f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes "
                                       "-o IdentitiesOnly=yes")
    prod1["ansible_control_path_dir"] = str(tmp_path / "cp")  # no master left by another test to ride on
    hosts_file.write_text(yaml.safe_dump(hosts), encoding="utf-8")
    use_production_inventory(release_world, inventory)

    result = release_world.coordinator("hosts", "check", "production")

    assert result.returncode == ExitCode.HOST_UNREACHABLE, result.stdout + result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: production: prod1: ssh: unreachable:"), error
    assert "Host key verification failed" in error, error


def test_plan_exits_3_naming_the_failed_check(release_world: ReleaseWorld):
    result = release_world.coordinator("plan", "9.9.9")

    assert result.returncode == ExitCode.CHECK_FAILED, result.stdout + result.stderr
    assert "NOT ready" in result.stdout
    assert "changelog" in result.stderr.strip().splitlines()[-1]
