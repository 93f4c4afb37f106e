"""Named crash points for the kill/resume tests.

`COORDINATOR_FAILPOINT=<name>[@N]` makes the process SIGKILL itself the N-th time (default
first) execution passes `hit(name)`: the same as an operator's `kill -9` or a power cut at
exactly that point, reproducibly. Unset (always, outside tests) it costs one dict lookup.
"""

from __future__ import annotations

import os
import signal

_counts: dict[str, int] = {}


def hit(name: str) -> None:
    spec = os.environ.get("COORDINATOR_FAILPOINT")
    if not spec:
        return
    target, _, nth = spec.partition("@")
    if target != name:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] >= int(nth or "1"):
        os.kill(os.getpid(), signal.SIGKILL)
