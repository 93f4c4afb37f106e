"""Our deploy.yml, the peer playbook and the shell recipe side by side on N loopback hosts.

Each approach replaces its own containers (own names and ports, so one never inherits
another's state), alternating between the two good images so every run really replaces
the container. Every measured run starts cold: a fresh ControlPath directory, and each
fleet host its own ControlPath in it, so each host has its own SSH connection (as real
hosts would) instead of sharing one multiplexed master; the masters are stopped after the
run and their CPU counted (bench/cpu.py).
"""

from __future__ import annotations

import shutil
import sys
import statistics
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from bench import cpu
from bench.host_python import host_python
from bench.images import BenchImages
from bench.recipe import remove_container, run_recipe
from coordinator.ansible import PlaybookResult, run_playbook
from coordinator.strategy import AnsibleStrategy
from tests.sandbox.coordinator_config import IMAGE, REPO_ROOT

PRODUCTION = REPO_ROOT / "inventory" / "sandbox-production"
PEER_DIR = REPO_ROOT / "bench" / "peer"
FLOOR_DIR = REPO_ROOT / "bench" / "floor"
SSH_DIR = REPO_ROOT / ".sandbox" / "ssh"
HEALTH_INTERVAL_S = 0.25
APPROACHES = ("deploy", "peer", "recipe")
# Measured only when asked (--approaches): our deploy.yml under the opt-in Mitogen strategy
# (config ansible.strategy: mitogen), on containers of its own so it really replaces one too;
# the Ansible floor (bench/floor/playbooks/ping.yml: one ping per host through ansible-runner,
# over a cold connection, deploying nothing), which the 1-host deploy scenario always measures;
# and our deploy.yml in one batch (`deploy_serial: 100%`, no canary): the peer's batching, so a
# fleet compares the two playbooks apart from the canary and batch sizes ours chooses by default.
OPTIONAL_APPROACHES = ("mitogen", "floor", "unbatched")
ALL_APPROACHES = APPROACHES + OPTIONAL_APPROACHES
# Host n of an approach publishes on PORT_BASE[approach] + n (n = 1..20); the floor publishes nothing.
PORT_BASE = {"deploy": 45400, "peer": 45430, "recipe": 45460, "mitogen": 45490, "floor": 45520, "unbatched": 45550}


def deploy_vars(digest: str, version: str, *, lock: bool = False) -> dict[str, Any]:
    """The extra vars deploy.yml gets; with `lock`, also the lock vars the coordinator passes.

    The bench's images are built the same way every time, so their digests recur: a host's
    record may mark one bad (the rollback scenario does, and so do other worktrees' tests on
    this machine's shared host records). The bench allows it, as the operator's --force does;
    the refusal itself is tested in tests/, not measured here.
    """
    extravars: dict[str, Any] = {
        "docker_release_image": IMAGE, "docker_release_digest": digest, "docker_release_version": version,
        "docker_release_deployed_by": "bench", "docker_release_release_id": f"bench-{version}",
        "release_health_timeout": 120, "release_health_interval": HEALTH_INTERVAL_S,
        "docker_release_allow_bad_digest": True,
    }
    if lock:
        # As coordinator/stages/deploy.py: deploy.yml takes the lock on every host and gives it back.
        extravars |= {"deploy_lock_id": "bench", "deploy_lock_acquire": True, "deploy_lock_owner": "bench",
                      "deploy_lock_reason": "bench"}
    return extravars


def playbook(playbook_name: str, inventory: Path, extravars: dict[str, Any], *, ansible_dir: Path = REPO_ROOT,
             control_dir: Path | None = None, extra_env: dict[str, str] | None = None,
             strategy: AnsibleStrategy = AnsibleStrategy.LINEAR) -> PlaybookResult:
    """Run our playbook (or the peer's, or the floor's: `ansible_dir`) through ansible-runner
    exactly as the coordinator does."""
    env = {"ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"), **(extra_env or {})}
    if control_dir is not None:
        env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(control_dir)
    return run_playbook(ansible_dir=ansible_dir, playbook=playbook_name, inventory=inventory,
                        extravars=extravars, ident=f"bench-{playbook_name}", strategy=strategy, env=env,
                        timeout_s=600)


