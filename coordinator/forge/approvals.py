"""Forge approvals as evidence the forge attributes: comments on the release's approval issue.

Under `approvals.identity: forge` an approval is not a row some client wrote: it is a
comment, on an issue titled `Approve <tag> for <environment>`, whose whole text is
`approve <tag> <digest>`. The forge records who wrote it (the token's owner) and when,
so any machine can re-read it with its own token; approving from the forge's web page
with the same words works as well as `coordinator approve`.

At the gate every such comment is re-verified, with the gate machine's token:
- the words name this release's tag and the exact digest that would be promoted;
- it was not edited (`updated_at == created_at`): Gitea lets anyone with write access edit
  anyone's comment, so an edited comment is no longer its author's word;
- it was written after staging finished (an approval cannot predate what it approves);
- its author may approve *now*: listed in `approvals.approvers` (team membership asked of
  the forge at the gate), not a bot or the CI identity that started the release, not the
  releaser when self-approval is forbidden (`coordinator.releaser.not_counted`), and, with
  the PostgreSQL backend, allowed by the owner's gate policy (which also names the bots).
Database rows and local records of forge approvals are bookkeeping only: they never count.
Gitea's timestamps have whole seconds, so an edit made within the second of creation is
not visible; docs/team-mode.md says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from coordinator.context import Context
from coordinator.errors import IdentityRefused
from coordinator.forge.models import Issue, IssueComment
from coordinator.release import Release


@dataclass(frozen=True)
class ForgeApproval:
    """One counted approval: who, when, and the comment that proves it."""

    login: str
    confirmed_at: datetime
    url: str


def approval_words(release: Release) -> str:
    assert release.build is not None
    return f"approve {release.tag} {release.build.digest}"


def issue_title(release: Release, environment: str) -> str:
    return f"Approve {release.tag} for {environment}"


def approval_issues(ctx: Context, release: Release) -> list[Issue]:
    return ctx.forge.issues_titled(issue_title(release, ctx.config.promote_to))


def ensure_approval_issue(ctx: Context, release: Release) -> Issue:
    """The issue approvers comment on; opened (by whoever reaches the gate first) when missing."""
    found = approval_issues(ctx, release)
    if found:
        return found[0]
    assert release.build is not None
    body = (f"{release.project} {release.tag} passed {ctx.config.promote_from} and waits for approval to go to "
            f"{ctx.config.promote_to}.\n\nImage digest: `{release.build.digest}`\nCommit: `{release.commit_sha}`\n"
            f"CI run: {release.build.run_url}\n\nTo approve, comment exactly:\n\n    {approval_words(release)}\n\n"
            "An edited comment does not count.")
    return ctx.forge.create_issue(issue_title(release, ctx.config.promote_to), body)


def post_approval(ctx: Context, release: Release) -> IssueComment:
    """Comment the approval words as the token's owner, unless an unedited one of theirs is already there."""
    issue = ensure_approval_issue(ctx, release)
    me = ctx.forge.current_user()
    for comment in ctx.forge.issue_comments(issue.number):
        if comment.login.casefold() == me.casefold() and _unedited_words(comment, release):
            return comment
    return ctx.forge.comment_on_issue(issue.number, approval_words(release))


def verified_approvals(ctx: Context, release: Release) -> list[ForgeApproval]:
    """The approvals that count at the gate, re-read from the forge now; one per author."""
    from coordinator.identity import Identity, check_may_approve
    from coordinator.releaser import not_counted, recorded_starters

    staged = release.deployments.get(ctx.config.promote_from)
    if release.build is None or staged is None or staged.finished_at is None:
        return []
    since = staged.finished_at.replace(microsecond=0)  # the forge's times have whole seconds
    counted: dict[str, ForgeApproval] = {}
    starters = recorded_starters(ctx, release)
    for issue in approval_issues(ctx, release):
        for comment in ctx.forge.issue_comments(issue.number):
            author = comment.login
            if author.casefold() in counted or not _unedited_words(comment, release) or comment.created_at < since:
                continue
            if not_counted(ctx, starters, author) is not None:  # a bot, the CI identity, the releaser
                continue
            try:
                check_may_approve(ctx, Identity(author, "forge"))
            except IdentityRefused:
                continue
            counted[author.casefold()] = ForgeApproval(author, comment.created_at, comment.html_url)
    return _allowed_by_database_policy(ctx, list(counted.values()))


def _unedited_words(comment: IssueComment, release: Release) -> bool:
    return comment.body.strip() == approval_words(release) and comment.updated_at == comment.created_at


def _allowed_by_database_policy(ctx: Context, approvals: list[ForgeApproval]) -> list[ForgeApproval]:
    if not ctx.team_mode or not approvals:  # psycopg is the team extra: imported only when the database is in use
        return approvals
    from coordinator.state.gate_sql import allowed_now
    from coordinator.state.postgres import PostgresStore

    assert isinstance(ctx.store, PostgresStore)
    allowed = allowed_now(ctx.store.db, [a.login for a in approvals])
    return [a for a in approvals if a.login in allowed or a.login.lower() in allowed]
