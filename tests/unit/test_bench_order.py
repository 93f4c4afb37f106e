"""The bench measures approaches in turn, so load from elsewhere lands on all of them alike."""

from __future__ import annotations

from bench.compare import round_robin


def test_every_round_runs_each_approach_once_starting_one_later() -> None:
    order = round_robin(["deploy", "peer", "recipe"], 3)

    rounds = [[approach for i, approach in order if i == run] for run in range(3)]
    assert rounds == [["deploy", "peer", "recipe"], ["peer", "recipe", "deploy"], ["recipe", "deploy", "peer"]]


def test_no_approach_runs_twice_in_a_row() -> None:
    order = [approach for _i, approach in round_robin(["deploy", "peer", "recipe"], 5)]

    assert all(a != b for a, b in zip(order, order[1:]))
