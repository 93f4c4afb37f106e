"""The app's git side: a bare remote (the forge's storage) and the operator's checkout.

Both are recreated from `tests/sample-service/` on `reset`, giving every test the same
one-commit history on `main`. The identity is set in the checkout only, never globally.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

from tests.sandbox.errors import SandboxError

OPERATOR_NAME = "Sandbox Operator"
OPERATOR_EMAIL = "ops@sandbox.invalid"
BRANCH = "main"


def git(repo: Path, *args: str, timeout_s: float = 60.0) -> str:
    """Run git in `repo` with an argv list and return stdout; raise SandboxError on failure."""
    argv = ["git", "-C", str(repo), *args]
    try:
        completed = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                   timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise SandboxError(f"`git {args[0]}` in {repo} did not finish within {timeout_s:.0f}s") from exc
    if completed.returncode != 0:
        raise SandboxError(f"`git {' '.join(args)}` in {repo} failed: {completed.stderr.strip()}")
    return completed.stdout


def _replace_dir(target: Path, build: Callable[[Path], None]) -> None:
    """Build the new directory beside `target`, then swap it in, so readers (the stand-in
    polls the bare repo) see the old or the new repository, hardly ever a half-made one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fresh = target.with_name(f".{target.name}.new-{uuid.uuid4().hex[:8]}")
    stale = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    try:
        build(fresh)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    if target.exists():
        target.rename(stale)
    fresh.rename(target)
    shutil.rmtree(stale, ignore_errors=True)


def create_bare_remote(remote: Path) -> None:
    def build(path: Path) -> None:
        path.mkdir(parents=True)
        git(path, "init", "--quiet", "--bare", f"--initial-branch={BRANCH}")

    _replace_dir(remote, build)


def seed_checkout(checkout: Path, remote: Path, example: Path) -> str:
    """Clone-equivalent of a fresh app: copy `example`, commit on main, push. Returns HEAD."""
    if not (example / "VERSION").is_file():
        raise SandboxError(f"example app {example} has no VERSION; restore tests/sample-service/")

    def build(path: Path) -> None:
        shutil.copytree(example, path, ignore=shutil.ignore_patterns(".git", "busybox", "__pycache__"))
        git(path, "init", "--quiet", f"--initial-branch={BRANCH}")
        git(path, "config", "user.name", OPERATOR_NAME)
        git(path, "config", "user.email", OPERATOR_EMAIL)
        git(path, "config", "commit.gpgsign", "false")
        git(path, "config", "tag.gpgsign", "false")
        git(path, "remote", "add", "origin", str(remote))
        git(path, "add", "--all")
        git(path, "commit", "--quiet", "-m", "Initial commit of the sample service")

    _replace_dir(checkout, build)
    # Pushed from the final path so that the checkout's tracking config is for `origin`.
    git(checkout, "push", "--quiet", "--set-upstream", "origin", BRANCH)
    return git(checkout, "rev-parse", "HEAD").strip()


def is_seeded(checkout: Path, remote: Path) -> bool:
    """The checkout exists, has origin = `remote`, and main was pushed (up keeps it as is)."""
    if not (checkout / ".git").is_dir() or not (remote / "HEAD").is_file():
        return False
    try:
        origin = git(checkout, "remote", "get-url", "origin").strip()
        git(remote, "rev-parse", "--verify", "--quiet", f"refs/heads/{BRANCH}")
    except SandboxError:
        return False
    return Path(origin) == remote
