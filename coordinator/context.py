"""Everything a stage needs, passed down as one object instead of globals.

Clients are created on first use, so read-only commands that never talk to the forge
(`status`, `audit verify`) need no token.
"""

from __future__ import annotations

import atexit
import getpass
import os
import re
import secrets
import socket
import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from coordinator.config import Config, StateBackend
from coordinator.output import Output
from coordinator.store import ReleaseStore

if TYPE_CHECKING:
    from coordinator.ansible import PlaybookResult
    from coordinator.release import Release
    from coordinator.spool import SpoolingTrail
    from coordinator.state import AuditTrail, ReleaseRecords
    from coordinator.state.postgres import Database
    from coordinator.ci import CIProvider
    from coordinator.forge import GiteaClient
    from coordinator.notify import Notifier
    from coordinator.ssh_control import ControlDir


def default_operator() -> str:
    """Who is acting: COORDINATOR_OPERATOR, else the login name."""
    return os.environ.get("COORDINATOR_OPERATOR") or getpass.getuser()


def new_run_id() -> str:
    """This command's run: machine, process and a nonce (a pid is reused sooner or later)."""
    machine = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"
    return f"{machine}.{os.getpid()}.{secrets.token_hex(3)}"


@dataclass
class Context:
    config: Config
    out: Output
    operator: str = field(default_factory=default_operator)
    interactive: bool = False
    dry_run: bool = False
    cancel: threading.Event = field(default_factory=threading.Event)
    # Successful deploy.yml runs of this process, by environment: their final check (every
    # host healthy after the last batch) stands in for verify.yml unless the release resumes.
    checked_by_deploy: dict[str, "PlaybookResult"] = field(default_factory=dict)
    # This command's run: part of every host lock id it takes (coordinator.locks).
    run_id: str = field(default_factory=new_run_id)
    # `--force`: deploy a digest that failed in production before (audited by the driver).
    force: bool = False

    @property
    def team_mode(self) -> bool:
        return self.config.state.backend is StateBackend.POSTGRES

    @cached_property
    def database(self) -> "Database":
        """The shared state database (state.backend postgres); connected on first use."""
        try:
            from coordinator.state.postgres import Database
        except ImportError:
            from coordinator.errors import ConfigError

            raise ConfigError("state.backend postgres needs psycopg 3: pip install 'release-coordinator[team]'") from None

        dsn = self.config.database_dsn()
        self.out.add_dsn(dsn)
        return Database(dsn, connect_timeout_s=self.config.state.connect_timeout_s, source=self.config.dsn_source())

    @cached_property
    def store(self) -> "ReleaseRecords":
        if self.team_mode:
            from coordinator.state.postgres import PostgresStore

            return PostgresStore(self.database, self.config.project, run_id=self.run_id)
        return ReleaseStore(self.config.state_dir, run_id=self.run_id)

    @cached_property
    def ssh_control(self) -> "ControlDir":
        """This run's SSH ControlPath directory: every playbook run of the process reuses its
        masters; they are stopped and the directory removed when the process exits."""
        from coordinator.ssh_control import ControlDir

        control = ControlDir()
        atexit.register(control.close)
        return control

    @cached_property
    def audit(self) -> "SpoolingTrail":
        """The audit trail behind the spool: what cannot be written now is kept and appended later."""
        from coordinator.spool import Spool, SpoolingTrail

        trail: AuditTrail
        if self.team_mode:
            from coordinator.state.pg_audit import PostgresAudit

            trail = PostgresAudit(self.database)
        else:
            from coordinator.audit import AuditLog

            store = ReleaseStore(self.config.state_dir)
            store.ensure()
            trail = AuditLog(store.audit_path)
        spool = Spool(self.config.state_dir)
        spool.reserve()
        spooling = SpoolingTrail(trail, spool, self.out)
        spooling.flush(self.save_delayed_release)
        return spooling

    def flush_spool(self) -> None:
        """Append what an earlier command could not write, if anything waits (no connection otherwise)."""
        from coordinator.errors import CoordinatorError
        from coordinator.spool import Spool

        waiting = Spool(self.config.state_dir).entries()
        if not waiting:
            return
        try:
            _ = self.audit  # opening the trail appends the spool
        except CoordinatorError as exc:  # no DSN, a refused chain: the command itself will say so if it matters
            self.out.warn(f"{len(waiting)} delayed record(s) still wait in the spool: {exc.message}")

    def save_delayed_release(self, release: "Release") -> None:
        """Save a spooled release record unless the store already has a newer one (another command moved on).

        A delayed failure outcome (rolled back, rollback failed, first release failed) still wins over a
        newer record that is merely in progress or failed: a command elsewhere that resumed meanwhile could
        not know what happened on the hosts, and the outcome is still true of them."""
        from coordinator.release import MARKED_BAD, ReleaseStatus

        current = self.store.load(release.id)
        outcome_stands = (release.status in MARKED_BAD and current is not None
                          and current.status in (ReleaseStatus.IN_PROGRESS, ReleaseStatus.FAILED))
        if current is None or current.updated_at < release.updated_at or outcome_stands:
            self.store.save(release)

    @cached_property
    def forge_token(self) -> str:
        token = self.config.forge_token()
        self.out.add_secret(token)
        return token

    @cached_property
    def forge_token_source(self) -> str:
        """Where the forge token came from, for a refused-token error (never the value)."""
        forge = self.config.forge
        if os.environ.get(forge.token_env, "").strip() or forge.token_file is None:
            return f"environment variable {forge.token_env}"
        return f"forge.token_file {forge.token_file}"

    @cached_property
    def forge(self) -> "GiteaClient":
        from coordinator.forge import GiteaClient

        forge = self.config.forge
        return GiteaClient(
            forge.url, forge.owner, forge.name, self.forge_token,
            timeout=forge.timeout_s, ca_file=forge.ca_file, token_source=self.forge_token_source,
        )

    @cached_property
    def ci(self) -> "CIProvider":
        from coordinator.ci import make_provider

        ci = self.config.ci
        forge = self.config.forge
        token, token_source = self.forge_token, self.forge_token_source
        if ci.token_env and os.environ.get(ci.token_env, "").strip():
            token, token_source = os.environ[ci.token_env].strip(), f"environment variable {ci.token_env}"
            self.out.add_secret(token)
        repo = ci.repo or forge.repo
        owner, name = repo.split("/", 1)
        return make_provider(
            ci.provider.value,
            base_url=ci.url or forge.url,
            owner=owner,
            repo=name,
            token=token,
            artifact_name=ci.artifact_name,
            manifest_url=ci.manifest_url,
            timeout=forge.timeout_s,
            ca_file=ci.ca_file or forge.ca_file,
            status_context=ci.status_context,
            token_source=token_source,
        )

    @cached_property
    def notifier(self) -> "Notifier":
        from coordinator.notify import Notifier

        return Notifier(self.config.notify.announce, self.config.notify.escalate)
