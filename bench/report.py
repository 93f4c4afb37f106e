"""The printed tables: each approach's time and CPU per host, then the goals with verdicts."""

from __future__ import annotations

from typing import Any

from bench.compare import ALL_APPROACHES

LABELS = {"deploy": "our deploy.yml", "peer": "peer playbook", "recipe": "shell recipe", "mitogen": "ours, Mitogen",
          "floor": "Ansible floor", "unbatched": "ours, 1 batch"}
# (what the goal says, the figure's key in the results)
GOAL_ROWS = (
    ("deploy + verify 1 host / recipe", "deploy_ratio"),
    ("whole release / recipe (both envs)", "release_ratio"),
    ("20 hosts (default batches 1, 5, 5, 5, 4) / parallel recipe", "fleet20_recipe_ratio"),
    ("5 hosts, ours / peer playbook", "fleet5_peer_speed"),
    ("controller CPU-s per added host (marginal)", "controller_cpu_marginal"),
    ("exiting container -> previous serving, s", "rollback_seconds"),
    ("coordinator --help, s", "help_seconds"),
)


def spread(raw: list[float] | None) -> str:
    """'3.20-3.50' for the runs behind a median: how far one run moves on this shared machine."""
    return f"{min(raw):.2f}-{max(raw):.2f}" if raw else ""


def _fleet_prefixes(figures: dict[str, Any]) -> list[str]:
    """'fleet1', 'fleet5', ... for the fleet sizes some approach has a time for, smallest first."""
    return sorted({key.split("_")[0] for key in figures if key.startswith("fleet") and
                   any(key.endswith(f"_{a}_seconds") for a in ALL_APPROACHES)}, key=lambda p: int(p[5:]))


def _approach_rows(figures: dict[str, Any]) -> list[str]:
    rows = []
    prefixes = ["host1"] + _fleet_prefixes(figures)
    for prefix in prefixes:
        recipe = figures.get(f"{prefix}_recipe_seconds")
        for approach in ALL_APPROACHES:
            seconds = figures.get(f"{prefix}_{approach}_seconds")
            if seconds is None:
                continue
            where = "1 host (prod1)" if prefix == "host1" else f"{prefix[5:]} host" + ("s" if prefix != "fleet1" else "")
            ratio = f"{seconds / recipe:>6.2f}x" if recipe else ""
            cpu = [figures.get(f"{prefix}_{approach}_{part}_cpu_per_host", float("nan"))
                   for part in ("controller", "controller_runner", "controller_playbook", "target", "target_sshd",
                                "target_docker", "machine")]
            rows.append(f"{where:<15} {LABELS[approach]:<15} {seconds:>8.2f} {spread(figures.get(f'{prefix}_{approach}_raw_seconds')):>11} {ratio:>8} "
                        + " ".join(f"{value:>7.2f}" for value in cpu))
    return rows


def cpu_bound_rows(figures: dict[str, Any], goals: dict[str, float], cores: int) -> list[str]:
    """The least time a fleet run can take on this machine: the loopback hosts share its cores
    with the controller, so a run that keeps the machine busy for C CPU-seconds needs at least
    C / cores seconds, however well it overlaps. For the 20-host goal, also the CPU it leaves."""
    rows = []
    for prefix in _fleet_prefixes(figures):
        hosts = int(prefix[5:])
        for approach in ALL_APPROACHES:
            per_host, seconds = figures.get(f"{prefix}_{approach}_machine_cpu_per_host"), figures.get(f"{prefix}_{approach}_seconds")
            if per_host is None or seconds is None:
                continue
            total = per_host * hosts
            rows.append(f"{hosts:>5} {LABELS[approach]:<15} {per_host:>8.2f} {total:>8.1f} {total / cores:>10.2f} {seconds:>9.2f}")
    recipe = figures.get("fleet20_recipe_seconds")
    if rows and recipe and "fleet20_recipe_ratio" in goals:
        allowed = goals["fleet20_recipe_ratio"] * recipe
        rows.append(f"the 20-host goal ({goals['fleet20_recipe_ratio']:g} x the recipe's {recipe:.2f} s = {allowed:.2f} s) "
                    f"leaves at most {allowed * cores:.1f} CPU-s, {allowed * cores / 20:.2f} per host, on {cores} cores")
    return rows


