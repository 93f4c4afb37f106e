"""The measured scenarios of issues 6 and 14, each against the local world."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from bench import compare
from bench.images import BenchImages
from bench.recipe import remove_container, run_recipe
from bench.timing import median_of, serving, timed, wait_until_serving
from tests.sandbox.coordinator_config import PRODUCTION_URL, REPO_ROOT

PRODUCTION = REPO_ROOT / "inventory" / "sandbox-production"


def _playbook(playbook_name: str, inventory: Path, extravars: dict[str, Any]) -> bool:
    return compare.playbook(playbook_name, inventory, extravars).ok


def _per_approach(prefix: str, hosts: int, approach: str, summary: dict[str, Any]) -> dict[str, Any]:
    """Flat keys `<prefix>_<approach>_<figure>` for one approach's summary at one host count."""
    return {f"{prefix}_{approach}_{key}": value for key, value in summary.items()} | {
        "controller_cpu_per_host": {approach: {str(hosts): summary["controller_cpu_per_host"]}},
        "target_cpu_per_host": {approach: {str(hosts): summary["target_cpu_per_host"]}},
    }


def _compare_all(prefix: str, hosts: int, targets: dict[str, compare.Target], images: BenchImages,
                 runs: int) -> dict[str, Any]:
    """deploy.yml, the peer playbook and the recipe on the same hosts, in turn (round-robin)."""
    figures: dict[str, Any] = {}
    pid = compare.sshd_pid()
    retried: dict[str, list[str]] = {approach: [] for approach in targets}
    costs: dict[str, list[Any]] = {approach: [] for approach in targets}
    failed: dict[str, str] = {}
    try:
        for approach in targets:
            try:
                compare.warm_up(approach, targets[approach], images, pid, retried[approach])
            except RuntimeError as exc:  # one approach failing must not lose the others' figures
                failed[approach] = str(exc)
        for i, approach in compare.round_robin([a for a in targets if a not in failed], runs):
            if approach in failed:
                continue
            try:
                costs[approach].append(compare.measure_run(approach, targets[approach], images, i, runs, pid,
                                                           retried[approach]))
            except RuntimeError as exc:
                failed[approach] = str(exc)
    finally:
        for target in targets.values():
            compare.remove_containers(target)
    for approach in targets:
        if approach in failed:
            print(f"  {prefix} {approach}: {failed[approach]}", file=sys.stderr, flush=True)
            figures[f"{prefix}_{approach}_error"] = failed[approach]
            continue
        summary = compare.summarize(costs[approach], hosts) | {"runs_repeated_after_port_clash": len(retried[approach])}
        figures = merge_figures(figures, _per_approach(prefix, hosts, approach, summary))
        figures[f"{prefix}_{approach}_error"] = None  # clears an earlier window's failure in the results
    return figures


