"""The five measured scenarios of issue 6, each against the local world."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from bench.images import BenchImages
from bench.recipe import remove_container, run_recipe
from bench.timing import machine_busy_seconds, median_of, serving, timed, wait_until_serving
from coordinator.ansible import run_playbook
from sandbox.coordinator_config import IMAGE, PRODUCTION_URL, REPO_ROOT

PRODUCTION = REPO_ROOT / "inventory" / "sandbox-production"
HEALTH_INTERVAL_S = 0.25


def _deploy_vars(digest: str, version: str) -> dict[str, Any]:
    return {
        "docker_release_image": IMAGE, "docker_release_digest": digest, "docker_release_version": version,
        "docker_release_deployed_by": "bench", "docker_release_release_id": f"bench-{version}",
        "release_health_timeout": 120, "release_health_interval": HEALTH_INTERVAL_S,
    }


def _playbook(playbook: str, inventory: Path, extravars: dict[str, Any]) -> bool:
    result = run_playbook(ansible_dir=REPO_ROOT, playbook=playbook, inventory=inventory, extravars=extravars,
                          ident=f"bench-{playbook}", timeout_s=600)
    return result.ok


def _alternating(images: BenchImages, i: int) -> tuple[str, str]:
    return (images.v2, "1.1.0") if i % 2 else (images.v1, "1.0.0")


def deploy_one_host(images: BenchImages, runs: int) -> dict[str, float]:
    """deploy.yml (deploy + health) on the SSH production host vs the recipe over ssh."""
    _playbook("deploy.yml", PRODUCTION, _deploy_vars(images.v1, "1.0.0"))  # warm: image pulled, host known

    def ours(i: int) -> float:
        digest, version = _alternating(images, i + 1)
        return timed(lambda: _playbook("deploy.yml", PRODUCTION, _deploy_vars(digest, version)))

    def recipe(i: int) -> float:
        digest, version = _alternating(images, i + 1)
        return run_recipe("bench-recipe", 45090, digest, version, over_ssh=True)

    run_recipe("bench-recipe", 45090, images.v1, "1.0.0", over_ssh=True)
    ours_median, ours_raw = median_of(runs, ours)
    recipe_median, recipe_raw = median_of(runs, recipe)
    remove_container("bench-recipe")
    return {"deploy_seconds": ours_median, "deploy_recipe_seconds": recipe_median,
            "deploy_ratio": ours_median / recipe_median, "deploy_raw": ours_raw, "deploy_recipe_raw": recipe_raw}


UNHEALTHY_TIMEOUT_S = 10


def _time_to_restore(images: BenchImages, broken: str, version: str, health_timeout_s: int) -> float:
    """From starting a deploy of `broken` over 1.0.0 to 1.0.0 serving 200 again."""
    _playbook("deploy.yml", PRODUCTION, _deploy_vars(images.v1, "1.0.0"))
    wait_until_serving(PRODUCTION_URL, "1.0.0")
    restored: dict[str, float] = {}
    went_down = threading.Event()
    stop = threading.Event()

    def watch() -> None:
        import httpx

        with httpx.Client(timeout=0.5) as client:
            while not stop.is_set():
                if not serving(client, PRODUCTION_URL, "1.0.0"):
                    went_down.set()
                elif went_down.is_set() and "at" not in restored:
                    restored["at"] = time.perf_counter()
                time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    started = time.perf_counter()
    watcher.start()
    deploy = {**_deploy_vars(broken, version), "release_health_timeout": health_timeout_s}
    if _playbook("deploy.yml", PRODUCTION, deploy):
        raise RuntimeError(f"the broken {version} deployed successfully: the health gate did not catch it")
    # As the coordinator does: rollback.yml of the hosts still on the bad digest. deploy.yml
    # has already restored the host (then this leaves it alone); the watcher decides.
    _playbook("rollback.yml", PRODUCTION, {"rollback_from_digest": broken})
    deadline = time.monotonic() + 60
    while "at" not in restored and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    watcher.join(timeout=5)
    if "at" not in restored:
        raise RuntimeError(f"1.0.0 never served again after the broken {version}")
    return restored["at"] - started


def rollback_time(images: BenchImages, runs: int) -> dict[str, float]:
    """Broken deploy → previous digest serving again: a container that exits at once, and
    one whose /health answers 404 (that one waits out a short health deadline first)."""
    exits, exits_raw = median_of(runs, lambda _i: _time_to_restore(images, images.exits, "1.2.0", 120))
    unhealthy, unhealthy_raw = median_of(
        runs, lambda _i: _time_to_restore(images, images.unhealthy, "1.3.0", UNHEALTHY_TIMEOUT_S))
    return {"rollback_seconds": exits, "rollback_raw": exits_raw,
            "rollback_unhealthy_seconds": unhealthy, "rollback_unhealthy_raw": unhealthy_raw,
            "rollback_unhealthy_health_timeout_s": UNHEALTHY_TIMEOUT_S, "health_poll_interval_s": HEALTH_INTERVAL_S}


def _fleet_inventory(directory: Path, hosts: int) -> Path:
    ssh = REPO_ROOT / ".sandbox" / "ssh"
    entries = {
        f"fleet{n}": {
            "ansible_host": "127.0.0.1", "ansible_port": 45022, "ansible_user": "root",
            "ansible_ssh_private_key_file": str(ssh / "client_key"),
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={ssh / 'known_hosts'} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes",
            "docker_release_container_name": f"bench-fleet{n}", "docker_release_published_port": 45400 + n,
            "release_health_base_url": f"http://127.0.0.1:{45400 + n}",
        }
        for n in range(1, hosts + 1)
    }
    inventory = directory / f"fleet{hosts}"
    (inventory / "group_vars").mkdir(parents=True, exist_ok=True)
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"app": {"hosts": entries}}))
    group_vars = yaml.safe_load((PRODUCTION / "group_vars" / "all.yml").read_text())
    (inventory / "group_vars" / "all.yml").write_text(yaml.safe_dump(group_vars))
    return inventory


def fleet(images: BenchImages, runs: int, size: int = 20) -> dict[str, float]:
    """deploy.yml to `size` hosts (batches of 25 %) vs to one host, and how busy the machine's
    cores were (0-1) during the fleet runs: the hosts share them with the controller."""
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        one, many = _fleet_inventory(Path(tmp), 1), _fleet_inventory(Path(tmp), size)
        _playbook("deploy.yml", many, _deploy_vars(images.v1, "1.0.0"))

        def measure(inventory: Path):
            return lambda i: timed(lambda: _playbook("deploy.yml", inventory, _deploy_vars(*_alternating(images, i + 1))))

        one_median, one_raw = median_of(runs, measure(one))
        busy_before = machine_busy_seconds()
        many_median, many_raw = median_of(runs, measure(many))
        busy = (machine_busy_seconds() - busy_before) / ((os.cpu_count() or 1) * sum(many_raw))
    for n in range(1, size + 1):
        remove_container(f"bench-fleet{n}")
    return {"fleet1_seconds": one_median, f"fleet{size}_seconds": many_median,
            f"fleet{size}_ratio": many_median / one_median, f"fleet{size}_cpu_busy": busy,
            "fleet1_raw": one_raw, f"fleet{size}_raw": many_raw}


def help_cold_start(runs: int) -> dict[str, float]:
    executable = Path(sys.executable).parent / "coordinator"

    def once(_i: int) -> float:
        return timed(lambda: subprocess.run([str(executable), "--help"], capture_output=True, check=True))

    median, raw = median_of(runs, once)
    return {"help_seconds": median, "help_raw": raw}


def whole_release(runs: int) -> dict[str, float]:
    """validate → announce through the CLI (CI build and human wait excluded) vs the recipe
    for staging (local) and production (ssh)."""
    from sandbox.coordinator_config import write_sandbox_config
    from sandbox.forge_seed import ensure_label, forge_client, wait_for_green
    from sandbox.world import reset, up

    world_dir = REPO_ROOT / ".sandbox"
    world = up(world_dir)
    peak_file = Path(tempfile.mkstemp(prefix="bench-peak-")[1])
    peak_file.unlink()
    ours: list[float] = []
    recipe: list[float] = []
    for _ in range(runs):
        reset(world)
        with tempfile.TemporaryDirectory(prefix="bench-release-") as tmp:
            state_dir = Path(tmp) / "state"
            config = write_sandbox_config(Path(tmp) / "coordinator.yml", world_dir, state_dir)
            with forge_client(world_dir) as forge:
                ensure_label(forge)
                head = subprocess.run(["git", "-C", str(world_dir / "work" / "sample"), "rev-parse", "HEAD"],
                                      capture_output=True, text=True, check=True).stdout.strip()
                wait_for_green(forge, head)
            env = {**os.environ, "COORDINATOR_OPERATOR": "bench"}
            base = [sys.executable, "-m", "bench.peak", str(peak_file), "--", "-c", str(config)]
            wall = 0.0
            for args, expect in ((["release", "1.0.0"], 4), (["approve", "1.0.0"], 0), (["resume"], 0)):
                started = time.perf_counter()
                completed = subprocess.run([*base, *args], env=env, capture_output=True, text=True, check=False)
                wall += time.perf_counter() - started
                if completed.returncode != expect:
                    raise RuntimeError(f"coordinator {' '.join(args)} exited {completed.returncode}: {completed.stderr[-500:]}")
            record = yaml.safe_load((state_dir / "releases" / "sample-1.0.0.json").read_text())
            digest = record["build"]["digest"]
            ours.append(wall - record["stage_seconds"].get("build", 0.0))
        remove_container("bench-recipe-staging")
        remove_container("bench-recipe-prod")
        started = time.perf_counter()
        run_recipe("bench-recipe-staging", 45091, digest, "1.0.0", over_ssh=False)
        run_recipe("bench-recipe-prod", 45092, digest, "1.0.0", over_ssh=True)
        recipe.append(time.perf_counter() - started)
    remove_container("bench-recipe-staging")
    remove_container("bench-recipe-prod")
    import statistics

    peak = float(peak_file.read_text()) if peak_file.exists() else float("nan")
    peak_file.unlink(missing_ok=True)
    return {"release_seconds": statistics.median(ours), "release_recipe_seconds": statistics.median(recipe),
            "release_ratio": statistics.median(ours) / statistics.median(recipe), "release_raw": ours,
            "release_recipe_raw": recipe, "peak_mib": peak}
