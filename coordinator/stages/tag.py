"""Stage 2, tag: an annotated `v{version}` tag, pushed and confirmed on the remote.

Idempotent by probing first: the tag already on the remote at our commit means done; at
another commit it is a hard error (somebody released that version from different code).
"""

from __future__ import annotations

from coordinator.context import Context
from coordinator.errors import CheckFailed
from coordinator.git import Git
from coordinator.release import Release


def run_tag(ctx: Context, release: Release) -> None:
    app = ctx.config.app
    git = Git(app.path)
    assert release.commit_sha is not None, "validate records the commit"
    remote = git.remote_tag(app.remote, release.tag)
    if remote is not None:
        if remote.commit_sha != release.commit_sha:
            raise CheckFailed([
                f"tag {release.tag} exists on {app.remote} at {remote.commit_sha[:12]}, "
                f"not at the release commit {release.commit_sha[:12]}: release a new version"
            ])
        ctx.out.info(f"tag {release.tag} already on {app.remote} at {release.commit_sha[:12]}")
        return
    local = git.local_tag_sha(release.tag)
    if local is None:
        git.create_annotated_tag(release.tag, release.commit_sha, release.tag)
    elif local != release.commit_sha:
        raise CheckFailed([
            f"local tag {release.tag} points at {local[:12]}, not {release.commit_sha[:12]}: "
            f"delete it with git tag -d {release.tag}"
        ])
    git.push_tag(app.remote, release.tag)
    confirmed = git.remote_tag(app.remote, release.tag)
    if confirmed is None or confirmed.commit_sha != release.commit_sha:
        raise CheckFailed([f"pushed {release.tag} but {app.remote} does not show it at {release.commit_sha[:12]}"])
    ctx.out.info(f"pushed {release.tag} → {release.commit_sha[:12]}")
