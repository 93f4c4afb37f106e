"""Stage 2, tag: an annotated `v{version}` tag, pushed and confirmed on the remote.

Idempotent by probing first: the tag already on the remote at our commit means done; at
another commit it is a hard error (somebody released that version from different code).
The probe and the push are not atomic: another process (a second coordinator, a CI job, a
person) may push the same tag in between, and git then rejects our push. So a rejected
push is followed by a second probe, which decides by the same rule: our commit = done,
another commit = the hard error, no tag at all = git's own message (the push failed for
another reason).
"""

from __future__ import annotations

from coordinator.context import Context
from coordinator.errors import CheckFailed
from coordinator.git import Git, GitError
from coordinator.release import Release


def run_tag(ctx: Context, release: Release) -> None:
    app = ctx.config.app
    git = Git(app.path)
    assert release.commit_sha is not None, "validate records the commit"
    if _already_tagged(ctx, git, release, raced=False):
        return
    local = git.local_tag_sha(release.tag)
    if local is None:
        git.create_annotated_tag(release.tag, release.commit_sha, release.tag)
    elif local != release.commit_sha:
        raise CheckFailed([
            f"local tag {release.tag} points at {local[:12]}, not {release.commit_sha[:12]}: "
            f"delete it with git tag -d {release.tag}"
        ])
    try:
        git.push_tag(app.remote, release.tag)
    except GitError:
        if _already_tagged(ctx, git, release, raced=True):
            # Keep the checkout's tag the same object as the remote's, so the two never disagree.
            git.fetch_tag(app.remote, release.tag)
            return
        raise
    confirmed = git.remote_tag(app.remote, release.tag)
    if confirmed is None or confirmed.commit_sha != release.commit_sha:
        raise CheckFailed([f"pushed {release.tag} but {app.remote} does not show it at {release.commit_sha[:12]}"])
    ctx.out.info(f"pushed {release.tag} → {release.commit_sha[:12]}")


def _already_tagged(ctx: Context, git: Git, release: Release, *, raced: bool) -> bool:
    """True when the remote has the tag at the release commit; CheckFailed when at another."""
    app = ctx.config.app
    assert release.commit_sha is not None
    remote = git.remote_tag(app.remote, release.tag)
    if remote is None:
        return False
    when = " while this release was pushing it" if raced else ""
    if remote.commit_sha != release.commit_sha:
        raise CheckFailed([
            f"tag {release.tag} exists on {app.remote} at {remote.commit_sha[:12]}{when}, "
            f"not at the release commit {release.commit_sha[:12]}: release a new version"
        ])
    if raced:
        ctx.out.info(f"tag {release.tag} was pushed to {app.remote} at {release.commit_sha[:12]} by another process "
                     "a moment before ours (push rejected): the same commit, so the tag stands")
    else:
        ctx.out.info(f"tag {release.tag} already on {app.remote} at {release.commit_sha[:12]}")
    return True