def _goal_rows(figures: dict[str, Any], goals: dict[str, float]) -> list[str]:
    rows = []

    def row(key: str, label: str, value: float | None, goal: float) -> None:
        if value is None:
            return
        verdict = "meets goal" if value <= goal else "MISSES goal"
        rows.append(f"{key:<30} {label:<50} {value:>8.2f} {'<= ' + format(goal, 'g'):>8}  {verdict}")

    for label, key in GOAL_ROWS:
        row(key, label, figures.get(key), goals[key])
    for side in ("target",):  # the controller's goal is per added host (controller_cpu_marginal)
        key = f"{side}_cpu_per_host"
        per_count = (figures.get(key) or {}).get("deploy", {})
        for count in sorted(per_count, key=int):
            row(f"{key}[{count}]", f"{side} CPU-s per host, deploy.yml, {count} host(s)", per_count[count], goals[key])
    return rows


def render(figures: dict[str, Any], goals: dict[str, float], cores: int | None = None) -> str:
    lines = []
    approach_rows = _approach_rows(figures)
    if approach_rows:
        lines += ["", "per approach (median seconds, spread = min-max of the runs; ratio to the recipe on the same hosts;",
                  " CPU-seconds per host (medians):",
                  " ctrl = runner + playbook tree, target = sshd sessions + docker daemons, machine = whole box)",
                  f"{'hosts':<15} {'approach':<15} {'seconds':>8} {'spread':>11} {'/recipe':>8} {'ctrl':>7} {'runner':>7} "
                  f"{'playbk':>7} {'target':>7} {'sshd':>7} {'docker':>7} {'machine':>7}", *approach_rows]
    fit_rows = [f"{LABELS[approach]:<15} {side:<11} {fit['fixed_per_run']:>8.2f} {fit['marginal_per_host']:>10.2f}"
                for side in ("controller", "target")
                for approach, fit in (figures.get(f"{side}_cpu_fixed_and_marginal") or {}).items()]
    if fit_rows:
        lines += ["", "CPU-seconds of a run = fixed + marginal x hosts (least squares over the host counts measured)",
                  f"{'approach':<15} {'side':<11} {'fixed':>8} {'per host':>10}", *fit_rows]
    bound_rows = cpu_bound_rows(figures, goals, cores) if cores else []
    if bound_rows:
        lines += ["", f"CPU bound: the whole machine's CPU-s per run (hosts and controller share its {cores} cores) "
                  "and the least seconds that allows",
                  f"{'hosts':>5} {'approach':<15} {'per host':>8} {'per run':>8} {'least s':>10} {'measured':>9}", *bound_rows]
    for approach, found in (figures.get("census") or {}).items():
        lines += ["", f"census, {LABELS[approach]}, 1 host: {found['tasks_ran']} tasks ran ({found['tasks_skipped']} skipped): "
                  f"{found['controller_tasks']} controller-side in {found['controller_task_seconds']:.2f} s, "
                  f"{found['host_module_calls']} host module calls in {found['host_module_seconds']:.2f} s "
                  f"(playbook {found['playbook_seconds']:.2f} s)"]
        for task in found["host_tasks"]:
            lines.append(f"  {task['seconds'] or 0.0:>6.2f} s  {task['action']:<24} {task['task']}")
            if task.get("step_seconds"):  # release_host's own account of the call, on the host
                lines.append("            on the host: " + ", ".join(f"{step} {seconds:.2f} s"
                                                                   for step, seconds in task["step_seconds"].items()))
    census = figures.get("release_census") or {}
    if census:
        lines += ["", "census of a whole release (median s): commands "
                  + ", ".join(f"{name} {seconds:.2f}" for name, seconds in census.get("command_seconds", {}).items()),
                  "  stages " + ", ".join(f"{name} {seconds:.2f}" for name, seconds in census.get("stage_seconds", {}).items())]
    goal_rows = _goal_rows(figures, goals)
    if goal_rows:
        lines += ["", f"{'figure':<30} {'goal (issue 22)':<50} {'value':>8} {'goal':>8}  verdict", *goal_rows]
    others = [f"{key:<40} {value:>10.3f}" for key, value in figures.items()
              if isinstance(value, float) and not key.startswith(("host1_", "fleet")) and key not in goals]
    others += [f"{key:<40} {value:>10.3f}" for key, value in figures.items()
               if isinstance(value, float) and key.startswith("fleet") and key.count("_") == 1]
    spreads = [f"{key[:-len('_raw')]:<40} {spread(value):>11}  ({len(value)} runs)" for key, value in figures.items()
               if key.endswith("_raw") and isinstance(value, list) and value]
    if others:
        lines += ["", "other figures", *others]
    if spreads:
        lines += ["", "spread of the other timed figures (min-max of the runs)", *spreads]
    return "\n".join(lines)
