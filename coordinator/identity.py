"""Who is acting, as established by something other than their own say-so.

`approvals.identity` decides how (README "Team mode"):
- `local`: the `--operator` label or login name. Unauthenticated: anyone can type any
  name, which is why config refuses `required > 1` and `forbid_self_approval` with it;
- `forge`: the login owning the forge token the person runs with (`GET /user`); the
  token is theirs, so the forge vouches for the name. What counts at the gate is the
  approval comment the forge attributes to them (`coordinator.forge.approvals`);
- `database`: the login of the database session (`session_user`); a session that switched
  role is refused, and the database's own functions store the login, whatever a client sends.

With `state.backend: postgres` the database also requires the forge login to be the
database login (case-insensitive): one person, one login, one vote.

`--operator` stays a label in the audit trail; it never decides who approved.
"""

from __future__ import annotations

from dataclasses import dataclass

from coordinator.config import IdentityMode
from coordinator.context import Context
from coordinator.errors import ForgeError, IdentityRefused, TokenRefused


@dataclass(frozen=True)
class Identity:
    """A verified name and how it was verified (`local` means: not verified)."""

    name: str
    verified_by: str

    def describe(self) -> str:
        how = {"forge": "forge token owner", "database": "database role", "local": "unverified local name"}
        return f"{self.name} ({how.get(self.verified_by, self.verified_by)})"


def verify_identity(ctx: Context) -> Identity:
    """The acting identity under `approvals.identity`; raise IdentityRefused if it cannot be established."""
    mode = ctx.config.approvals.identity
    if mode is IdentityMode.FORGE:
        try:
            return Identity(ctx.forge.current_user(), "forge")
        except TokenRefused as exc:
            raise IdentityRefused(f"{exc}; under approvals.identity forge each person runs with their own token "
                                  f"in {ctx.config.forge.token_env}") from None
        except ForgeError as exc:
            if exc.status in (401, 403):
                raise IdentityRefused(f"the forge did not accept your token ({exc.status}): export your own token as "
                                      f"{ctx.config.forge.token_env} to act under approvals.identity forge") from None
            raise
    if mode is IdentityMode.DATABASE:
        role = ctx.store.database_role()
        if not role:
            raise IdentityRefused("approvals.identity database needs state.backend postgres")
        return Identity(role, "database")
    return Identity(ctx.operator, "local")


def check_may_approve(ctx: Context, identity: Identity) -> None:
    """Refuse (exit 18) an identity not listed in `approvals.approvers`, directly or through an org/team."""
    approvers = ctx.config.approvals.approvers
    if not approvers or same_identity(identity.name, *approvers):
        return
    teams = [entry for entry in approvers if "/" in entry]
    if identity.verified_by == "forge":
        for entry in teams:
            org, team = entry.split("/", 1)
            team_id = ctx.forge.team_id(org, team)
            if team_id is not None and ctx.forge.is_team_member(team_id, identity.name):
                return
    allowed = ", ".join(approvers)
    raise IdentityRefused(f"{identity.describe()} may not approve: approvals.approvers allows {allowed}; "
                          "ask one of them, or add this identity to the config")


def same_identity(name: str, *others: str | None) -> bool:
    """Forge logins and PostgreSQL roles compare case-insensitively (config `Alice` is login `alice`)."""
    return any(other is not None and name.casefold() == other.casefold() for other in others)
