"""Whether a process of this machine still runs: what decides if a leftover of it may be swept."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True if `pid` exists (also when it is another user's: signalling it is refused, not missed)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
