"""Command line: parse, call, print. No release logic lives here.

Exit codes are fixed by the error classes in `coordinator.errors`; `main` maps a raised
error to its code in one place.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from coordinator.errors import CoordinatorError, ExitCode
from coordinator.redact import PROCESS

if TYPE_CHECKING:
    from coordinator.context import Context

EXIT_CODES_HELP = "\n".join(
    f"  {code.value:>2}  {code.name.lower().replace('_', ' ')}" for code in ExitCode
)

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class State:
    """What the top-level options give every command."""

    def __init__(self, config_path: Path, operator: str | None, debug: bool, *, no_input: bool = False,
                 verbosity: int = 0) -> None:
        self.config_path = config_path
        self.operator = operator
        self.debug = debug
        self.no_input = no_input
        self.verbosity = verbosity

    def may_prompt(self) -> bool:
        """A person can answer the gate: a terminal, and neither --no-input nor CI/COORDINATOR_NO_INPUT."""
        from coordinator.interaction import may_prompt

        return may_prompt(self.no_input)

    def context(self, *, interactive: bool = False) -> "Context":
        from coordinator.config import load_config
        from coordinator.context import Context, default_operator
        from coordinator.output import Output

        config = load_config(self.config_path)
        ctx = Context(config=config, out=Output(), operator=self.operator or default_operator(), interactive=interactive)
        ctx.flush_spool()  # records an earlier command could not write go first
        return ctx


pass_state = click.make_pass_decorator(State)


@click.group(context_settings=CONTEXT_SETTINGS, epilog=f"\b\nExit codes:\n{EXIT_CODES_HELP}")
@click.option("-c", "--config", "config_path", type=click.Path(path_type=Path), default=Path("coordinator.yml"),
              envvar="COORDINATOR_CONFIG", show_default=True, help="Config file (env COORDINATOR_CONFIG).")
@click.option("--operator", envvar="COORDINATOR_OPERATOR", help="Who is acting (recorded in the audit trail). Default: login name.")
@click.option("--debug", is_flag=True, help="Show tracebacks for unexpected errors.")
@click.option("--version", is_flag=True, expose_value=False, callback=lambda ctx, _param, value: _version(ctx, value),
              help="Show the versions, playbook dir and config file in use, and exit (put -c first).")
@click.option("--no-input", is_flag=True,
              help="Never prompt, even on a terminal: the gate stops with exit 4 (also CI=true or COORDINATOR_NO_INPUT=1).")
@click.option("-v", "--verbose", "verbosity", count=True,
              help="Pass -v/-vv/-vvv to Ansible: more detail in the run logs (README 'Troubleshooting').")
@click.pass_context
def cli(click_ctx: click.Context, config_path: Path, operator: str | None, debug: bool, no_input: bool,
        verbosity: int) -> None:
    """Release a Docker service: validate, tag, build, stage, approve, promote, verify, announce.

    Every irreversible step is gated and recorded; an interrupted release continues with
    `coordinator resume`.
    """
    click_ctx.obj = State(config_path, operator, debug, no_input=no_input, verbosity=verbosity)
    if verbosity:
        # Ansible's own setting, inherited by every playbook run of this process (ansible-runner
        # passes the environment on), so no call site has to carry it.
        os.environ["ANSIBLE_VERBOSITY"] = str(min(verbosity, 4))


def _version(click_ctx: click.Context, value: bool) -> None:
    if not value or click_ctx.resilient_parsing:
        return
    from coordinator.about import version_report

    # Not eager, so a -c given before --version has been parsed already.
    click.echo(version_report(click_ctx.params.get("config_path")))
    click_ctx.exit()


def _install_signal_handlers(ctx: "Context") -> None:
    """First Ctrl-C/SIGTERM: stop at the next safe point. Second: stop now."""

    def handler(signum: int, _frame: Any) -> None:
        if ctx.cancel.is_set():
            raise KeyboardInterrupt
        ctx.cancel.set()
        ctx.out.warn("stopping at the next safe point (again to abort now); state is saved for `coordinator resume`")

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def confirm_by_typing(question: str, expected: str) -> bool:
    """The gate: the operator must type the version itself, not just press y."""
    click.echo(question)
    answer = click.prompt(f"Type {expected} to approve, anything else to refuse", default="", show_default=False)
    return answer.strip().removeprefix("v") == expected


@cli.command()
@click.argument("version")
@click.option("--force", is_flag=True, help="Release a version that was rolled back before (needs --reason).")
@click.option("--reason", help="Why a rolled-back version is released again (audited).")
@click.option("--dry-run", is_flag=True, help="Same as `coordinator plan VERSION`: checks only, no side effects.")
@click.option("--ci-run", "ci_run", metavar="ID",
              help="The CI run this release runs in (default: $GITHUB_RUN_ID, or $CI_PIPELINE_NUMBER for woodpecker); "
                   "its trigger is the releaser.")
@pass_state
def release(state: State, version: str, force: bool, reason: str | None, dry_run: bool, ci_run: str | None) -> None:
    """Run the whole release of VERSION, stopping at the production gate unless approved.

    With a terminal the gate asks for confirmation; without one, or with --no-input, CI=true
    or COORDINATOR_NO_INPUT=1, it stops with exit code 4 ("awaiting approval"), which a
    staging CI job should treat as success. Run from a CI job, the person who triggered the
    CI run (read from the CI system, --ci-run or its run-id variable) is the releaser.
    """
    from coordinator.driver import Driver
    from coordinator.errors import UsageError
    from coordinator.versioning import parse_version

    parse_version(version)  # a malformed version is refused before anything is read
    if dry_run:
        _plan(state, version, as_json=False)
        return

    if force and not reason:
        raise UsageError("--force needs --reason TEXT saying why a rolled-back version is released again")
    interactive = state.may_prompt()
    ctx = state.context(interactive=interactive)
    _install_signal_handlers(ctx)
    Driver(ctx, confirm=confirm_by_typing, ci_run=ci_run).release(version, force_reason=reason if force else None)


@cli.command()
@click.argument("version", required=False)
@click.option("--force", is_flag=True, help="Deploy a digest that failed in production before (needs --reason).")
@click.option("--reason", help="Why a digest that failed before is deployed again (audited).")
@pass_state
def resume(state: State, version: str | None, force: bool, reason: str | None) -> None:
    """Continue the newest unfinished release (or VERSION) from its first incomplete stage.

    A release whose digest failed in production stops with exit 23; `--force --reason TEXT`
    deploys it once more (the hosts refuse a digest they mark bad unless forced).
    """
    from coordinator.driver import Driver
    from coordinator.errors import UsageError

    if force and not reason:
        raise UsageError("--force needs --reason TEXT saying why a digest that failed before is deployed again")
    if force and version is None:
        raise UsageError("--force needs the VERSION to resume: coordinator resume VERSION --force --reason TEXT")
    interactive = state.may_prompt()
    ctx = state.context(interactive=interactive)
    _install_signal_handlers(ctx)
    Driver(ctx, confirm=confirm_by_typing).resume(version, force_reason=reason if force else None)


@cli.command()
@click.argument("version")
@click.option("--reason", help="A note kept with the approval.")
@pass_state
def approve(state: State, version: str, reason: str | None) -> None:
    """Record your approval of VERSION's exact artifact for production (non-interactive).

    The approval is bound to the tag, commit, CI run, image digest and smoke result shown;
    if any of them changes, it is void. Continue with `coordinator resume`.
    """
    from coordinator.driver import release_id_for
    from coordinator.errors import UsageError
    from coordinator.identity import verify_identity
    from coordinator.stages.approve import gate_summary, record_approval
    from coordinator.versioning import parse_version

    ctx = state.context()
    parsed = parse_version(version)
    identity = verify_identity(ctx)  # who approves is established before anything is read or written
    release_id = release_id_for(ctx.config.project, parsed)
    with ctx.store.locked(f"approve {parsed}", release_id=release_id):
        record = ctx.store.load(release_id)
        if record is None:
            raise UsageError(f"no release {parsed} in {ctx.store.describe()} yet: run `coordinator release {parsed}` first")
        ctx.out.line(gate_summary(ctx, record, reuse_reading=True) if record.build else "")
        approval = record_approval(ctx, record, identity, reason)
        ctx.store.save(record)
    ctx.out.success(f"{identity.describe()} approved {record.tag} at {approval.digest}; run `coordinator resume`")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
def status(state: State, as_json: bool) -> None:
    """Show every release and the stage it stands at (with --json, also its playbook run logs on this machine)."""
    from coordinator.pending_elsewhere import runs_gone
    from coordinator.run_logs import runs_for

    ctx = state.context()
    releases = ctx.store.all()
    for line in runs_gone(ctx, releases):
        ctx.out.warn(line)
    if as_json:
        shown = [{**json.loads(r.model_dump_json()),
                  "run_logs": [str(run) for run in runs_for(ctx.config.state_dir, r.id, ctx.config.environments)]} for r in releases]
        ctx.out.line(json.dumps(shown, indent=2))
        return
    if not releases:
        ctx.out.line("no releases yet")
        return
    ctx.out.line(f"{'VERSION':<14} {'STATUS':<18} {'NEXT':<10} {'DIGEST':<20} UPDATED")
    for record in releases:
        digest = record.build.digest[:19] if record.build else "-"
        nxt = record.next_stage.value if record.next_stage else "-"
        ctx.out.line(f"{record.version:<14} {record.status.value:<18} {nxt:<10} {digest:<20} {record.updated_at:%Y-%m-%d %H:%M:%S}")
        if record.last_error:
            ctx.out.line(f"{'':<14} last error: {record.last_error}")


@cli.command()
@click.argument("environment")
@click.option("--to-digest", help="Roll back to this digest instead of the host's recorded previous release.")
@click.option("--to-version", help="The version that digest is (recorded on the host).")
@click.option("--reason", required=True, help="Why (audited).")
@pass_state
def rollback(state: State, environment: str, to_digest: str | None, to_version: str | None, reason: str) -> None:
    """Roll ENVIRONMENT back to its previous release (the record kept on each host)."""
    from coordinator.commands import rollback_command

    ctx = state.context()
    rollback_command(ctx, environment, to_digest=to_digest, to_version=to_version, reason=reason)


@cli.group()
def audit() -> None:
    """Inspect and verify the hash-chained audit trail."""


@audit.command("show")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--limit", type=int, default=50, show_default=True)
@pass_state
def audit_show(state: State, as_json: bool, limit: int) -> None:
    """Print the newest audit records."""
    ctx = state.context()
    records = ctx.audit.records()[-limit:]
    if as_json:
        ctx.out.line(json.dumps([json.loads(r.model_dump_json()) for r in records], indent=2))
        return
    ctx.out.line(f"{'SEQ':>4} {'TIME':<20} {'EVENT':<20} {'VERSION':<10} {'ENV':<11} {'OUTCOME':<14} OPERATOR")
    for record in records:
        ctx.out.line(f"{record.seq:>4} {record.ts:%Y-%m-%d %H:%M:%S}  {record.event.value:<20} {record.version or '-':<10} "
                     f"{record.environment or '-':<11} {record.outcome or '-':<14} {record.operator}"
                     + (f" (written by {record.writer})" if record.writer and record.writer != record.operator else ""))


@audit.command("verify")
@pass_state
def audit_verify(state: State) -> None:
    """Check the audit chain; name the first broken record."""
    from coordinator.audit import AuditLog, describe_recovered_crashes
    from coordinator.errors import AuditBroken

    from coordinator.pending_elsewhere import runs_gone

    ctx = state.context()
    result = ctx.audit.verify()
    for line in runs_gone(ctx, ctx.store.all()):  # the chain is intact, but it may not be complete yet
        ctx.out.warn(line)
    # Only the local file can be torn by a crash; the database chain is transactional.
    trail = ctx.audit.trail
    recovered = describe_recovered_crashes(trail, result) if isinstance(trail, AuditLog) else []
    if result.ok:
        torn = " (last line torn by a crash; ignored)" if result.torn_tail else ""
        ctx.out.success(f"audit chain intact: {result.count} record(s), head {ctx.audit.head_hash()}{torn}")
        for line in recovered:
            ctx.out.line(line)
        return
    for line in recovered:
        ctx.out.line(line)
    raise AuditBroken(f"audit chain broken at seq {result.first_bad_seq}: {result.reason}")


def _plan(state: State, version: str, *, as_json: bool) -> None:
    from coordinator.plan import build_plan, print_plan

    ctx = state.context()
    plan = build_plan(ctx, version)
    if as_json:
        ctx.out.line(plan.model_dump_json(indent=2))
    else:
        print_plan(ctx, plan)
    if not plan.ready:
        raise plan.error()


@cli.command()
@click.argument("version")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
def plan(state: State, version: str, as_json: bool) -> None:
    """Dry run: every read-only check, and what each stage would do. Changes nothing.

    Exits 0 when the release is ready, 3 when a check failed or a host could not be read
    (so a CI job can gate on it), 2 for a refused token or an inventory without hosts, 10
    when the forge cannot be reached.
    """
    _plan(state, version, as_json=as_json)


@cli.command()
@click.option("--window", "window_days", type=click.IntRange(1, 3650), default=30, show_default=True,
              help="Days of history to count, ending now.")
@click.option("--env", "environments", multiple=True, help="Only these environments (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
def metrics(state: State, window_days: int, environments: tuple[str, ...], as_json: bool) -> None:
    """DORA figures per environment, computed from the audit trail alone.

    Deployment frequency, lead time for changes (commit → verified in production), change
    failure rate (deploys that failed verification) and time to restore.
    """
    from datetime import timedelta

    from coordinator.metrics import dora_metrics

    ctx = state.context()
    report = dora_metrics(ctx.audit.records(), window=timedelta(days=window_days), environments=list(environments) or None)
    ctx.out.line(report.model_dump_json(indent=2) if as_json else report.to_table())


@cli.group()
def lock() -> None:
    """Read or clear the deploy lock held on an environment's hosts."""


