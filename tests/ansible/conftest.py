"""Fixtures for the Ansible tests: a throwaway registry, images, and loopback inventories.

Everything runs on the local Docker engine and binds to 127.0.0.1 in the 46000-46999
range, so it never collides with the sandbox world (45000-45999). Each test gets its
own inventory whose host state (release records, env files, locks) lives under the
test's tmp_path, and its containers are removed afterwards.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ansible import ansible_world

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
REGISTRY_PORT = 46000
FIRST_APP_PORT = 46100
# Bounds every playbook run: the health deadline is 300 s, and an early failure must
# come much sooner; a run hitting this bound is a failed test, not a hang.
PLAYBOOK_TIMEOUT_S = 240
CANARY_SECRET = "canary-9f3b2c71-never-print-me"

_ports = itertools.count(FIRST_APP_PORT)


def ansible_env(**extra: str) -> dict[str, str]:
    """Environment for ansible-playbook and friends: the venv first on PATH, JSON output."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["ANSIBLE_NOCOLOR"] = "1"
    env.update(extra)
    return env


@dataclass
class PlaybookRun:
    """The outcome of one ansible-playbook run, read from the JSON callback."""

    returncode: int
    output: str
    stats: dict[str, dict[str, int]]
    hosts: dict[str, dict[str, Any]]
    failures: list[str] = field(default_factory=list)
    # Task name -> the hosts it ran on (not skipped), in play order.
    ran: dict[str, list[str]] = field(default_factory=dict)
    # Host -> the modules that ran on the host itself (not ansible.builtin's controller-side
    # actions), in order: the remote calls the host paid for.
    remote_calls: dict[str, list[str]] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.returncode != 0

    def __str__(self) -> str:
        """Short enough for an assertion message: the return code and each failed task."""
        return f"rc={self.returncode}; failed tasks: {self.failures or self.output[-3000:]}"


def _failed_tasks(document: dict[str, Any]) -> list[str]:
    found = []
    for play in document.get("plays", []):
        for task in play.get("tasks", []):
            for host, result in task.get("hosts", {}).items():
                if result.get("failed") or result.get("unreachable"):
                    found.append(f"{host}: {task['task']['name']}: {result.get('msg', '')}")
    return found


def _hosts_per_task(document: dict[str, Any]) -> dict[str, list[str]]:
    ran: dict[str, list[str]] = {}
    for play in document.get("plays", []):
        for task in play.get("tasks", []):
            hosts = [host for host, result in task.get("hosts", {}).items() if not result.get("skipped")]
            ran.setdefault(task["task"]["name"], []).extend(hosts)
    return ran


def _remote_calls(document: dict[str, Any]) -> dict[str, list[str]]:
    calls: dict[str, list[str]] = {}
    for play in document.get("plays", []):
        for task in play.get("tasks", []):
            for host, result in task.get("hosts", {}).items():
                action = str(result.get("action", ""))
                if action and not action.startswith("ansible.builtin.") and not result.get("skipped"):
                    calls.setdefault(host, []).append(action)
    return calls


def run_playbook(playbook: str, inventory: Path, extra_vars: dict[str, Any] | None = None,
                 options: tuple[str, ...] = (), env: dict[str, str] | None = None) -> PlaybookRun:
    """Run ``ansible-playbook -i inventory playbooks/<playbook> [options]`` from the repo root.

    `env` adds to the controller's environment (the coordinator hands registry credentials over that way).
    """
    argv = [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), f"playbooks/{playbook}", *options]
    if extra_vars:
        argv += ["-e", json.dumps(extra_vars)]
    result = subprocess.run(
        argv,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=PLAYBOOK_TIMEOUT_S,
        env=ansible_env(
            ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
            ANSIBLE_SHOW_CUSTOM_STATS="true",
            SAMPLE_API_SECRET=CANARY_SECRET,
            **(env or {}),
        ),
        check=False,
    )
    try:
        document = json.loads(result.stdout)
    except json.JSONDecodeError:
        document = {}
    return PlaybookRun(
        returncode=result.returncode,
        output=result.stdout + result.stderr,
        stats=document.get("stats", {}),
        hosts=document.get("global_custom_stats", {}).get("coordinator_hosts", {}),
        failures=_failed_tasks(document),
        ran=_hosts_per_task(document),
        remote_calls=_remote_calls(document),
    )


def docker_inspect(name: str) -> dict[str, Any]:
    out = subprocess.run(["docker", "inspect", name], capture_output=True, text=True, check=True, timeout=30).stdout
    return json.loads(out)[0]


def container_exists(name: str) -> bool:
    return subprocess.run(["docker", "inspect", name], capture_output=True, check=False, timeout=30).returncode == 0


