"""bench/report.py's CPU bound: the least seconds a fleet run's CPU allows on this machine's cores."""

from __future__ import annotations

from bench.report import cpu_bound_rows, render


FIGURES = {
    "fleet20_deploy_machine_cpu_per_host": 2.0, "fleet20_deploy_seconds": 25.0,
    "fleet20_recipe_machine_cpu_per_host": 0.5, "fleet20_recipe_seconds": 6.0,
}
GOALS = {"fleet20_recipe_ratio": 2.5}


def test_a_run_needs_at_least_its_machine_cpu_divided_by_the_cores() -> None:
    rows = cpu_bound_rows(FIGURES, GOALS, cores=2)

    assert rows[0].split() == ["20", "our", "deploy.yml", "2.00", "40.0", "20.00", "25.00"]
    assert rows[1].split() == ["20", "shell", "recipe", "0.50", "10.0", "5.00", "6.00"]


def test_the_20_host_goal_is_turned_into_the_cpu_it_leaves() -> None:
    rows = cpu_bound_rows(FIGURES, GOALS, cores=2)

    # 2.5 x 6 s = 15 s on 2 cores: 30 CPU-s for 20 hosts, 1.5 each; ours uses 2.0 each.
    assert rows[-1] == "the 20-host goal (2.5 x the recipe's 6.00 s = 15.00 s) leaves at most 30.0 CPU-s, 1.50 per host, on 2 cores"


def test_without_the_core_count_the_table_is_left_out() -> None:
    from bench.__main__ import GOALS as ALL_GOALS

    assert "CPU bound" not in render(FIGURES, ALL_GOALS)
    assert "CPU bound" in render(FIGURES, ALL_GOALS, cores=2)