@lock.command("status")
@click.argument("environment")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
def lock_status(state: State, environment: str, as_json: bool) -> None:
    """Show who holds the deploy lock on each host of ENVIRONMENT, since when, until when."""
    from coordinator import locks

    ctx = state.context()
    found = locks.status(ctx, environment)
    if as_json:
        ctx.out.line(json.dumps(found, indent=2, default=str))
        return
    for host, info in sorted(found.items()):
        if not info.get("held"):
            ctx.out.line(f"{host}: free")
            continue
        expired = " (EXPIRED: may be taken over)" if info.get("expired") else ""
        ctx.out.line(f"{host}: held by {info.get('owner')} since {info.get('acquired_at')} until {info.get('expires_at')}"
                     f"{expired}; reason {info.get('reason')!r}, version {info.get('version')}, id {info.get('lock_id')}")


@lock.command("release")
@click.argument("environment")
@click.option("--lock-id", required=True, help="The lock's id, from `coordinator lock status` (a nonce against accidents).")
@click.option("--force", is_flag=True, help="Release even if the id does not match (someone else's lock).")
@click.option("--reason", help="Why (audited; required with --force).")
@pass_state
def lock_release(state: State, environment: str, lock_id: str, force: bool, reason: str | None) -> None:
    """Release the deploy lock on ENVIRONMENT's hosts (audited)."""
    from coordinator import locks
    from coordinator.errors import UsageError

    if force and not reason:
        raise UsageError("--force needs --reason TEXT: breaking someone else's lock is audited")
    ctx = state.context()
    locks.release(ctx, environment, lock_id=lock_id, force=force, reason=reason)
    ctx.out.success(f"lock on {environment} released")


