"""Which Ansible strategy runs the playbooks: Ansible's own `linear`, or Mitogen's (opt-in).

Mitogen (the optional `mitogen` extra) keeps one Python interpreter per host for a whole
playbook instead of starting one per module call: on fleets it saves wall time and halves
the hosts' CPU, on one host it is slower (docs/performance.md). It is a third-party strategy
plugin that tracks ansible-core from outside, so it is never the default.

The choice is the config key `ansible.strategy` alone, with no environment override: every
operator and CI job that releases with one config file runs the same strategy, and an
`ANSIBLE_STRATEGY` in someone's shell cannot swap it behind the key's back (the runner sets
it for every run, `linear` included). A missing Mitogen is a config error (exit 2) when the
config is loaded, before any command changes anything.
"""

from __future__ import annotations

import importlib.util
import sys
from enum import StrEnum
from pathlib import Path

from coordinator.errors import ConfigError

MITOGEN_INSTALL = "pip install 'release-coordinator[mitogen]'"
"""How an operator adds Mitogen to the coordinator's own Python (the extra pins the tested version)."""

LINEAR_STRATEGY = "ansible.builtin.linear"
"""Ansible's own, by its full name: a `linear` plugin in someone's ANSIBLE_STRATEGY_PLUGINS cannot stand in."""

MITOGEN_STRATEGY = "mitogen_linear"
"""Mitogen's plugin that keeps the linear strategy's order (each task on every host before the next)."""


class AnsibleStrategy(StrEnum):
    LINEAR = "linear"
    MITOGEN = "mitogen"


def mitogen_strategy_dir() -> Path | None:
    """The installed ansible_mitogen's strategy plugin folder, or None when Mitogen is not installed.

    Found without importing it (ansible_mitogen imports Ansible, which costs a controller
    command 0.4 s that most commands never need). The ansible-playbook that ansible-runner
    starts is this Python's (`coordinator.ansible.runner_envvars` puts its bin first on PATH),
    so what this interpreter finds is what that run loads.
    """
    spec = importlib.util.find_spec("ansible_mitogen")
    if spec is None or not spec.submodule_search_locations:
        return None
    plugins = Path(next(iter(spec.submodule_search_locations))) / "plugins" / "strategy"
    return plugins if (plugins / f"{MITOGEN_STRATEGY}.py").is_file() else None


def _installed_mitogen() -> Path:
    """Mitogen's strategy plugin folder; ConfigError (exit 2) when this Python does not have it."""
    plugins = mitogen_strategy_dir()
    if plugins is None:
        raise ConfigError(f"ansible.strategy: mitogen is chosen but Mitogen is not installed for {sys.executable}; "
                          f"install it with {MITOGEN_INSTALL}, or set ansible.strategy to linear")
    return plugins


def require_strategy(strategy: AnsibleStrategy) -> None:
    """Refuse (ConfigError, exit 2) a strategy whose plugin this Python does not have."""
    if strategy == AnsibleStrategy.MITOGEN:
        _installed_mitogen()


def strategy_envvars(strategy: AnsibleStrategy) -> dict[str, str]:
    """The environment variables that make every playbook run use `strategy`, and nothing else."""
    if AnsibleStrategy(strategy) == AnsibleStrategy.MITOGEN:
        return {"ANSIBLE_STRATEGY_PLUGINS": str(_installed_mitogen()), "ANSIBLE_STRATEGY": MITOGEN_STRATEGY}
    return {"ANSIBLE_STRATEGY": LINEAR_STRATEGY}
