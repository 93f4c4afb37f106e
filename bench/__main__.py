"""`python -m bench [--runs N] [--only a,b] [--hosts 1,5,20]`: bring the world up, measure, print tables.

Figures are medians of N runs (default 5), printed with their spread (min-max of the runs),
with ratios against the baselines measured in the same run (the seed's shell recipe; the peer playbook an Ansible engineer writes in ten
minutes), and CPU-seconds per host on the controller and on the targets (bench/cpu.py);
everything is also written to bench/results/latest.json (a partial run keeps the rest).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
# Issue 22's goals (this machine, ratios within one run). controller_cpu_marginal is the
# controller's CPU-s per added host (least squares over the host counts); fleet5_peer_speed is
# our 5-host time over the peer's (faster than the peer: below 1).
GOALS = {"deploy_ratio": 3.0, "release_ratio": 6.0, "fleet20_recipe_ratio": 2.5, "fleet5_peer_speed": 1.0,
         "controller_cpu_marginal": 0.4, "target_cpu_per_host": 1.0,
         "rollback_seconds": 4.0, "help_seconds": 0.1}
SCENARIOS = ("help", "deploy", "rollback", "fleet", "release", "census")


def _distribution_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def environment() -> dict[str, Any]:
    def version(argv: list[str]) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "unknown"

    from ansible.release import __version__ as ansible_core  # type: ignore[import-untyped]

    return {"cores": os.cpu_count(), "python": platform.python_version(), "ansible_core": ansible_core,
            "ansible_runner": _distribution_version("ansible-runner"),
            "docker": version(["docker", "version", "--format", "{{.Server.Version}}"]), "machine": platform.machine()}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (the median and the spread, min-max, reported)")
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {', '.join(SCENARIOS)}")
    parser.add_argument("--hosts", default="1,5,20", help="host counts of the fleet scenario (default 1,5,20)")
    parser.add_argument("--approaches", default="deploy,peer,recipe",
                        help="approaches the fleet scenario measures (default deploy,peer,recipe; mitogen: ours "
                             "under the opt-in Mitogen strategy, also on 1 host in the deploy scenario; floor: a ping "
                             "play, what any Ansible run pays, which the deploy scenario always measures; "
                             "unbatched: ours in one batch, as the peer deploys)")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/latest.json")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(sorted(unknown))}; choose from {', '.join(SCENARIOS)}")
    try:
        sizes = tuple(int(size) for size in args.hosts.split(",") if size.strip())
    except ValueError:
        parser.error(f"--hosts {args.hosts!r}: give host counts like 1,5,20")
    if not sizes or not all(1 <= size <= 20 for size in sizes):
        parser.error(f"--hosts {args.hosts!r}: host counts go from 1 to 20 (the ports reserved per approach)")

    approaches = tuple(name.strip() for name in args.approaches.split(",") if name.strip())
    from bench.compare import ALL_APPROACHES

    if not approaches or not set(approaches) <= set(ALL_APPROACHES):
        parser.error(f"--approaches {args.approaches!r}: choose from {', '.join(ALL_APPROACHES)}")
    if "mitogen" in approaches:
        from coordinator.errors import ConfigError
        from coordinator.strategy import AnsibleStrategy, require_strategy

        try:
            require_strategy(AnsibleStrategy.MITOGEN)  # before the world comes up, as the coordinator refuses it
        except ConfigError as exc:
            parser.error(f"--approaches mitogen: {exc.message}")

    from bench import cpu, report, scenarios
    from tests.sandbox.world import up

    up(Path(__file__).resolve().parent.parent / ".sandbox")
    cpu.become_subreaper()  # the playbooks' ssh masters come back to us to be counted and stopped
    figures: dict[str, Any] = {}
    if "help" in chosen:
        figures.update(scenarios.help_cold_start(args.runs))
    needs_images = {"deploy", "rollback", "fleet", "census"} & set(chosen)
    if needs_images:
        from bench.images import build_bench_images

        images = build_bench_images()
        if "deploy" in chosen:
            figures.update(scenarios.deploy_one_host(images, args.runs, approaches))
        if "rollback" in chosen:
            figures.update(scenarios.rollback_time(images, args.runs))
        if "fleet" in chosen:
            figures = scenarios.merge_figures(figures, scenarios.fleet(images, args.runs, sizes, approaches))
        if "census" in chosen:
            figures.update(scenarios.census(images))
    if "release" in chosen:
        figures.update(scenarios.whole_release(args.runs))

    env = environment()
    print(f"environment: {json.dumps(env)}")
    print(f"runs per figure: {args.runs} (median; spread = min-max of the runs)")
    figures |= scenarios.across_fleet_sizes(figures)
    print(report.render(figures, GOALS, env["cores"]))
    if not args.no_save:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        # A partial run (--only, --hosts) updates its own figures and keeps the others.
        complete = (set(chosen) == set(SCENARIOS) and args.hosts == parser.get_default("hosts")
                    and args.approaches == parser.get_default("approaches"))
        kept = json.loads(RESULTS.read_text()) if RESULTS.exists() and not complete else {}
        now = datetime.now(UTC).isoformat()
        saved = scenarios.merge_figures(kept, {"measured_at": now, "runs": args.runs, "environment": env,
                                               "goals": GOALS, **figures})
        # Which window measured what: the fleet sizes may come from separate runs of the lock.
        measured = [name for name in chosen if name != "fleet"] + ([f"fleet{size}" for size in sizes]
                                                                   if "fleet" in chosen else [])
        saved = scenarios.merge_figures(saved, {"measured_at_by_scenario": {name: now for name in measured},
                                                "runs_by_scenario": {name: 1 if name == "census" else args.runs
                                                                     for name in measured}})
        saved |= scenarios.across_fleet_sizes(saved)
        RESULTS.write_text(json.dumps(saved, indent=2) + "\n")
        print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