@cli.group()
def hosts() -> None:
    """Check the hosts of an environment before a release touches them."""


@hosts.command("check")
@click.argument("environment")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
def hosts_check(state: State, environment: str, as_json: bool) -> None:
    """Per host of ENVIRONMENT: SSH, Python, the libraries the deploy needs, the Docker
    engine, the release state directory, and the deploy lock. Changes nothing.

    Exits 15 when a host cannot be reached, 16 when one cannot take a deploy.
    """
    from coordinator.preflight import check_hosts, raise_for_problems

    ctx = state.context()
    checks = check_hosts(ctx, environment)
    if as_json:
        ctx.out.line(json.dumps([check.model_dump() for check in checks], indent=2))
    else:
        for check in checks:
            ctx.out.line(f"{check.host}: {'ready' if check.ready else 'NOT READY'}; lock {check.lock}")
            for item in check.findings:
                ctx.out.line(f"  [{'ok' if item.ok else 'FAIL'}] {item.check}: {item.detail}")
    raise_for_problems(environment, checks)
    if not as_json:
        ctx.out.success(f"{environment}: {len(checks)} host(s) ready")


@cli.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("check")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
def config_check(state: State, as_json: bool) -> None:
    """Validate the config file and print the resolved configuration, secrets redacted.

    Beyond the schema it checks the app path, every environment's inventory path and the
    token files' modes; any problem exits 2 naming the key and the fix.
    """
    import yaml

    from coordinator.config import redacted_view
    from coordinator.config_check import config_problems
    from coordinator.errors import ConfigError

    ctx = state.context()
    problems = config_problems(ctx.config)
    if problems:
        raise ConfigError(f"{state.config_path}: " + "; ".join(problems))
    view = redacted_view(ctx.config)
    token_source = f"env {ctx.config.forge.token_env}" + (f" or file {ctx.config.forge.token_file}" if ctx.config.forge.token_file else "")
    view["forge"]["token"] = f"(from {token_source}; not shown)"
    if as_json:
        ctx.out.line(json.dumps(view, indent=2))
        return
    ctx.out.line(yaml.safe_dump(view, sort_keys=False).rstrip())
    ctx.out.success(f"{state.config_path} is valid")


