"""The Docker engine: make sure one answers, and clean up the sandbox's containers.

The engine is normally already running (and must then never be stopped by us); only when
`docker info` fails do we start `dockerd` ourselves and record that we did.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from sandbox.errors import SandboxError
from sandbox.procs import Started, spawn, wait_until

ENGINE_TIMEOUT_S = 60.0
SANDBOX_LABEL_KEY = "coordinator.sandbox"
SANDBOX_LABEL = f"{SANDBOX_LABEL_KEY}=1"  # set on containers we start; any value of the key counts
CONTAINER_PREFIX = "sample-"


def docker(*args: str, timeout_s: float = 30.0, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI with an argv list; raise SandboxError with its last words on failure."""
    argv = ["docker", *args]
    try:
        completed = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                   timeout=timeout_s, check=False)
    except FileNotFoundError as exc:
        raise SandboxError("the docker CLI is not installed; install docker.io") from exc
    except subprocess.TimeoutExpired as exc:
        raise SandboxError(f"`docker {args[0]}` did not answer within {timeout_s:.0f}s") from exc
    if check and completed.returncode != 0:
        raise SandboxError(f"`docker {' '.join(args)}` failed: {completed.stderr.strip() or completed.stdout.strip()}")
    return completed


def engine_answers() -> bool:
    try:
        return docker("info", "--format", "{{.ServerVersion}}", timeout_s=10.0, check=False).returncode == 0
    except SandboxError:
        return False


def ensure_engine(log: Path) -> Started | None:
    """Return the dockerd we started, or None when an engine already answered."""
    if engine_answers():
        return None
    proc = spawn(["dockerd"], log, marker="dockerd")
    wait_until(engine_answers, "dockerd", ENGINE_TIMEOUT_S, proc)
    return proc


def sandbox_containers() -> list[str]:
    """Names of containers that belong to the sandbox: labelled (any value), or named `sample-*`."""
    names: set[str] = set()
    labelled = docker("ps", "-a", "--filter", f"label={SANDBOX_LABEL_KEY}", "--format", "{{.Names}}").stdout
    names.update(line.strip() for line in labelled.splitlines() if line.strip())
    every = docker("ps", "-a", "--format", "{{.Names}}").stdout
    names.update(line.strip() for line in every.splitlines() if line.strip().startswith(CONTAINER_PREFIX))
    return sorted(names)


def remove_sandbox_containers() -> list[str]:
    """Force-remove the sandbox's containers (busybox ignores SIGTERM, so no graceful stop)."""
    names = sandbox_containers()
    if names:
        docker("rm", "--force", "--volumes", *names, timeout_s=60.0)
    return names
