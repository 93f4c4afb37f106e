"""Start and talk to the stand-in Gitea (`python -m tests.sandbox.gitea`, written separately).

Only the launch contract lives here: the flags, the token file it reads, the readiness
probe and the admin reset. The forge's behaviour is the stand-in's own business.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import httpx

from tests.sandbox.errors import SandboxError
from tests.sandbox.procs import Started, spawn, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULE_FILE = Path(__file__).resolve().parent / "gitea.py"
START_TIMEOUT_S = 30.0
TOKEN_PREFIX = "sandbox-token-"


def available() -> bool:
    return MODULE_FILE.is_file()


def code_changed_since(started_at: float) -> bool:
    """True when the stand-in's code (or the image builder it uses) was edited after it
    started: `up` then restarts it, so a long-lived world never serves stale behaviour."""
    package = MODULE_FILE.parent
    sources = [*package.glob("gitea*.py"), *package.glob("gitea/**/*.py"), package / "ci.py",
               package / "imagebuild.py"]
    return any(path.is_file() and path.stat().st_mtime > started_at for path in sources)


def ensure_token(token_file: Path) -> None:
    """Create the token file (0600) once; the stand-in and every client read the same one."""
    if token_file.is_file() and token_file.read_text(encoding="utf-8").strip().startswith(TOKEN_PREFIX):
        token_file.chmod(0o600)
        return
    token_file.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(TOKEN_PREFIX + secrets.token_hex(20) + "\n")
    token_file.chmod(0o600)


def answers(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/api/v1/version", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def start(*, host: str, port: int, git_root: Path, registry: str, token_file: Path, state_file: Path,
          log: Path) -> Started:
    argv = [sys.executable, "-m", "tests.sandbox.gitea", "--host", host, "--port", str(port),
            "--git-root", str(git_root), "--registry", registry, "--token-file", str(token_file),
            "--state-file", str(state_file), "--log", str(log)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    # The stand-in writes its own log via --log; its stdout/stderr (tracebacks) go beside it.
    proc = spawn(argv, log.with_suffix(".out"), marker="tests.sandbox.gitea", cwd=REPO_ROOT, env=env)
    wait_until(lambda: answers(f"http://{host}:{port}"), f"stand-in Gitea on {host}:{port}", START_TIMEOUT_S, proc)
    return proc


def reset(base_url: str, token_file: Path) -> bool:
    """Ask a running stand-in to forget its state; False when it is not up."""
    if not answers(base_url):
        return False
    token = token_file.read_text(encoding="utf-8").strip() if token_file.is_file() else ""
    headers = {"Authorization": f"token {token}"} if token else {}
    try:
        response = httpx.post(f"{base_url}/_standin/reset", headers=headers, timeout=10.0)
    except httpx.HTTPError as exc:
        raise SandboxError(f"stand-in reset at {base_url}/_standin/reset failed: {exc}") from exc
    if response.status_code >= 400:
        raise SandboxError(f"stand-in reset at {base_url}/_standin/reset answered {response.status_code}")
    return True
