"""Read-only views of a bare repository, as the stand-in forge needs them.

Every call is one `git` argv run against the bare repo; nothing is cached, so a repository
swapped underneath (`sandbox reset` recreates it) is seen at once. A repository caught
half-replaced answers `GitUnavailable`; callers treat that as "try again next poll".
"""

from __future__ import annotations

import re
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from coordinator.errors import CoordinatorError

GIT_TIMEOUT_S = 30.0
_SHA = re.compile(r"[0-9a-f]{7,64}")


class GitUnavailable(CoordinatorError):
    """A git command on the bare repository failed (missing, locked or being replaced)."""


@dataclass(frozen=True)
class TagRef:
    """A tag as the forge shows it: `object_sha` is the tag object (annotated) or the
    commit (lightweight); `commit_sha` is always the peeled commit."""

    name: str
    object_sha: str
    commit_sha: str
    message: str
    created: str  # committer date of the peeled commit, ISO 8601


@dataclass(frozen=True)
class Ref:
    name: str  # full name, e.g. refs/tags/v1.0.0
    object_sha: str
    object_type: str  # commit or tag


def git(repo: Path, *args: str, input_bytes: bytes | None = None) -> str:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, input=input_bytes,
                              timeout=GIT_TIMEOUT_S, check=False)
    except (subprocess.TimeoutExpired, FileNotFoundError) as exc:
        raise GitUnavailable(f"git {args[0]} in {repo}: {exc}") from exc
    if done.returncode != 0:
        raise GitUnavailable(f"git {' '.join(args)} in {repo} failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout.decode(errors="replace")


def list_refs(repo: Path, prefix: str = "refs/") -> list[Ref]:
    out = git(repo, "for-each-ref", "--format=%(refname)%00%(objectname)%00%(objecttype)", prefix)
    refs = []
    for line in out.splitlines():
        name, sha, kind = line.split("\0")
        refs.append(Ref(name, sha, kind))
    return refs


def branch_heads(repo: Path) -> dict[str, str]:
    """Branch name → head commit sha."""
    return {ref.name.removeprefix("refs/heads/"): ref.object_sha for ref in list_refs(repo, "refs/heads/")}


def list_tags(repo: Path) -> list[TagRef]:
    """Every tag, newest first by the peeled commit's date (Gitea's order for /tags)."""
    fmt = "%(refname:strip=2)%00%(objectname)%00%(*objectname)%00%(contents:subject)%00%(creatordate:iso-strict)"
    out = git(repo, "for-each-ref", "--sort=-creatordate", f"--format={fmt}", "refs/tags/")
    tags = []
    for line in out.splitlines():
        name, sha, peeled, subject, created = line.split("\0")
        tags.append(TagRef(name, sha, peeled or sha, subject if peeled else "", created))
    return tags


def tag_shas(repo: Path) -> dict[str, str]:
    """Tag name → peeled commit sha: what the CI poller compares between polls."""
    return {tag.name: tag.commit_sha for tag in list_tags(repo)}


def get_tag(repo: Path, name: str) -> TagRef | None:
    return next((tag for tag in list_tags(repo) if tag.name == name), None)


def resolve_commit(repo: Path, ref: str) -> str | None:
    """Gitea's order for `{ref}`: branch, then tag, then a commit sha (7+ hex chars)."""
    candidates = [f"refs/heads/{ref}", f"refs/tags/{ref}"]
    if _SHA.fullmatch(ref):
        candidates.append(ref)
    for candidate in candidates:
        try:
            return git(repo, "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}").strip()
        except GitUnavailable:
            continue
    return None


def create_lightweight_tag(repo: Path, name: str, commit_sha: str) -> None:
    git(repo, "update-ref", f"refs/tags/{name}", commit_sha, "0" * 40)


def export_tree(repo: Path, ref: str, destination: Path) -> None:
    """Write the tree at `ref` into `destination` (like a CI checkout, without .git)."""
    destination.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="standin-archive-") as scratch:
        archive = Path(scratch) / "tree.tar"
        git(repo, "archive", "--format=tar", f"--output={archive}", ref)
        with tarfile.open(archive) as tar:
            tar.extractall(destination, filter="data")


def commit_subject(repo: Path, sha: str) -> str:
    return git(repo, "log", "-1", "--format=%s", sha).strip()


def default_branch(repo: Path) -> str:
    """HEAD's branch in the bare repo (what Gitea shows as `default_branch`)."""
    try:
        return git(repo, "symbolic-ref", "--short", "HEAD").strip() or "main"
    except GitUnavailable:
        return "main"
