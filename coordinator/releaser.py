"""Who started a release, and so who never counts at its gate.

Locally the releaser is the verified identity of whoever runs `release`. In CI the process
runs as the CI token's owner (a bot, or whoever holds that token), which says nothing about
the person behind it: the releaser is the human who triggered the CI run, as the CI
system's own record of the run names them. The run id comes from `--ci-run` or the CI's
standard variable (`GITHUB_RUN_ID`, `CI_PIPELINE_NUMBER`), which is only a pointer: the run
is read back from the CI API and must belong to the configured repository, still be running
(this release is its job) and be building the commit being released, so a token holder
cannot borrow somebody else's run.

Never counted at the gate (`not_counted`): bots (`approvals.bots`, and in team mode the
database policy's bots), the CI identity that started the release, and, with
`forbid_self_approval`, the releaser. They are compared with the release record and with
what a client cannot quietly rewrite: the audit's `release.started` records and, in team
mode, the database's write-once row of the release (its first saver and releaser); and the
person who triggered every CI run those records name, read again from the CI API at the gate.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from coordinator.errors import ForgeError, IdentityRefused, UsageError
from coordinator.identity import Identity, same_identity

if TYPE_CHECKING:
    from coordinator.ci.base import CIRun
    from coordinator.context import Context
    from coordinator.release import Release

_RUN_ID = re.compile(r"[0-9]{1,20}")
CI_RUN = "ci-run"
"""`releaser_verified_by` of a release started from a verified CI run."""


@dataclass(frozen=True)
class Releaser:
    """The person who started a release, and the identity the CI job ran as when it came from CI."""

    name: str
    verified_by: str
    ci_identity: str | None = None
    ci_run: "CIRun | None" = None

    def audit_data(self) -> dict[str, str]:
        data = {"releaser": self.name, "identity_verified_by": self.verified_by}
        if self.ci_run is not None and self.ci_identity is not None:
            data |= {"ci_identity": self.ci_identity, "ci_run": self.ci_run.id, "ci_run_url": self.ci_run.html_url}
        return data


def establish_releaser(ctx: "Context", acting: Identity, ci_run: str | None) -> Releaser:
    """The releaser of a release `acting` starts now; IdentityRefused (18) when it cannot be established."""
    pointer = _run_pointer(ctx, ci_run)
    if pointer is None:
        for who, name in ((acting.describe(), acting.name),
                          *((f"database login {login}", login) for login in _session_login(ctx))):
            bot = bot_source(ctx, name)
            if bot:
                variable = ctx.ci.run_id_env or "its run id variable"
                raise IdentityRefused(f"{who} is a bot ({bot}): a bot releases only from a verified CI run: pass "
                                      f"--ci-run ID, or run `coordinator release` inside the CI job (it sets {variable})")
        return Releaser(acting.name, acting.verified_by)
    run_id, source = pointer
    run = verified_run(ctx, run_id, source)
    return Releaser(run.actor, CI_RUN, ci_identity=acting.name, ci_run=run)


def verified_run(ctx: "Context", run_id: str, source: str) -> "CIRun":
    """The CI run `run_id`, checked to be this release's running job on this commit and triggered by a person."""
    from coordinator.git import Git

    repo = ctx.config.ci.repo or ctx.config.forge.repo
    where = f"CI run {run_id} ({source})"
    run = _read_run(ctx, run_id, f"{where} does not exist in {repo}: name the run of the CI job that runs this release")
    if run.repository and run.repository.casefold() != repo.casefold():
        raise IdentityRefused(f"{where} belongs to {run.repository}, not {repo}: name a run of this repository")
    if run.is_completed:
        raise IdentityRefused(f"{where} has already completed ({run.conclusion or 'done'}): only the running CI job "
                              "that runs this release can name its releaser")
    try:
        commit = Git(ctx.config.app.path).head_sha()
    except Exception as exc:  # not a work tree: validate says so in detail; nothing to compare with here
        raise IdentityRefused(f"{where}: cannot read the commit being released in {ctx.config.app.path} ({exc})") from None
    if run.head_sha != commit:
        raise IdentityRefused(f"{where} runs commit {run.head_sha[:12] or 'unknown'}, but this release is of "
                              f"{commit[:12]}: name the run of the CI job for this commit")
    if not run.actor:
        raise IdentityRefused(f"{where} names nobody who triggered it: the releaser cannot be established from it")
    bot = bot_source(ctx, run.actor)
    if bot:
        raise IdentityRefused(f"{where} was triggered by {run.actor}, a bot ({bot}): a release needs a person as "
                              "its releaser")
    return run


def _read_run(ctx: "Context", run_id: str, missing: str) -> "CIRun":
    """Run `run_id` as the CI system records it; IdentityRefused(`missing`) when it has no such run."""
    try:
        return ctx.ci.triggered_run(run_id)
    except ForgeError as exc:
        if exc.status == 404:
            raise IdentityRefused(missing) from None
        raise


