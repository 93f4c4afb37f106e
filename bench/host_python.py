"""The one Python every measured playbook runs on the host, so no approach pays for another's.

The peer playbook needs `requests` on the host (community.docker imports it); ours needs
nothing but Python 3. Before, the peer ran the controller venv's interpreter (a pyenv build
whose editable-install `.pth` runs at every start, about 0.7 s a run more) and ours Debian's
`/usr/bin/python3`. Now both run a venv made from Debian's Python with only `requests` (and
its pins from scripts/constraints.txt) added: the same start-up cost for both.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.sandbox.coordinator_config import REPO_ROOT

HOST_PYTHON_DIR = REPO_ROOT / ".sandbox" / "bench-host-python"
CONSTRAINTS = REPO_ROOT / "scripts" / "constraints.txt"


def host_python() -> str:
    """The interpreter path (made once, kept under .sandbox/)."""
    python = HOST_PYTHON_DIR / "bin" / "python"
    if _has_requests(python):
        return str(python)
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--clear", str(HOST_PYTHON_DIR)], check=True, timeout=300)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "-c", str(CONSTRAINTS), "requests"], check=True,
                   timeout=600, capture_output=True)
    if not _has_requests(python):
        raise RuntimeError(f"{python} cannot import requests after installing it")
    return str(python)


def _has_requests(python: Path) -> bool:
    if not python.exists():
        return False
    return subprocess.run([str(python), "-c", "import requests"], capture_output=True, check=False,
                          timeout=60).returncode == 0
