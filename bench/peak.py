"""Run the coordinator CLI in this process and write its peak RSS (MiB) to a file.

`python -m bench.peak OUT -- <coordinator args>`: the figure is the coordinator's own
process (ru_maxrss of self), not the Ansible processes it starts.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path


def main() -> None:
    out = Path(sys.argv[1])
    args = sys.argv[sys.argv.index("--") + 1:]
    sys.argv = ["coordinator", *args]
    from coordinator.cli import main as coordinator_main

    try:
        coordinator_main()
    finally:
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        previous = float(out.read_text()) if out.exists() else 0.0
        out.write_text(f"{max(previous, peak_kib / 1024):.1f}")


if __name__ == "__main__":
    main()