def alternating(images: BenchImages, i: int) -> tuple[str, str]:
    return (images.v2, "1.1.0") if i % 2 else (images.v1, "1.0.0")


@dataclass(frozen=True)
class Target:
    """Where an approach deploys: an inventory (for the playbooks) and its hosts' containers."""

    inventory: Path
    containers: list[tuple[str, int]]  # (container name, published port) per host
    overrides: dict[str, Any] = field(default_factory=dict)  # extra vars that move the app elsewhere


def fleet_inventory(directory: Path, approach: str, hosts: int) -> Target:
    """`hosts` inventory hosts on the sandbox sshd, each with its own ControlPath (own connection)."""
    entries, containers = {}, []
    for n in range(1, hosts + 1):
        name, port = f"bench-{approach}{n}", PORT_BASE[approach] + n
        containers.append((name, port))
        entries[f"fleet{n}"] = {
            "ansible_host": "127.0.0.1", "ansible_port": 45022, "ansible_user": "root",
            "ansible_ssh_private_key_file": str(SSH_DIR / "client_key"),
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={SSH_DIR / 'known_hosts'} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes",
            # One socket per host: without it all hosts hash to one path (same address,
            # port, user) and share one master connection.
            "ansible_control_path": f"%(directory)s/fleet{n}",
            "docker_release_container_name": name, "docker_release_published_port": port,
            "release_health_base_url": f"http://127.0.0.1:{port}",
        }
    inventory = directory / f"{approach}{hosts}"
    (inventory / "group_vars").mkdir(parents=True, exist_ok=True)
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"app": {"hosts": entries}}))
    shutil.copy(PRODUCTION / "group_vars" / "all.yml", inventory / "group_vars" / "all.yml")
    return Target(inventory=inventory, containers=containers)


def production_target(approach: str) -> Target:
    """The coordinator's own sandbox production inventory (prod1): ours deploys its app
    there; the peer and the recipe get containers of their own on the same host."""
    if approach == "deploy":
        return Target(inventory=PRODUCTION, containers=[("sample-prod1", 45081)])
    if approach == "floor":
        return Target(inventory=PRODUCTION, containers=[])  # a ping: no container of its own
    name, port = {"peer": ("bench-peer", 45093), "recipe": ("bench-recipe", 45090),
                  "mitogen": ("bench-mitogen", 45094), "unbatched": ("bench-unbatched", 45095)}[approach]
    return Target(inventory=PRODUCTION, containers=[(name, port)],
                  overrides={"docker_release_container_name": name, "docker_release_published_port": port,
                             "release_health_base_url": f"http://127.0.0.1:{port}"})


def deploy_once(approach: str, target: Target, digest: str, version: str,
                extra_env: dict[str, str] | None = None) -> None:
    """One deploy of `digest` by `approach` to every host of `target`; raises when it failed."""
    if approach == "recipe":
        _recipe_in_parallel(target.containers, digest, version)
        return
    # Both playbooks run the same interpreter on the host (bench/host_python.py).
    interpreter = {"ansible_python_interpreter": host_python()}
    with tempfile.TemporaryDirectory(prefix="bcp-", dir="/tmp") as control_dir:  # short: socket paths ≤ 108
        if approach == "peer":
            result = playbook("deploy.yml", target.inventory, deploy_vars(digest, version) | target.overrides | interpreter,
                              ansible_dir=PEER_DIR, control_dir=Path(control_dir), extra_env=extra_env)
        elif approach == "floor":
            result = playbook("ping.yml", target.inventory, interpreter, ansible_dir=FLOOR_DIR,
                              control_dir=Path(control_dir), extra_env=extra_env)
        else:
            strategy = AnsibleStrategy.MITOGEN if approach == "mitogen" else AnsibleStrategy.LINEAR
            batches = {"deploy_serial": "100%"} if approach == "unbatched" else {}
            result = playbook("deploy.yml", target.inventory,
                              deploy_vars(digest, version, lock=True) | batches | target.overrides | interpreter,
                              control_dir=Path(control_dir), extra_env=extra_env, strategy=strategy)
        cpu.end_ssh_masters()  # before the socket directory goes
    if not result.ok:
        raise RuntimeError(f"the {approach} deploy of {version} to {target.inventory} failed: {result.summary()}")


