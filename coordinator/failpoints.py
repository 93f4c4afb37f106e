"""Named crash points for the kill/resume tests, armed only in a development install.

`COORDINATOR_FAILPOINT=<name>[@N]` makes the process SIGKILL itself the N-th time (default
first) execution passes `hit(name)`: the same as an operator's `kill -9` or a power cut at
exactly that point, reproducibly.

A variable that makes a production process kill itself must not work where operators run
the coordinator, so the dev-only switch is the install itself: the points are armed only
when the package is an editable install of a checkout (`pip install -e`, as
`scripts/bootstrap` makes; its PEP 610 `direct_url.json` says `editable`). From a wheel,
pipx or a git URL the variable is ignored. Unset (always, outside tests) `hit` costs one
dict lookup.
"""

from __future__ import annotations

import functools
import json
import os
import signal
from importlib import metadata

from coordinator import DISTRIBUTION

_counts: dict[str, int] = {}


@functools.cache
def armed() -> bool:
    """True only for an editable (development) install of the coordinator.

    Every copy of the distribution's metadata on the path is asked: run from a checkout's
    root, Python also finds the checkout's own `*.egg-info`, which has no `direct_url.json`.
    """
    for distribution in metadata.distributions(name=DISTRIBUTION):
        try:
            direct_url = json.loads(distribution.read_text("direct_url.json") or "{}")
        except ValueError:
            continue
        if isinstance(direct_url, dict) and direct_url.get("dir_info", {}).get("editable") is True:
            return True
    return False


def hit(name: str) -> None:
    spec = os.environ.get("COORDINATOR_FAILPOINT")
    if not spec or not armed():
        return
    target, _, nth = spec.partition("@")
    if target != name:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] >= int(nth or "1"):
        os.kill(os.getpid(), signal.SIGKILL)
