"""The client side of schema v2's write functions: calling them, reading the gate policy,
and turning the database's refusals into the coordinator's errors.

The functions themselves (`coordinator.state.schema_v2`) are the enforcement; nothing
here is trusted by the database. This module only makes an honest client say the same
thing the database would, with the documented exit codes: a refusal of *who* acts
(SQLSTATE CO001) is IdentityRefused (18); a write that contradicts the record (CO002)
is the caller's error class (GateRefused for an approval, StateBackendError for a save).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg

from coordinator.errors import CoordinatorError, IdentityRefused, StateBackendError, UsageError
from coordinator.state.schema import SCHEMA
from coordinator.state.schema_v2 import IDENTITY_STATE, RECORD_STATE

if TYPE_CHECKING:
    from coordinator.state.postgres import Database

_NAME = re.compile(r"[a-z0-9_.@-]{1,63}")


@dataclass(frozen=True)
class GatePolicy:
    """The owner's rules for the production gate, as the database holds and enforces them."""

    approvers: tuple[str, ...]
    bots: tuple[str, ...]
    required: int
    forbid_self_approval: bool
    set_by: str

    def describe(self) -> str:
        approvers = ", ".join(self.approvers) or "any login"
        bots = ", ".join(self.bots) or "none"
        return (f"required {self.required}; approvers {approvers}; bots {bots}; "
                f"self-approval {'forbidden' if self.forbid_self_approval else 'allowed'} (set by {self.set_by})")


def read_policy(db: "Database") -> GatePolicy:
    row = db.execute(f"SELECT approvers, bots, required, forbid_self_approval, set_by FROM {SCHEMA}.gate_policy").fetchone()
    assert row is not None, "schema v2 always has one policy row"
    approvers, bots, required, forbid, set_by = row
    return GatePolicy(tuple(approvers), tuple(bots), int(required), bool(forbid), str(set_by))


def parse_names(option: str, text: str) -> list[str]:
    """`alice, Bob` → ['alice', 'bob']; a name that is no login or role name is a usage error naming it."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    for name in names:
        if not _NAME.fullmatch(name):
            raise UsageError(f"{option}: {name!r} is not a login or role name (letters, digits, _ . @ -)")
    return names


def update_policy(db: "Database", *, approvers: str | None, bots: str | None, required: int | None,
                  forbid_self_approval: bool | None) -> None:
    """Change the given fields, as the schema owner (the application roles may only read the policy)."""
    current = read_policy(db)
    values = (parse_names("--approvers", approvers) if approvers is not None else list(current.approvers),
              parse_names("--bots", bots) if bots is not None else list(current.bots),
              required if required is not None else current.required,
              forbid_self_approval if forbid_self_approval is not None else current.forbid_self_approval)
    try:
        db.execute(f"""UPDATE {SCHEMA}.gate_policy SET approvers = %s, bots = %s, required = %s,
                       forbid_self_approval = %s, set_by = session_user, set_at = now()""", values)
    except psycopg.errors.InsufficientPrivilege:
        raise StateBackendError(f"state database {db.where()}: only the schema owner's login may set the gate "
                                "policy (the one that ran `state init`)") from None


def allowed_now(db: "Database", names: list[str]) -> set[str]:
    """Which of `names` the gate policy lets approve *now* (not a bot; a listed login or a member of a listed
    group role): re-checked at the gate, so someone removed from the approvers since approving no longer counts."""
    rows = db.execute(
        f"""SELECT n FROM unnest(%s::text[]) AS n, {SCHEMA}.gate_policy p
            WHERE NOT lower(n) = ANY (p.bots)
              AND (cardinality(p.approvers) = 0 OR lower(n) = ANY (p.approvers) OR EXISTS (
                   SELECT 1 FROM pg_roles u, pg_roles g
                   WHERE u.rolname = lower(n) AND g.rolname = ANY (p.approvers) AND pg_has_role(u.oid, g.oid, 'MEMBER')))""",
        (names,)).fetchall()
    return {str(row[0]) for row in rows}


def release_starters(db: "Database", release_id: str) -> tuple[str | None, str | None]:
    """(started_by, releaser) of the database's write-once row of a release: the login that saved its first
    revision and the releaser it named. A client cannot change them later, whatever its records say."""
    row = db.execute(f"SELECT started_by, releaser FROM {SCHEMA}.releases WHERE release_id = %s", (release_id,)).fetchone()
    if row is None:
        return None, None
    return (str(row[0]) if row[0] else None), (str(row[1]) if row[1] else None)


def session_login(db: "Database") -> str:
    """The login of this session; refused (exit 18) if the session switched role, as the database would."""
    row = db.execute("SELECT session_user, current_user, current_setting('role')").fetchone()
    assert row is not None
    login, acting, switched = (str(value) for value in row)
    if login != acting or switched != "none":
        raise IdentityRefused(f"the database session of {login} acts as role {acting}: connect as your own login, "
                              "without SET ROLE or options=-crole")
    return login


def refusal(exc: psycopg.Error, otherwise: type[CoordinatorError], doing: str) -> CoordinatorError | None:
    """The coordinator error for one of schema v2's refusals, or None if `exc` is not one."""
    message = getattr(exc.diag, "message_primary", None) or str(exc).strip().splitlines()[0]
    if exc.sqlstate == IDENTITY_STATE:
        return IdentityRefused(f"the database refused {doing}: {message}")
    if exc.sqlstate == RECORD_STATE:
        return otherwise(f"the database refused {doing}: {message}")
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return IdentityRefused(f"the database refused {doing}: {message}")
    return None