def running_digest(container: str) -> str:
    """The registry digest of the image the container really runs (via its image ID)."""
    image = docker_inspect(docker_inspect(container)["Image"])
    return image["RepoDigests"][0].split("@", 1)[1]


@dataclass
class Images:
    """Pushed test images by version: ``sample`` (good, exiting 3.0.0, /health 404 4.0.0) and ``fleet`` (refusing)."""

    sample: dict[str, ansible_world.Image]
    fleet: dict[str, ansible_world.Image]


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Images]:
    root = tmp_path_factory.mktemp("registry")
    registry = ansible_world.start_registry(root, REGISTRY_PORT)
    try:
        built = Images(
            sample={
                "1.0.0": ansible_world.build_image(registry, "anstest/sample", "1.0.0"),
                "2.0.0": ansible_world.build_image(registry, "anstest/sample", "2.0.0"),
                "3.0.0": ansible_world.build_image(registry, "anstest/sample", "3.0.0", "exits"),
                "4.0.0": ansible_world.build_image(registry, "anstest/sample", "4.0.0", "broken-health"),
            },
            fleet={
                "1.0.0": ansible_world.build_image(registry, "anstest/fleet", "1.0.0", "refuses"),
                "2.0.0": ansible_world.build_image(registry, "anstest/fleet", "2.0.0", "refuses"),
            },
        )
        yield built
    finally:
        ansible_world.stop_registry(root)


@dataclass
class Inventory:
    """A loopback inventory in tmp_path: hosts on ansible_connection local."""

    path: Path
    state_root: Path
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def container(self, host: str) -> str:
        return self.hosts[host]["docker_release_container_name"]

    def record(self, host: str) -> dict[str, Any]:
        return json.loads((self.state_root / self.container(host) / "release.json").read_text())

    def lock_dir(self, host: str) -> Path:
        return self.state_root / "locks" / f"{self.container(host)}.lock"


class InventoryFactory:
    """Writes loopback inventories under ``root`` and removes their containers afterwards."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.made: list[Inventory] = []

    def __call__(self, names: list[str], host_vars: dict[str, dict[str, Any]] | None = None) -> Inventory:
        path = self.root / f"inventory-{len(self.made)}"
        (path / "group_vars").mkdir(parents=True)
        state_root = path / "state"
        hosts: dict[str, dict[str, Any]] = {}
        for name in names:
            port = next(_ports)
            hosts[name] = {
                "ansible_connection": "local",
                "docker_release_container_name": f"anstest-{name}-{port}",
                "docker_release_published_port": port,
                "release_health_base_url": f"http://127.0.0.1:{port}",
                **(host_vars or {}).get(name, {}),
            }
        (path / "hosts.yml").write_text(yaml.safe_dump({"app": {"hosts": hosts}}))
        group_vars = {
            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
            "docker_release_bind_address": "127.0.0.1",
            "docker_release_stop_timeout": 2,
            "docker_release_state_root": str(state_root),
            "docker_release_labels": {"coordinator.test": "true"},
            "deploy_lock_root": str(state_root / "locks"),
            "deploy_lock_name": "{{ docker_release_container_name }}",
            "docker_release_env": {
                "SAMPLE_API_SECRET": "{{ lookup('ansible.builtin.env', 'SAMPLE_API_SECRET', default='none') }}",
            },
        }
        (path / "group_vars" / "all.yml").write_text(yaml.safe_dump(group_vars))
        inventory = Inventory(path=path, state_root=state_root, hosts=hosts)
        self.made.append(inventory)
        return inventory

    def remove_containers(self) -> None:
        names = [inventory.container(host) for inventory in self.made for host in inventory.hosts]
        if names:
            subprocess.run(["docker", "rm", "--force", *names], capture_output=True, check=False, timeout=120)


@pytest.fixture
def make_inventory(tmp_path: Path) -> Iterator[InventoryFactory]:
    """Factory for inventories that live as long as one test."""
    factory = InventoryFactory(tmp_path)
    yield factory
    factory.remove_containers()


@pytest.fixture(scope="module")
def make_shared_inventory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InventoryFactory]:
    """Factory for inventories shared by the tests of one module (read-only checks)."""
    factory = InventoryFactory(tmp_path_factory.mktemp("shared"))
    yield factory
    factory.remove_containers()


def deploy_vars(image: ansible_world.Image, **extra: Any) -> dict[str, Any]:
    """The extra vars the coordinator passes to deploy.yml (docs/CONTRACTS.md section 5)."""
    return {
        "docker_release_image": image.name,
        "docker_release_digest": image.digest,
        "docker_release_version": image.version,
        "docker_release_deployed_by": "pytest",
        "docker_release_release_id": "test-release",
        "release_health_interval": 0.5,
        **extra,
    }
