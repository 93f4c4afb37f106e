"""Where release records, approvals, the run lock and the audit chain live: one interface.

Two backends implement it: the local files in `state_dir` (the default; `ReleaseStore`
and `AuditLog`, unchanged) and PostgreSQL (`coordinator.state.postgres`), which lets a CI
job and ops engineers on different machines share one release record, one approval gate
and one audit chain. Callers only see the two Protocols below.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from coordinator.audit import AuditEvent, AuditRecord, AuditVerification
    from coordinator.release import Approval, Release


class ReleaseRecords(Protocol):
    """Release records, their approvals, and the lock that lets one run act on a release."""

    def describe(self) -> str:
        """Where the records are, for messages ("state dir …", "database …")."""
        ...

    def ensure(self) -> None: ...

    def save(self, release: "Release") -> None: ...

    def load(self, release_id: str) -> "Release | None": ...

    def all(self) -> list["Release"]: ...

    def locked(self, purpose: str, release_id: str | None = None, *,
               advice: str | None = None) -> AbstractContextManager[None]:
        """Hold the run lock (of `release_id`, or of the whole store) or raise LockHeld at once,
        naming the holder and then `advice` (what to do)."""
        ...

    def ensure_locked(self, before: str) -> None:
        """Raise RunLockLost if the run lock held through `locked` is gone; `before` names the next step."""
        ...

    def run_active(self, release_id: str) -> bool:
        """Whether some command holds `release_id`'s run lock right now."""
        ...

    def deploying(self, environment: str, purpose: str, *, exclusive: bool = False,
                  advice: str | None = None) -> AbstractContextManager[None]:
        """Hold `environment`'s deploy lock: shared by release runs deploying or verifying there, exclusive
        for a manual rollback; refused at once (LockHeld naming the holder, then `advice`) if it conflicts."""
        ...

    def add_approval(self, release: "Release", approval: "Approval") -> None:
        """Persist one approval (the database decides its approver, time and whether it may count)."""
        ...

    def database_role(self) -> str | None:
        """The session's login (`session_user`; refused if the session switched role), or None without a database."""
        ...


class AuditTrail(Protocol):
    """The hash-chained audit trail: the local `AuditLog` or the database's chain."""

    def append(self, event: "AuditEvent", *, operator: str, release_id: str | None = None, version: str | None = None,
               environment: str | None = None, outcome: str | None = None,
               data: dict[str, Any] | None = None) -> "AuditRecord | None":
        """The record written, or None when it was kept in the spool to be appended later."""
        ...

    def records(self) -> list["AuditRecord"]: ...

    def verify(self) -> "AuditVerification": ...

    def head_hash(self) -> str | None: ...
