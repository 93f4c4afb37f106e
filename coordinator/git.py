"""git through subprocess argv lists: never a shell, options always before `--`.

Only what the release needs: where HEAD is, whether the remote agrees, and an annotated
tag that is pushed and then confirmed on the remote.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from coordinator.causes import whole_cause
from coordinator.errors import CheckFailed, CoordinatorError

_REF_NAME = re.compile(r"^(?!.*\.\.)(?!.*@\{)(?!/)(?!.*//)(?!.*\.lock$)[A-Za-z0-9._/+-]+(?<![./])$")


class GitError(CoordinatorError):
    """A git command failed; carries git's own message."""


def check_ref_name(name: str) -> str:
    """Refuse anything that is not a plain git ref name (it reaches argv and the remote)."""
    if not _REF_NAME.match(name) or name.startswith("-"):
        raise CheckFailed([f"{name!r} is not a valid git ref name"])
    return name


@dataclass(frozen=True)
class RemoteTag:
    name: str
    commit_sha: str


class Git:
    """A git work tree, driven with argv lists."""

    def __init__(self, work_tree: Path, timeout_s: float = 120.0) -> None:
        self.work_tree = work_tree
        self.timeout_s = timeout_s

    def run(self, *args: str) -> str:
        argv = ["git", "-C", str(self.work_tree), *args]
        try:
            completed = subprocess.run(
                argv, capture_output=True, text=True, timeout=self.timeout_s, check=False,
                env=_git_env(),
            )
        except subprocess.TimeoutExpired as exc:
            raise GitError(f"git {args[0]} did not finish within {self.timeout_s:.0f}s") from exc
        if completed.returncode != 0:
            raise GitError(f"git {' '.join(args[:2])} failed: {whole_cause(completed.stderr or completed.stdout) or 'no output'}")
        return completed.stdout.strip()

    def is_repo(self) -> bool:
        try:
            return self.run("rev-parse", "--is-inside-work-tree") == "true"
        except GitError:
            return False

    def head_sha(self) -> str:
        return self.run("rev-parse", "--verify", "HEAD^{commit}")

    def current_branch(self) -> str:
        return self.run("rev-parse", "--abbrev-ref", "HEAD")

    def commit_time(self, sha: str) -> datetime:
        return datetime.fromisoformat(self.run("show", "-s", "--format=%cI", sha))

    def is_clean(self) -> bool:
        return self.run("status", "--porcelain", "--untracked-files=no") == ""

    def remote_branch_sha(self, remote: str, branch: str) -> str | None:
        out = self.run("ls-remote", "--heads", "--", remote, f"refs/heads/{check_ref_name(branch)}")
        return out.split()[0] if out else None

    def remote_tag(self, remote: str, tag: str) -> RemoteTag | None:
        """The commit a tag on the remote points at (annotated tags peeled), or None."""
        ref = f"refs/tags/{check_ref_name(tag)}"
        out = self.run("ls-remote", "--tags", "--", remote, ref, f"{ref}^{{}}")
        shas = {}
        for line in out.splitlines():
            sha, name = line.split("\t", 1)
            shas[name] = sha
        if ref not in shas:
            return None
        return RemoteTag(tag, shas.get(f"{ref}^{{}}", shas[ref]))

    def local_tag_sha(self, tag: str) -> str | None:
        try:
            return self.run("rev-parse", "--verify", "--quiet", f"refs/tags/{check_ref_name(tag)}^{{commit}}")
        except GitError:
            return None

    def create_annotated_tag(self, tag: str, commit_sha: str, message: str) -> None:
        self.run("tag", "--annotate", f"--message={message}", "--", check_ref_name(tag), commit_sha)

    def push_tag(self, remote: str, tag: str) -> None:
        ref = f"refs/tags/{check_ref_name(tag)}"
        self.run("push", "--porcelain", "--", remote, f"{ref}:{ref}")

    def fetch_tag(self, remote: str, tag: str) -> None:
        """Replace the local tag with the remote's (after a push race left two tag objects)."""
        ref = f"refs/tags/{check_ref_name(tag)}"
        self.run("fetch", "--quiet", "--force", "--no-tags", "--", remote, f"+{ref}:{ref}")


def _git_env() -> dict[str, str]:
    """git must never stop to ask a question: there may be no terminal."""
    env = dict(os.environ)
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    return env