def merge_figures(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`new` over `old`, nested dicts merged key by key (per approach, per host count)."""
    merged = dict(old)
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_figures(merged[key], value)
        else:
            merged[key] = value
    return merged


def deploy_one_host(images: BenchImages, runs: int,
                    approaches: tuple[str, ...] = compare.APPROACHES) -> dict[str, Any]:
    """deploy.yml (lock, deploy + health, final check, unlock) on the SSH production host vs
    the peer playbook and the recipe over ssh on the same host, each with its CPU (and ours
    under Mitogen when `approaches` names it); and the Ansible floor (a ping play through
    ansible-runner over a cold connection), below which no deploy through Ansible can go."""
    wanted = set(approaches) | set(compare.APPROACHES) | {"floor"}
    targets = {approach: compare.production_target(approach) for approach in compare.ALL_APPROACHES if approach in wanted}
    figures = _compare_all("host1", 1, targets, images, runs)
    if any(f"host1_{a}_seconds" not in figures for a in compare.APPROACHES):
        return figures  # an approach failed (its error is in the figures): no ratios
    ours, peer, recipe = (figures[f"host1_{a}_seconds"] for a in compare.APPROACHES)
    # The per-host CPU of this scenario is reported under its own keys; the fleet's host
    # count "1" uses a fleet inventory like 5 and 20.
    del figures["controller_cpu_per_host"], figures["target_cpu_per_host"]
    floor = figures.get("host1_floor_seconds")
    below = {} if floor is None else {"floor_seconds": floor, "floor_recipe_ratio": floor / recipe,
                                      "deploy_above_floor_seconds": ours - floor}
    return {**figures, "deploy_seconds": ours, "deploy_recipe_seconds": recipe, "deploy_ratio": ours / recipe,
            "peer_deploy_seconds": peer, "peer_deploy_ratio": peer / recipe, "deploy_peer_ratio": ours / peer,
            "deploy_raw": figures["host1_deploy_raw_seconds"], "deploy_recipe_raw": figures["host1_recipe_raw_seconds"],
            **below}


UNHEALTHY_TIMEOUT_S = 10


def _time_to_restore(images: BenchImages, broken: str, version: str, health_timeout_s: int) -> float:
    """From starting a deploy of `broken` over 1.0.0 to 1.0.0 serving 200 again."""
    _playbook("deploy.yml", PRODUCTION, compare.deploy_vars(images.v1, "1.0.0"))
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
    deploy = {**compare.deploy_vars(broken, version), "release_health_timeout": health_timeout_s}
    if _playbook("deploy.yml", PRODUCTION, deploy):
        raise RuntimeError(f"the broken {version} deployed successfully: the health gate did not catch it")
    # As the coordinator does: rollback.yml of the hosts still on the bad digest. deploy.yml
    # has already restored the host (then this leaves it alone); the watcher decides.
    # (deploy_vars allows a digest marked bad: run after run, this one is.)
    _playbook("rollback.yml", PRODUCTION, {"rollback_from_digest": broken})
    deadline = time.monotonic() + 60
    while "at" not in restored and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    watcher.join(timeout=5)
    if "at" not in restored:
        raise RuntimeError(f"1.0.0 never served again after the broken {version}")
    return restored["at"] - started


def rollback_time(images: BenchImages, runs: int) -> dict[str, Any]:
    """Broken deploy → previous digest serving again: a container that exits at once, and
    one whose /health answers 404 (that one waits out a short health deadline first)."""
    exits, exits_raw = median_of(runs, lambda _i: _time_to_restore(images, images.exits, "1.2.0", 120))
    unhealthy, unhealthy_raw = median_of(
        runs, lambda _i: _time_to_restore(images, images.unhealthy, "1.3.0", UNHEALTHY_TIMEOUT_S))
    return {"rollback_seconds": exits, "rollback_raw": exits_raw,
            "rollback_unhealthy_seconds": unhealthy, "rollback_unhealthy_raw": unhealthy_raw,
            "rollback_unhealthy_health_timeout_s": UNHEALTHY_TIMEOUT_S, "health_poll_interval_s": compare.HEALTH_INTERVAL_S}


def fleet(images: BenchImages, runs: int, sizes: tuple[int, ...] = (1, 5, 20),
          approaches: tuple[str, ...] = compare.APPROACHES) -> dict[str, Any]:
    """deploy.yml (its default batches: a canary, then a quarter rounded up), the peer playbook
    and the recipe run on all hosts in parallel, on 1, 5 and 20 loopback hosts with one SSH connection each; plus how busy the
    machine's 2 cores were (0-1) during our runs: the hosts share them with the controller."""
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        for size in sizes:
            targets = {a: compare.fleet_inventory(Path(tmp), a, size) for a in compare.ALL_APPROACHES if a in approaches}
            figures = merge_figures(figures, _compare_all(f"fleet{size}", size, targets, images, runs))
            ours, recipe = figures.get(f"fleet{size}_deploy_seconds"), figures.get(f"fleet{size}_recipe_seconds")
            if ours is None:
                continue
            busy = figures[f"fleet{size}_deploy_machine_cpu_per_host"] * size / ((os.cpu_count() or 1) * ours)
            figures |= {f"fleet{size}_seconds": ours, f"fleet{size}_raw": figures[f"fleet{size}_deploy_raw_seconds"],
                        f"fleet{size}_cpu_busy": busy}
            if recipe is not None:
                figures[f"fleet{size}_recipe_ratio"] = ours / recipe
                if f"fleet{size}_peer_seconds" in figures:
                    figures[f"fleet{size}_peer_ratio"] = figures[f"fleet{size}_peer_seconds"] / recipe
    return figures


CENSUS_PLUGIN_DIR = REPO_ROOT / "bench" / "census"


def census(images: BenchImages) -> dict[str, Any]:
    """Where a run's time goes, per task: one extra, unmeasured deploy of our deploy.yml and
    of the peer playbook on prod1 with the bench_census callback (bench/census/)."""
    found: dict[str, Any] = {}
    for approach in ("deploy", "peer"):
        target = compare.production_target(approach)
        try:
            compare.deploy_once(approach, target, images.v1, "1.0.0")  # warm: the census run replaces
            with tempfile.TemporaryDirectory(prefix="bench-census-") as tmp:
                out = Path(tmp) / "census.json"
                compare.deploy_once(approach, target, images.v2, "1.1.0", extra_env={
                    "ANSIBLE_CALLBACK_PLUGINS": str(CENSUS_PLUGIN_DIR), "ANSIBLE_CALLBACKS_ENABLED": "bench_census",
                    "BENCH_CENSUS_OUT": str(out)})
                data = json.loads(out.read_text())
        finally:
            compare.remove_containers(target)
        found[approach] = _census_summary(data)
    return {"census": found}


def _census_summary(data: dict[str, Any]) -> dict[str, Any]:
    """Task counts and seconds on each side for the (one) host, slowest host-side tasks first."""
    tasks = next(iter(data["hosts"].values()))
    ran = [task for task in tasks if task["status"] != "skipped"]

    def side(where: str) -> list[dict[str, Any]]:
        return [task for task in ran if task["where"] == where]

    return {
        "playbook_seconds": data["seconds"], "tasks_ran": len(ran), "tasks_skipped": len(tasks) - len(ran),
        "controller_tasks": len(side("controller")), "host_module_calls": len(side("host")),
        "controller_task_seconds": sum(task["seconds"] or 0.0 for task in side("controller")),
        "host_module_seconds": sum(task["seconds"] or 0.0 for task in side("host")),
        "host_tasks": [{"task": task["task"], "action": task["action"], "seconds": task["seconds"],
                        **({"step_seconds": task["step_seconds"]} if "step_seconds" in task else {})}
                       for task in side("host")],
    }


def across_fleet_sizes(figures: dict[str, Any]) -> dict[str, Any]:
    """Figures that compare host counts: N hosts vs 1 (`fleetN_ratio`), and each approach's
    CPU split into a fixed cost per run and a marginal cost per host (least squares over the
    host counts measured: cpu_total(n) = fixed + per_host * n)."""
    derived: dict[str, Any] = {}
    sizes = sorted(int(key[5:-len("_seconds")]) for key in figures
                   if key.startswith("fleet") and key.endswith("_seconds") and key[5:-len("_seconds")].isdigit())
    if 1 in sizes:
        for size in sizes[1:]:
            derived[f"fleet{size}_ratio"] = figures[f"fleet{size}_seconds"] / figures["fleet1_seconds"]
    for side in ("controller", "target"):
        per_host = figures.get(f"{side}_cpu_per_host") or {}
        for approach, by_count in per_host.items():
            points = [(int(count), value * int(count)) for count, value in by_count.items()]
            if len(points) < 2:
                continue
            mean_n = statistics.fmean(n for n, _ in points)
            mean_cpu = statistics.fmean(cpu for _, cpu in points)
            slope = (sum((n - mean_n) * (cpu - mean_cpu) for n, cpu in points)
                     / sum((n - mean_n) ** 2 for n, _ in points))
            derived.setdefault(f"{side}_cpu_fixed_and_marginal", {})[approach] = {
                "fixed_per_run": mean_cpu - slope * mean_n, "marginal_per_host": slope}
            if side == "controller" and approach == "deploy":
                derived["controller_cpu_marginal"] = slope
    if figures.get("fleet5_deploy_seconds") and figures.get("fleet5_peer_seconds"):
        derived["fleet5_peer_speed"] = figures["fleet5_deploy_seconds"] / figures["fleet5_peer_seconds"]
    return derived


def help_cold_start(runs: int) -> dict[str, Any]:
    executable = Path(sys.executable).parent / "coordinator"

    def once(_i: int) -> float:
        return timed(lambda: subprocess.run([str(executable), "--help"], capture_output=True, check=True))

    median, raw = median_of(runs, once)
    return {"help_seconds": median, "help_raw": raw}


def whole_release(runs: int) -> dict[str, Any]:
    """validate → announce through the CLI (CI build and human wait excluded) vs the recipe
    for staging (local) and production (ssh)."""
    from tests.sandbox.coordinator_config import write_sandbox_config
    from tests.sandbox.forge_seed import ensure_label, forge_client, wait_for_green
    from tests.sandbox.world import reset, up

    world_dir = REPO_ROOT / ".sandbox"
    world = up(world_dir)
    peak_file = Path(tempfile.mkstemp(prefix="bench-peak-")[1])
    peak_file.unlink()
    ours: list[float] = []
    recipe: list[float] = []
    # The census of the release path: each command's wall time and each stage's (the record's
    # stage_seconds), per run.
    commands: dict[str, list[float]] = {}
    stages: dict[str, list[float]] = {}
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
                commands.setdefault(args[0], []).append(time.perf_counter() - started)
                if completed.returncode != expect:
                    raise RuntimeError(f"coordinator {' '.join(args)} exited {completed.returncode}: {completed.stderr[-500:]}")
            record = yaml.safe_load((state_dir / "releases" / "sample-1.0.0.json").read_text())
            digest = record["build"]["digest"]
            for stage, seconds in record["stage_seconds"].items():
                stages.setdefault(stage, []).append(seconds)
            ours.append(wall - record["stage_seconds"].get("build", 0.0))
        remove_container("bench-recipe-staging")
        remove_container("bench-recipe-prod")
        started = time.perf_counter()
        run_recipe("bench-recipe-staging", 45091, digest, "1.0.0", over_ssh=False)
        run_recipe("bench-recipe-prod", 45092, digest, "1.0.0", over_ssh=True)
        recipe.append(time.perf_counter() - started)
    remove_container("bench-recipe-staging")
    remove_container("bench-recipe-prod")
    peak = float(peak_file.read_text()) if peak_file.exists() else float("nan")
    peak_file.unlink(missing_ok=True)
    return {"release_seconds": statistics.median(ours), "release_recipe_seconds": statistics.median(recipe),
            "release_ratio": statistics.median(ours) / statistics.median(recipe), "release_raw": ours,
            "release_recipe_raw": recipe, "peak_mib": peak,
            "release_census": {"command_seconds": {name: statistics.median(values) for name, values in commands.items()},
                               "stage_seconds": {name: statistics.median(values) for name, values in stages.items()}}}