@cli.command("init")
@click.option("--dir", "directory", type=click.Path(path_type=Path, file_okay=False), default=Path("."),
              show_default=True, help="Where to write the files (created if missing).")
@click.option("--project", default="myapp", show_default=True, help="Short name: release ids, container name.")
@click.option("--app-path", default=".", show_default=True, help="The app checkout, relative to the config file.")
@click.option("--forge", "forge_kind", type=click.Choice(["gitea", "forgejo"]), default="gitea", show_default=True)
@click.option("--forge-url", default="https://git.example.com", show_default=True, help="The forge's base URL.")
@click.option("--repo", help="The app's repository on the forge, owner/name (default acme/PROJECT).")
@click.option("--image", help="Image name, no tag (default registry.example.com/acme/PROJECT).")
@click.option("--env", "environments", multiple=True, help="An environment, in release order (repeat; default staging, production).")
@click.option("--host", "host_specs", multiple=True, help="ENV=[USER@]HOST[:PORT] (repeat; default a placeholder per environment).")
@click.option("--install", "install_spec", help="What the CI job installs with pip (default: a git URL of this version).")
@click.option("--constraints", help="The pins the CI job installs with (default: that tag's scripts/constraints.txt).")
def init(directory: Path, host_specs: tuple[str, ...], environments: tuple[str, ...], **values: str | None) -> None:
    """Write a commented coordinator.yml, inventories and a CI job; never overwrites.

    Asks nothing: every value has a placeholder default. Then `config check` and
    `hosts check ENV` (see the README's first hour).
    """
    from coordinator.init import init_from_flags
    from coordinator.output import Output

    init_from_flags(Output(), directory, host_specs, environments, values)