def _recipe_in_parallel(containers: list[tuple[str, int]], digest: str, version: str) -> None:
    """The seed's recipe on every host at once, one ssh connection and one poller per host."""
    errors: list[BaseException] = []

    def one(name: str, port: int) -> None:
        try:
            run_recipe(name, port, digest, version, over_ssh=True)
        except BaseException as exc:  # noqa: BLE001 - reported after the join
            errors.append(exc)

    threads = [threading.Thread(target=one, args=container) for container in containers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"the recipe failed on {len(errors)} host(s): {errors[0]}")


# Docker could not bind a published port: on this machine 454xx lies inside the ephemeral
# port range (32768-60999), and the hundreds of loopback connections a fleet run leaves in
# TIME-WAIT can hold exactly the port a new container publishes (the likely cause; the one
# failure seen had its message cut off after these words).
PORT_TAKEN = "driver failed programming external connectivity"


def _retrying_port_clash(action: Callable[[], cpu.Cost], what: str, retried: list[str]) -> cpu.Cost:
    """Run `action`; once more when Docker could not bind the port (the clash is counted)."""
    try:
        return action()
    except RuntimeError as exc:
        if PORT_TAKEN not in str(exc):
            raise
        print(f"  {what}: port clash with an ephemeral port, run repeated", file=sys.stderr, flush=True)
        retried.append(what)
        return action()


def warm_up(approach: str, target: Target, images: BenchImages, sshd_pid: int, retried: list[str]) -> None:
    """A deploy that is not measured: the image is pulled and the containers exist afterwards."""
    _retrying_port_clash(partial(cpu.measure, partial(deploy_once, approach, target, images.v1, "1.0.0"), sshd_pid),
                         f"{target.inventory.name} {approach} warm-up", retried)


def measure_run(approach: str, target: Target, images: BenchImages, i: int, runs: int, sshd_pid: int,
                retried: list[str]) -> cpu.Cost:
    """Measured run `i` (0-based) of `approach`: the other good image than the run before."""
    digest, version = alternating(images, i + 1)
    cost = _retrying_port_clash(partial(cpu.measure, partial(deploy_once, approach, target, digest, version),
                                        sshd_pid), f"{target.inventory.name} {approach} run {i + 1}", retried)
    print(f"  {target.inventory.name} {approach} run {i + 1}/{runs}: {cost.seconds:.2f} s, controller "
          f"{cost.controller_s:.2f} CPU-s, target {cost.target_s:.2f} CPU-s", file=sys.stderr, flush=True)
    return cost


def round_robin(approaches: list[str], runs: int) -> list[tuple[int, str]]:
    """(run, approach) in turn, each round starting one approach later, so load from elsewhere
    on the shared machine lands on every approach alike instead of on whichever ran then."""
    order = []
    for i in range(runs):
        shift = i % len(approaches) if approaches else 0
        order += [(i, approach) for approach in approaches[shift:] + approaches[:shift]]
    return order


def remove_containers(target: Target) -> None:
    for name, _port in target.containers:
        if not name.startswith("sample-"):
            remove_container(name)


def summarize(costs: list[cpu.Cost], hosts: int) -> dict[str, Any]:
    """Medians of each figure over the runs; CPU per host."""

    def median(pick: Callable[[cpu.Cost], float]) -> float:
        return statistics.median(pick(cost) for cost in costs)

    return {
        "seconds": median(lambda c: c.seconds),
        "controller_cpu_per_host": median(lambda c: c.controller_s) / hosts,
        "controller_runner_cpu_per_host": median(lambda c: c.controller_runner_s) / hosts,
        "controller_playbook_cpu_per_host": median(lambda c: c.controller_playbook_s) / hosts,
        "target_cpu_per_host": median(lambda c: c.target_s) / hosts,
        "target_sshd_cpu_per_host": median(lambda c: c.target_sshd_s) / hosts,
        "target_docker_cpu_per_host": median(lambda c: c.target_docker_s) / hosts,
        "machine_cpu_per_host": median(lambda c: c.machine_s) / hosts,
        "raw_seconds": [c.seconds for c in costs],
    }


def sshd_pid() -> int:
    """The sandbox sshd listener (the "hosts"' sshd) of this checkout's world."""
    return int((SSH_DIR / "sshd.pid").read_text().strip())
