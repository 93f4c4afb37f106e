"""deploy.yml's default batches: one canary host, then a quarter of the hosts, rounded up.

Ansible's '25%' rounds down, which made 5 hosts five one-host batches in a row. The test
takes deploy.yml's own `serial` expression and lets ansible-playbook batch local hosts with
it, so what is asserted is what Ansible does with the expression, not a copy of the rule.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from coordinator.batches import batches
from tests.ansible.conftest import REPO, VENV_BIN, ansible_env


def _deploy_play() -> dict[str, Any]:
    plays = yaml.safe_load((REPO / "playbooks" / "deploy.yml").read_text())
    return next(play for play in plays if play["name"].startswith("Deploy the release in batches"))


def _batches(tmp_path: Path, hosts: int, extra_vars: dict[str, Any] | None = None) -> list[int]:
    """The batch sizes ansible-playbook makes of `hosts` local hosts under deploy.yml's serial."""
    play = _deploy_play()
    inventory = {"app": {"hosts": {f"h{n}": {"ansible_connection": "local"} for n in range(1, hosts + 1)}}}
    probe = [{"name": "batches", "hosts": play["hosts"], "serial": play["serial"], "gather_facts": False,
              "tasks": [{"name": "Print the batch", "ansible.builtin.debug": {"msg": "BATCH {{ ansible_play_batch | length }}"},
                         "run_once": True}]}]
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "probe.yml").write_text(yaml.safe_dump(probe))
    argv = [str(VENV_BIN / "ansible-playbook"), "-i", str(tmp_path / "hosts.yml"), str(tmp_path / "probe.yml")]
    if extra_vars:
        argv += ["-e", json.dumps(extra_vars)]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=ansible_env(), check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    return [int(line.split("BATCH ")[1].strip('"')) for line in run.stdout.splitlines() if "BATCH " in line]


@pytest.mark.parametrize(("hosts", "expected"), [
    (1, [1]), (2, [1, 1]), (4, [1, 1, 1, 1]), (5, [1, 2, 2]), (8, [1, 2, 2, 2, 1]), (20, [1, 5, 5, 5, 4]),
])
def test_default_batches_are_a_canary_then_quarters_rounded_up(tmp_path, hosts, expected):
    assert _batches(tmp_path, hosts) == expected
    assert batches(hosts) == expected  # what `coordinator plan` shows


@pytest.mark.parametrize(("hosts", "serial"), [(5, "100%"), (5, [1, "50%"]), (20, "25%"), (5, "25%"), (3, 2),
                                                (7, ["1", "30%", 3]), (10, "15%")])
def test_plan_s_batches_are_what_ansible_makes_of_a_configured_serial(tmp_path, hosts, serial):
    assert batches(hosts, serial) == _batches(tmp_path, hosts, {"deploy_serial": serial})


def test_the_configured_batches_replace_the_default(tmp_path):
    assert _batches(tmp_path, 5, {"deploy_serial": "100%"}) == [5]
    assert _batches(tmp_path, 5, {"deploy_serial": [1, "50%"]}) == [1, 2, 2]