@cli.group("state")
def state_group() -> None:
    """Team mode: create, upgrade or fill the shared state database (state.backend postgres)."""


def _database_context(state: State) -> "Context":
    from coordinator.errors import UsageError

    ctx = state.context()
    if not ctx.team_mode:
        raise UsageError(f"state.backend is {ctx.config.state.backend.value} in {state.config_path}: "
                         "set state.backend: postgres to use the shared database (README 'Team mode')")
    return ctx


@state_group.command("init")
@pass_state
def state_init(state: State) -> None:
    """Create the schema (run once, as the schema owner's role)."""
    _migrate(state, init=True)


@state_group.command("migrate")
@pass_state
def state_migrate(state: State) -> None:
    """Bring the schema to this coordinator's version (as the schema owner's role)."""
    _migrate(state, init=False)


def _migrate(state: State, *, init: bool) -> None:
    from coordinator.errors import UsageError
    from coordinator.state.postgres import Database, migrate

    ctx = _database_context(state)
    db = Database(ctx.config.database_dsn(), connect_timeout_s=ctx.config.state.connect_timeout_s, check_schema=False)
    try:
        if init and db.schema_version() > 0:
            raise UsageError(f"{db.where()} already has the coordinator schema (version {db.schema_version()}): "
                             "use `coordinator state migrate` to upgrade it")
        before, after = migrate(db, ctx.config.state.app_role)
    finally:
        db.close()
    if before == after:
        ctx.out.success(f"{db.where()}: schema already at version {after}")
    else:
        ctx.out.success(f"{db.where()}: schema version {before} → {after}; role {ctx.config.state.app_role} may "
                        "read, and write only through the database's checked functions")


