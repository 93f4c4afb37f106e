"""Zero hosts is an error, never a quiet success: exit 2 naming the inventory and the group.

These need no world: the inventory is refused before anything connects (a path that does
not exist) or Ansible runs on nobody (a group without hosts), through the real CLI and a
real ansible-runner.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from coordinator.errors import ExitCode
from tests.sandbox.coordinator_config import REPO_ROOT, write_sandbox_config

COMMANDS = {
    "rollback": ["rollback", "production", "--reason", "drill"],
    "lock status": ["lock", "status", "production"],
    "lock release": ["lock", "release", "production", "--lock-id", "0123456789abcdef"],
    "hosts check": ["hosts", "check", "production"],
}


@pytest.fixture
def missing_inventory(tmp_path: Path) -> tuple[Path, Path]:
    inventory = tmp_path / "no-such-inventory"
    return _config(tmp_path, inventory), inventory


@pytest.fixture
def empty_group(tmp_path: Path) -> tuple[Path, Path]:
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    (inventory / "hosts.yml").write_text("all:\n  children:\n    app:\n      hosts: {}\n    db:\n      hosts:\n        db1: {}\n")
    return _config(tmp_path, inventory), inventory


def _config(tmp_path: Path, production_inventory: Path) -> Path:
    environments = {
        "staging": {"inventory": str(REPO_ROOT / "inventory" / "sandbox-staging"), "url": "http://127.0.0.1:45080"},
        "production": {"inventory": str(production_inventory), "url": "http://127.0.0.1:45081"},
    }
    return write_sandbox_config(tmp_path / "coordinator.yml", tmp_path / "world", tmp_path / "state",
                                environments=environments)


def coordinator(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "coordinator", "-c", str(config), *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, check=False, timeout=300,
                          env={**os.environ, "COORDINATOR_OPERATOR": "ops"})


def audit_events(config: Path) -> list[str]:
    audit = config.parent / "state" / "audit.jsonl"
    return [json.loads(line)["event"] for line in audit.read_text().splitlines()] if audit.exists() else []


@pytest.mark.parametrize("command", COMMANDS)
def test_an_inventory_path_that_does_not_exist_is_exit_2_naming_it(missing_inventory, command):
    config, inventory = missing_inventory
    result = coordinator(config, *COMMANDS[command])
    assert result.returncode == ExitCode.USAGE, result.stdout + result.stderr
    error = result.stderr.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error: inventory ")
    assert f"{inventory} does not exist" in error[0] and "group 'app'" in error[0]
    assert "rolled back" not in result.stdout and "ready" not in result.stdout
    assert audit_events(config) == []


@pytest.mark.parametrize("command", COMMANDS)
def test_an_inventory_without_hosts_in_the_group_is_exit_2_naming_both(empty_group, command):
    config, inventory = empty_group
    result = coordinator(config, *COMMANDS[command])
    assert result.returncode == ExitCode.USAGE, result.stdout + result.stderr
    assert f"error: inventory {inventory} has no hosts in group 'app'" in result.stderr
    assert "rolled back" not in result.stdout
    assert audit_events(config) == [], "a rollback of nobody must not be audited as completed"


def test_plan_with_an_inventory_that_does_not_exist_is_exit_2(missing_inventory):
    config, inventory = missing_inventory
    result = coordinator(config, "plan", "1.0.0")
    assert result.returncode == ExitCode.USAGE, result.stdout + result.stderr
    assert f"{inventory} does not exist" in result.stderr


@pytest.mark.world
def test_a_release_whose_staging_inventory_has_no_app_hosts_stops_with_exit_2_before_deploying(release_world, tmp_path):
    from tests.sandbox.coordinator_config import sandbox_config

    rw = release_world
    inventory = tmp_path / "empty-staging"
    inventory.mkdir()
    (inventory / "hosts.yml").write_text("all:\n  children:\n    app:\n      hosts: {}\n")
    environments = sandbox_config(rw.world_dir, rw.state_dir)["environments"]
    environments["staging"]["inventory"] = str(inventory)
    rw.rewrite_config(environments=environments)
    result = rw.coordinator("release", "1.0.0")
    assert result.returncode == ExitCode.USAGE, result.stdout + result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: inventory {inventory} has no hosts in group 'app': add the environment's hosts to 'app' there "
        "(or point the environment's `inventory` at the right one)")
    events = [json.loads(line)["event"] for line in (rw.state_dir / "audit.jsonl").read_text().splitlines()]
    assert "build.completed" in events and "stage.deployed" not in events


def test_an_environment_that_allows_no_hosts_runs_on_nobody_without_error(empty_group):
    import yaml

    config, _ = empty_group
    data = yaml.safe_load(config.read_text())
    data["environments"]["production"]["allow_no_hosts"] = True
    config.write_text(yaml.safe_dump(data))
    result = coordinator(config, "lock", "status", "production")
    assert result.returncode == ExitCode.OK, result.stdout + result.stderr
