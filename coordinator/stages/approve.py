"""Stage 5, approve: the hard stop before production.

An approval is bound to exactly one artifact (tag, commit, CI run, digest, smoke result);
if any of them changes the approval is void. Without a TTY the gate never prompts: it
stops with the documented "awaiting approval" exit code.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from coordinator.config import IdentityMode
from coordinator.context import Context
from coordinator.errors import AwaitingApproval, GateRefused, IdentityRefused
from coordinator.identity import Identity, check_may_approve, same_identity, verify_identity
from coordinator.release import Approval, GateReading, Release, ReleaseStatus, utcnow
from coordinator.releaser import not_counted, recorded_starters


def gate_summary(ctx: Context, release: Release, *, reuse_reading: bool = False) -> str:
    """The text the operator reads before saying yes: exactly what would be promoted.

    With `reuse_reading` (the `approve` command) the "live there now" line is the reading
    taken when the release reached the gate, with its time, instead of a second status.yml
    run on every production host (2-3 s). Nothing the gate decides rests on that line: the
    approval binds to the tag, commit, CI run, digest and smoke result, all in the record,
    and the promote re-reads every host under its deploy lock before it changes one (lock
    pass, all-or-none, the previous release recorded on each host). So the hosts are asked
    again only when there is no reading for this artifact and environment.
    """
    from coordinator.render import render

    assert release.build is not None
    staging = release.deployments.get(ctx.config.promote_from)
    reading = release.gate_reading
    if (reuse_reading and reading is not None and reading.environment == ctx.config.promote_to
            and reading.digest == release.build.digest):
        previous = (f"{reading.live} (read from the hosts at {reading.read_at:%Y-%m-%d %H:%M:%S} UTC, "
                    "when the release reached the gate)" if reading.live else None)
    else:
        previous = live_now(ctx, release)
        release.gate_reading = GateReading(environment=ctx.config.promote_to, digest=release.build.digest,
                                           live=previous, read_at=utcnow())
    return render("gate_summary.txt.j2", {
        "project": release.project, "version": release.version, "tag": release.tag,
        "commit": release.commit_sha, "digest": release.build.digest, "image": release.build.image,
        "smoke": release.smoke_result, "run_url": release.build.run_url, "run_id": release.build.run_id,
        "staging_hosts": sorted(staging.hosts) if staging else [], "environment": ctx.config.promote_to,
        "previous_version": previous,
    }, override_dir=ctx.config.notify.templates_dir)


def live_now(ctx: Context, release: Release) -> str | None:
    """What production runs, as its hosts report it (status.yml, read beside the staging deploy
    when this process ran it: coordinator/gate_reading.py); the records only if the hosts cannot say."""
    from coordinator import gate_reading
    from coordinator.errors import CoordinatorError
    from coordinator.recognize import live_in

    answered, live_early = gate_reading.take(release, ctx.config.promote_to)
    if answered:
        return live_early
    try:
        live = live_in(ctx, ctx.config.promote_to)
        if not live.error:
            return live.summary()
    except CoordinatorError:
        pass
    recorded = [r.version for r in ctx.store.all()
                if r.id != release.id and (d := r.deployments.get(ctx.config.promote_to)) is not None and d.outcome == "verified"]
    return f"{recorded[-1]} (from release records: the hosts did not answer)" if recorded else None


def record_approval(ctx: Context, release: Release, identity: Identity, reason: str | None = None) -> Approval:
    """Bind `identity`'s approval to the release's current artifact, store it and audit it.

    With a verified identity (forge, database) a refusal is IdentityRefused (exit 18); with
    the unauthenticated local one it stays GateRefused, as before team mode.
    """
    from coordinator.audit import AuditEvent

    refused = GateRefused if identity.verified_by == "local" else IdentityRefused
    if release.build is None or release.smoke_result != "passed":
        raise GateRefused(f"{release.tag} has not passed {ctx.config.promote_from} yet: run `coordinator resume` first")
    check_may_approve(ctx, identity)
    why_not = not_counted(ctx, recorded_starters(ctx, release), identity.name)
    if why_not:
        raise IdentityRefused(f"{identity.describe()} {why_not}")
    if any(same_identity(a.operator, identity.name) and a.verified_by == identity.verified_by and a.matches(release)
           for a in release.approvals):
        raise refused(f"{identity.describe()} has already approved {release.tag} at {release.build.digest}: "
                      "one identity counts once")
    approval = Approval(operator=identity.name, confirmed_at=utcnow(), tag=release.tag, commit_sha=release.commit_sha or "",
                        run_id=release.build.run_id, digest=release.build.digest, smoke=release.smoke_result or "",
                        reason=reason, verified_by=identity.verified_by,
                        label=ctx.operator if ctx.operator != identity.name else None)
    evidence: dict[str, str] = {}
    if identity.verified_by == "forge":  # the evidence that counts; the record below is bookkeeping
        from coordinator.forge.approvals import post_approval

        evidence["evidence"] = post_approval(ctx, release).html_url
    ctx.store.add_approval(release, approval)
    release.approvals.append(approval)
    ctx.audit.append(AuditEvent.APPROVAL_RECORDED, operator=identity.name, release_id=release.id, version=release.version,
                     environment=ctx.config.promote_to, outcome="approved",
                     data={"confirmed_at": approval.confirmed_at.isoformat(), "tag": approval.tag,
                           "commit": approval.commit_sha, "run_id": approval.run_id, "digest": approval.digest,
                           "smoke": approval.smoke, "identity_verified_by": identity.verified_by,
                           "operator_label": ctx.operator, **evidence})
    return approval


def counted_approvals(ctx: Context, release: Release) -> list[Approval]:
    """Approvals that count at the gate: matching the artifact and, in team mode, verified the configured way."""
    valid = release.valid_approvals()
    mode = ctx.config.approvals.identity
    if mode is not IdentityMode.LOCAL:
        valid = [a for a in valid if a.verified_by == mode.value]
    if valid:
        starters = recorded_starters(ctx, release)
        valid = [a for a in valid if not_counted(ctx, starters, a.operator) is None]
    if ctx.team_mode and valid:  # psycopg is the team extra: imported only when the database is in use
        from coordinator.state.gate_sql import allowed_now
        from coordinator.state.postgres import PostgresStore

        assert isinstance(ctx.store, PostgresStore)
        allowed = allowed_now(ctx.store.db, [a.operator for a in valid])
        valid = [a for a in valid if a.operator in allowed]
    return valid


def approvals_required(ctx: Context) -> int:
    """The config's number, or the database's gate policy when that asks for more (the owner's word wins)."""
    required = ctx.config.approvals.required
    if ctx.team_mode:  # psycopg is the team extra: imported only when the database is in use
        from coordinator.state.postgres import PostgresStore

        assert isinstance(ctx.store, PostgresStore)
        required = max(required, ctx.store.policy().required)
    return required


def counted_at_gate(ctx: Context, release: Release) -> list[tuple[str, datetime]]:
    """Who the gate counts and when they approved, once each: under `identity: forge` the approval comments
    re-verified on the forge now (records count for nothing there), otherwise the records; expired ones left out.
    The audit's `approved_by` is exactly this list."""
    expiry = ctx.config.approvals.expires_after_s

    def fresh(at: datetime) -> bool:
        return expiry is None or (utcnow() - at).total_seconds() <= expiry

    if ctx.config.approvals.identity is IdentityMode.FORGE:
        from coordinator.forge.approvals import verified_approvals

        return [(a.login, a.confirmed_at) for a in verified_approvals(ctx, release) if fresh(a.confirmed_at)]
    counted: dict[str, tuple[str, datetime]] = {}
    for approval in counted_approvals(ctx, release):
        if fresh(approval.confirmed_at):
            counted.setdefault(approval.operator.casefold(), (approval.operator, approval.confirmed_at))
    return list(counted.values())


def approvers_counted(ctx: Context, release: Release) -> list[str]:
    return [name for name, _ in counted_at_gate(ctx, release)]


def approvals_missing(ctx: Context, release: Release) -> int:
    return max(0, approvals_required(ctx) - len(approvers_counted(ctx, release)))


def run_approve(ctx: Context, release: Release, confirm: Callable[[str, str], bool] | None) -> None:
    counted = approvers_counted(ctx, release)  # once: each count re-reads the forge, the audit and the CI runs
    missing = max(0, approvals_required(ctx) - len(counted))
    if missing == 0:
        from coordinator import gate_reading

        gate_reading.cancel(release)  # no summary to show: the production reading is not needed
        ctx.out.info(f"approved by {', '.join(counted)}")
        return
    summary = gate_summary(ctx, release)
    ctx.out.line(summary)
    if confirm is not None:
        if not confirm(f"Promote {release.tag} ({release.build.digest if release.build else ''}) to {ctx.config.promote_to}?", release.version):
            raise GateRefused(f"promotion of {release.tag} refused by {ctx.operator}; nothing was deployed to {ctx.config.promote_to}")
        record_approval(ctx, release, verify_identity(ctx))
        if approvals_missing(ctx, release) == 0:
            return
    release.status = ReleaseStatus.AWAITING_APPROVAL
    where = ""
    if ctx.config.approvals.identity is IdentityMode.FORGE:
        from coordinator.forge.approvals import approval_words, ensure_approval_issue

        issue = ensure_approval_issue(ctx, release)
        where = f" (or comment `{approval_words(release)}` on {issue.html_url or f'issue #{issue.number}'})"
    raise AwaitingApproval(
        f"{release.tag} awaits {missing} approval(s) for {ctx.config.promote_to}: "
        f"run `coordinator approve {release.version}`{where} then `coordinator resume`"
    )