@state_group.command("import")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False, exists=True))
@pass_state
def state_import(state: State, directory: Path) -> None:
    """Move a local state dir (release records and audit chain) into the database, after verifying its chain."""
    from coordinator.state.importer import import_state_dir

    ctx = _database_context(state)
    releases, records = import_state_dir(ctx, directory)
    ctx.out.success(f"imported {releases} release record(s) and {records} audit record(s) from {directory} into "
                    f"{ctx.store.describe()}; head {ctx.audit.head_hash()}")


@state_group.command("policy")
@click.option("--approvers", help="Comma-separated logins (or database group roles) who may approve; '' for any login.")
@click.option("--bots", help="Comma-separated accounts that never approve (CI jobs, the CI token's owner).")
@click.option("--required", type=click.IntRange(1, 5), help="Approvals the production gate needs.")
@click.option("--forbid-self-approval/--allow-self-approval", default=None,
              help="Whether whoever started a release may approve it.")
@pass_state
def state_policy(state: State, approvers: str | None, bots: str | None, required: int | None,
                 forbid_self_approval: bool | None) -> None:
    """Show, or set (as the schema owner), the gate policy the database enforces on every approval."""
    from coordinator.state.gate_sql import update_policy
    from coordinator.state.postgres import PostgresStore

    ctx = _database_context(state)
    assert isinstance(ctx.store, PostgresStore)
    if (approvers, bots, required, forbid_self_approval) != (None, None, None, None):
        update_policy(ctx.store.db, approvers=approvers, bots=bots, required=required,
                      forbid_self_approval=forbid_self_approval)
    ctx.out.success(f"{ctx.store.describe()} gate policy: {ctx.store.policy().describe()}")


def main() -> None:
    """Entry point: run the CLI and turn errors into their documented exit codes."""
    debug = "--debug" in sys.argv
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(ExitCode.USAGE)
    except CoordinatorError as exc:
        click.echo(f"error: {PROCESS.redact(exc.message)}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted; run `coordinator resume` to continue", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except Exception as exc:  # an unexpected failure: one line unless --debug
        if debug:
            raise
        if type(exc).__module__.split(".")[0] == "psycopg":  # a database error no layer named: still exit 19
            click.echo(f"error: state database failed: {PROCESS.redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)}; "
                       "check that the server runs and this machine reaches it, then run the command again", err=True)
            sys.exit(ExitCode.STATE_BACKEND)
        from coordinator.causes import whole_cause

        click.echo(f"error: unexpected {exc.__class__.__name__}: {PROCESS.redact(whole_cause(str(exc)))} (rerun with --debug for details)",
                   err=True)
        sys.exit(ExitCode.ERROR)
    sys.exit(ExitCode.OK)
