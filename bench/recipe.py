"""The seed's literal shell recipe, the baseline every figure is compared against.

`docker pull / stop / rm / run` then `curl /health` and `/version` until 200, run on the
host (over ssh for production, as the seed does). Inputs here are our own constants, not
operator text, so the remote command line is built from known-safe values.
"""

from __future__ import annotations

import subprocess
import time

from bench.timing import wait_until_serving
from tests.sandbox.coordinator_config import IMAGE, REPO_ROOT

SSH_DIR = REPO_ROOT / ".sandbox" / "ssh"


def ssh_argv() -> list[str]:
    return ["ssh", "-i", str(SSH_DIR / "client_key"), "-o", f"UserKnownHostsFile={SSH_DIR / 'known_hosts'}",
            "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-p", "45022", "root@127.0.0.1"]


def recipe_script(container: str, port: int, digest: str) -> str:
    reference = f"{IMAGE}@{digest}"
    return (
        f"docker pull -q {reference} >/dev/null && "
        f"(docker stop -t 2 {container} >/dev/null 2>&1 || true) && "
        f"(docker rm {container} >/dev/null 2>&1 || true) && "
        f"docker run -d --init --name {container} --restart unless-stopped "
        f"-p 127.0.0.1:{port}:8080 {reference} >/dev/null"
    )


def run_recipe(container: str, port: int, digest: str, version: str, *, over_ssh: bool) -> float:
    """Seconds from the first command to /health and /version answering 200."""
    started = time.perf_counter()
    script = recipe_script(container, port, digest)
    argv = [*ssh_argv(), script] if over_ssh else ["sh", "-c", script]
    completed = subprocess.run(argv, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    if completed.returncode != 0:
        raise RuntimeError(f"the recipe for {container} exited {completed.returncode}: {completed.stderr.strip()[-500:]}")
    served_at = wait_until_serving(f"http://127.0.0.1:{port}", version, interval_s=0.05)
    return served_at - started


def remove_container(container: str) -> None:
    subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
