"""`python -m bench [--runs N] [--only a,b]`: bring the world up, measure, print one table.

Figures are medians of N runs (default 5) with ratios against the shell-recipe baseline
measured in the same run; the table is also written to bench/results/latest.json.
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
GOALS = {"deploy_ratio": 1.3, "release_ratio": 1.5, "rollback_seconds": 10.0, "fleet20_ratio": 2.5,
         "help_seconds": 0.3}
SCENARIOS = ("help", "deploy", "rollback", "fleet", "release")


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

    from ansible.release import __version__ as ansible_core

    return {"cores": os.cpu_count(), "python": platform.python_version(), "ansible_core": ansible_core,
            "ansible_runner": _distribution_version("ansible-runner"),
            "docker": version(["docker", "version", "--format", "{{.Server.Version}}"]), "machine": platform.machine()}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (median reported)")
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {', '.join(SCENARIOS)}")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/latest.json")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(sorted(unknown))}; choose from {', '.join(SCENARIOS)}")

    from bench import scenarios
    from sandbox.world import up

    up(Path(__file__).resolve().parent.parent / ".sandbox")
    figures: dict[str, Any] = {}
    if "help" in chosen:
        figures.update(scenarios.help_cold_start(args.runs))
    needs_images = {"deploy", "rollback", "fleet"} & set(chosen)
    if needs_images:
        from bench.images import build_bench_images

        images = build_bench_images()
        if "deploy" in chosen:
            figures.update(scenarios.deploy_one_host(images, args.runs))
        if "rollback" in chosen:
            figures.update(scenarios.rollback_time(images, args.runs))
        if "fleet" in chosen:
            figures.update(scenarios.fleet(images, args.runs))
    if "release" in chosen:
        figures.update(scenarios.whole_release(args.runs))

    env = environment()
    print(f"environment: {json.dumps(env)}")
    print(f"runs per figure: {args.runs} (median)")
    print(f"{'figure':<36} {'value':>10} {'goal':>8}  verdict")
    for key, value in figures.items():
        if isinstance(value, list):
            continue
        goal = GOALS.get(key)
        verdict = "" if goal is None else ("meets goal" if value <= goal else "MISSES goal")
        print(f"{key:<36} {value:>10.3f} {('≤ ' + str(goal)) if goal else '':>8}  {verdict}")
    if not args.no_save:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        # A partial run (--only) updates its own figures and keeps the others.
        kept = json.loads(RESULTS.read_text()) if RESULTS.exists() and set(chosen) != set(SCENARIOS) else {}
        RESULTS.write_text(json.dumps({**kept, "measured_at": datetime.now(UTC).isoformat(), "runs": args.runs,
                                       "environment": env, "goals": GOALS, **figures}, indent=2) + "\n")
        print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
