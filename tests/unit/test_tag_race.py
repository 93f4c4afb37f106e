"""The tag stage when another process pushes the same tag between our probe and our push.

Real git on local repositories (no mocks): a bare remote and a clone; the race is made by
pushing the tag from a second clone just before our own `git push` runs.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from coordinator.errors import CheckFailed
from coordinator.git import Git
from coordinator.release import Release
from coordinator.stages.tag import run_tag

IDENTITY = ["-c", "user.name=t", "-c", "user.email=t@example.invalid"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *IDENTITY, *args], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.fixture
def repos(tmp_path: Path) -> SimpleNamespace:
    bare, mine, theirs = tmp_path / "remote.git", tmp_path / "mine", tmp_path / "theirs"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    subprocess.run(["git", "clone", "-q", str(bare), str(mine)], check=True, capture_output=True)
    (mine / "f").write_text("one\n")
    git(mine, "add", "f")
    git(mine, "commit", "-qm", "one")
    git(mine, "push", "-q", "origin", "HEAD:refs/heads/main")
    subprocess.run(["git", "clone", "-q", str(bare), str(theirs)], check=True, capture_output=True)
    return SimpleNamespace(bare=bare, mine=mine, theirs=theirs, head=git(mine, "rev-parse", "HEAD"))


def context(path: Path, said: list[str]) -> Any:
    app = SimpleNamespace(path=path, remote="origin")
    return SimpleNamespace(config=SimpleNamespace(app=app), out=SimpleNamespace(info=said.append))


def release(sha: str) -> Release:
    return Release(id="sample-1.0.0", project="sample", version="1.0.0", tag="v1.0.0", operator="ann", commit_sha=sha)


def race(monkeypatch: pytest.MonkeyPatch, theirs: Path, target: str) -> None:
    """Their push lands after our probe, just before ours."""
    real_push = Git.push_tag

    def push_after_them(self: Git, remote: str, tag: str) -> None:
        git(theirs, "tag", "-a", "-m", "theirs", tag, target)
        git(theirs, "push", "-q", "origin", f"refs/tags/{tag}")
        real_push(self, remote, tag)

    monkeypatch.setattr(Git, "push_tag", push_after_them)


def test_a_rejected_push_of_a_tag_they_pushed_at_our_commit_is_done(repos: SimpleNamespace, monkeypatch) -> None:
    race(monkeypatch, repos.theirs, repos.head)
    said: list[str] = []
    run_tag(context(repos.mine, said), release(repos.head))
    assert "by another process" in said[-1] and "the same commit" in said[-1]
    remote_object = git(repos.mine, "ls-remote", "origin", "refs/tags/v1.0.0").split()[0]
    assert git(repos.mine, "rev-parse", "refs/tags/v1.0.0") == remote_object


def test_a_rejected_push_of_a_tag_they_pushed_elsewhere_is_the_hard_error(repos: SimpleNamespace, monkeypatch) -> None:
    (repos.theirs / "g").write_text("two\n")
    git(repos.theirs, "add", "g")
    git(repos.theirs, "commit", "-qm", "two")
    other = git(repos.theirs, "rev-parse", "HEAD")
    race(monkeypatch, repos.theirs, other)
    with pytest.raises(CheckFailed) as caught:
        run_tag(context(repos.mine, []), release(repos.head))
    assert caught.value.problems == [
        f"tag v1.0.0 exists on origin at {other[:12]} while this release was pushing it, "
        f"not at the release commit {repos.head[:12]}: release a new version"
    ]


def test_a_push_that_fails_for_another_reason_keeps_gits_message(repos: SimpleNamespace) -> None:
    git(repos.mine, "remote", "set-url", "origin", str(repos.bare.parent / "gone.git"))
    with pytest.raises(Exception, match="git ls-remote"):
        run_tag(context(repos.mine, []), release(repos.head))