def _run_pointer(ctx: "Context", option: str | None) -> tuple[str, str] | None:
    """(run id, where it came from): `--ci-run`, else the CI's own variable, else None (not in CI)."""
    if option is not None:
        value, source = option.strip(), "--ci-run"
    else:
        variable = ctx.ci.run_id_env
        value = os.environ.get(variable, "").strip() if variable else ""
        if not value:
            return None
        source = f"${variable}"
    if not _RUN_ID.fullmatch(value):
        raise UsageError(f"{source}: {value[:40]!r} is not a CI run id (digits, as the CI system numbers its runs)")
    return value, source


def _session_login(ctx: "Context") -> tuple[str, ...]:
    """In team mode the database login acts too (the CI job's own role may be the bot)."""
    if not ctx.team_mode:
        return ()
    login = ctx.store.database_role()
    return (login,) if login else ()


def listed_bots(ctx: "Context") -> dict[str, str]:
    """Every account listed as a bot (casefolded) and where: `approvals.bots`, or the database policy."""
    listed = {bot.casefold(): "approvals.bots" for bot in ctx.config.approvals.bots}
    if ctx.team_mode:
        from coordinator.state.postgres import PostgresStore

        assert isinstance(ctx.store, PostgresStore)
        for bot in ctx.store.policy().bots:
            listed.setdefault(bot.casefold(), "state policy --bots")
    return listed


def bot_source(ctx: "Context", name: str, bots: dict[str, str] | None = None) -> str | None:
    """Where `name` is listed as a bot, or None; `bots` is `listed_bots(ctx)` when the caller has it."""
    return (listed_bots(ctx) if bots is None else bots).get(name.casefold()) if name else None


@dataclass
class GateExclusions:
    """Who started a release, from every source that says so: the record, the audit, the database;
    and the bots, read once for the whole gate count (in team mode the policy is a query)."""

    releasers: set[str] = field(default_factory=set)
    ci_identities: set[str] = field(default_factory=set)
    bots: dict[str, str] = field(default_factory=dict)


def recorded_starters(ctx: "Context", release: "Release") -> GateExclusions:
    """The releasers and CI identities of `release`, the record's and those of harder-to-rewrite places."""
    from coordinator.audit import AuditEvent

    found = GateExclusions(bots=listed_bots(ctx))
    found.releasers.add(release.releaser or release.operator)
    run_ids = {release.ci_run} if release.ci_run else set()
    if release.ci_identity:
        found.ci_identities.add(release.ci_identity)
    for record in ctx.audit.records():
        if record.event is AuditEvent.RELEASE_STARTED and record.release_id == release.id:
            if record.data.get("releaser"):
                found.releasers.add(str(record.data["releaser"]))
            if record.data.get("ci_identity"):
                found.ci_identities.add(str(record.data["ci_identity"]))
            if record.data.get("ci_run"):
                run_ids.add(str(record.data["ci_run"]))
    if ctx.team_mode:
        from coordinator.state.gate_sql import release_starters
        from coordinator.state.postgres import PostgresStore

        assert isinstance(ctx.store, PostgresStore)
        # The login that saved it first started it too, as the database's own self-approval rule says.
        found.releasers.update(name for name in release_starters(ctx.store.db, release.id) if name)
    _add_triggering_people(ctx, release, found, run_ids)
    return found


def _add_triggering_people(ctx: "Context", release: "Release", found: GateExclusions, run_ids: set[str]) -> None:
    """Re-read every CI run the release's records name and exclude who the CI system says triggered it.

    The records are the client's word: a modified client holding the CI token could name another
    person as releaser at the first save, or leave the run out. The CI system's own record of the
    run cannot be rewritten by it, so the triggering person is read again at every gate; a run that
    ran another commit, or a release a bot started with no run on record, keeps the gate shut.
    """
    for run_id in sorted(run_ids):
        where = f"the CI run {run_id} recorded for {release.tag}"
        run = _read_run(ctx, run_id, f"{where} does not exist: who started the release cannot be checked, so no "
                                     "approval counts; start the release again from its CI job")
        if release.commit_sha and run.head_sha and run.head_sha != release.commit_sha:
            raise IdentityRefused(f"{where} ran commit {run.head_sha[:12]}, not {release.commit_sha[:12]}: the "
                                  "record names somebody else's run, so no approval counts")
        if run.actor:
            found.releasers.add(run.actor)
    if run_ids:
        return
    for starter in sorted(found.ci_identities | found.releasers):
        bot = bot_source(ctx, starter, found.bots)
        if bot:
            raise IdentityRefused(f"{release.tag} was started by {starter}, a bot ({bot}), with no CI run on record: "
                                  "who triggered it is unknown, so no approval counts; start it again from its CI "
                                  "job (--ci-run)")


def not_counted(ctx: "Context", starters: GateExclusions, name: str) -> str | None:
    """Why `name`'s approval of a release with these starters never counts, or None if it may."""
    bot = bot_source(ctx, name, starters.bots)
    if bot:
        return f"is a bot ({bot}): bots never approve"
    if same_identity(name, *starters.ci_identities):
        return "is the CI identity that started this release: it never approves"
    if ctx.config.approvals.forbid_self_approval and same_identity(name, *starters.releasers):
        return "started this release and self-approval is forbidden: ask another approver"
    return None
