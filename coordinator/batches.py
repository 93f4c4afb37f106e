"""How deploy.yml will split a fleet into batches, for `plan` to show before anything moves.

deploy.yml's `serial` decides (Ansible batches the hosts); this is the same rule in Python so
an operator sees "batches 1, 2, 2" before promoting, and tests/ansible/test_batch_sizes.py
checks the two agree with what ansible-playbook really does. The default is one canary
host, then a quarter of the hosts per batch rounded up (Ansible's own "25%" rounds down,
which made five hosts five one-host batches in a row).
"""

from __future__ import annotations

import math

BatchSetting = int | str | list[int | str]


def default_sizes(hosts: int) -> list[int | str]:
    """deploy.yml's default `serial` for `hosts` hosts: a canary, then quarters rounded up."""
    return [1, math.ceil(hosts / 4)]


def _size(setting: int | str, hosts: int) -> int:
    """One `serial` entry as Ansible reads it: a count, or a percentage of all the play's hosts,
    rounded down and at least one host."""
    if isinstance(setting, str) and setting.endswith("%"):
        return max(1, int(int(setting[:-1]) / 100 * hosts))
    return max(1, int(setting))


def batches(hosts: int, serial: BatchSetting | None = None) -> list[int]:
    """The batch sizes, in order, that deploy.yml runs `hosts` hosts in (the last size repeats)."""
    settings = default_sizes(hosts) if serial is None else serial if isinstance(serial, list) else [serial]
    sizes: list[int] = []
    left, index = hosts, 0
    while left > 0:
        size = min(_size(settings[min(index, len(settings) - 1)], hosts), left)
        sizes.append(size)
        left -= size
        index += 1
    return sizes
