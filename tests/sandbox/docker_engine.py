"""The Docker engine: make sure one answers, and clean up the sandbox's containers.

The engine is normally already running (and must then never be stopped by us); only when
`docker info` fails do we start `dockerd` ourselves and record that we did.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.sandbox.errors import SandboxError
from tests.sandbox.procs import Started, spawn, wait_until

ENGINE_TIMEOUT_S = 60.0
SANDBOX_LABEL_KEY = "coordinator.sandbox"
"""Containers a world starts carry `coordinator.sandbox=<the world's directory>`: cleanup
matches the value exactly, so one checkout's world never removes another's containers (or
anything else on the engine)."""


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


def world_label(world_dir: Path) -> str:
    """The `key=value` label that marks a container as started by the world in `world_dir`."""
    return f"{SANDBOX_LABEL_KEY}={Path(world_dir).resolve()}"


def sandbox_containers(world_dir: Path) -> list[str]:
    """Names of the containers that belong to the world in `world_dir` (by its exact label)."""
    labelled = docker("ps", "-a", "--filter", f"label={world_label(world_dir)}", "--format", "{{.Names}}").stdout
    return sorted({line.strip() for line in labelled.splitlines() if line.strip()})


def remove_sandbox_containers(world_dir: Path) -> list[str]:
    """Force-remove this world's containers (busybox ignores SIGTERM, so no graceful stop)."""
    names = sandbox_containers(world_dir)
    if names:
        docker("rm", "--force", "--volumes", *names, timeout_s=60.0)
    return names
