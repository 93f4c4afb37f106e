"""One exception hierarchy, one exit code per failure class.

Every error the coordinator raises on purpose derives from `CoordinatorError`; each class
fixes its own exit code, so the CLI maps errors to codes in exactly one place
(`CoordinatorError.exit_code`). Messages are one line a person can act on: what is wrong,
and how to fix it.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented process exit codes (README "Exit codes" lists the same table)."""

    OK = 0
    ERROR = 1  # unexpected failure (a bug or an unclassified environment problem)
    USAGE = 2  # bad command line, bad config, bad version string, a token the forge refuses (401)
    CHECK_FAILED = 3  # pre-release validation found problems
    AWAITING_APPROVAL = 4  # stopped at the production gate; `approve` then `resume`
    BUILD_FAILED = 5  # the tag's CI run failed or did not finish in time
    DEPLOY_FAILED = 6  # staging deploy or smoke test failed (production untouched)
    ROLLED_BACK = 7  # production verification failed; previous release restored
    ROLLBACK_FAILED = 8  # production verification failed and rollback failed: page a person
    LOCKED = 9  # another coordinator or operator holds a lock
    FORGE_UNAVAILABLE = 10  # forge/CI unreachable or answered unexpectedly (resumable)
    INTERRUPTED = 11  # stopped by a signal at a safe point (resumable)
    GATE_REFUSED = 12  # the operator refused the gate, or the approval does not match
    ANNOUNCE_PENDING = 13  # deployed and verified; some announcement steps still pending
    AUDIT_BROKEN = 14  # the audit chain failed verification (tampering or corruption)
    HOST_UNREACHABLE = 15  # a host could not be reached over SSH (resumable once it answers)
    HOST_NOT_READY = 16  # a host answered but cannot run the deploy (Python, a library, Docker)
    FIRST_RELEASE_FAILED = 17  # the first release to an environment failed: nothing to restore
    IDENTITY_REFUSED = 18  # the approver's identity could not be verified or may not approve
    STATE_BACKEND = 19  # the state database is unreachable, or its schema is not this code's
    RUN_LOCK_LOST = 20  # team mode: this command's run lock was lost; it stopped before its next step
    REGISTRY_CREDENTIALS = 21  # the image registry wants credentials: none were found, or it refused them (401)
    REGISTRY_DENIED = 22  # the image registry knows who we are and refuses access to the repository (403)
    DIGEST_FAILED_BEFORE = 23  # the digest failed in production before; `--force` to deploy it again


class CoordinatorError(Exception):
    """Base of every deliberate coordinator failure."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(CoordinatorError):
    """The command line or an argument value is wrong."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """The configuration file is missing, unreadable or invalid."""


class TokenRefused(ConfigError):
    """The forge or CI answered 401 to our token: the credential is wrong, not the network.

    Configuration, not an outage: retrying or resuming cannot help until the operator puts a
    valid token where the message says it came from (it never shows the value).
    """


class CheckFailed(CoordinatorError):
    """Validation found one or more problems; `problems` lists each one."""

    exit_code = ExitCode.CHECK_FAILED

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        summary = f"{len(self.problems)} pre-release check(s) failed"
        super().__init__(summary + ": " + "; ".join(self.problems))


class AwaitingApproval(CoordinatorError):
    """The release reached the production gate without a matching approval."""

    exit_code = ExitCode.AWAITING_APPROVAL


class GateRefused(CoordinatorError):
    """The operator said no, or an approval does not match the artifact."""

    exit_code = ExitCode.GATE_REFUSED


class BuildFailed(CoordinatorError):
    """The tag's CI run failed, was cancelled, or did not complete in time."""

    exit_code = ExitCode.BUILD_FAILED


class DeployFailed(CoordinatorError):
    """A deployment (or staging smoke test) failed before production was touched."""

    exit_code = ExitCode.DEPLOY_FAILED


class RolledBack(CoordinatorError):
    """Production verification failed and the previous release was restored."""

    exit_code = ExitCode.ROLLED_BACK


class RollbackFailed(CoordinatorError):
    """Production verification failed and so did the rollback: a person must act now."""

    exit_code = ExitCode.ROLLBACK_FAILED


class LockHeld(CoordinatorError):
    """Another process or operator holds the lock we need."""

    exit_code = ExitCode.LOCKED


class ForgeError(CoordinatorError):
    """The forge or CI API failed; carries the endpoint, status and the forge's message."""

    exit_code = ExitCode.FORGE_UNAVAILABLE

    def __init__(self, message: str, *, endpoint: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.status = status


class Interrupted(CoordinatorError):
    """A signal asked us to stop; state was saved at a safe point."""

    exit_code = ExitCode.INTERRUPTED


class AnnouncePending(CoordinatorError):
    """Production is verified, but an announcement step failed and is left for `resume`."""

    exit_code = ExitCode.ANNOUNCE_PENDING


class AuditBroken(CoordinatorError):
    """The audit chain does not verify: a record was edited, removed or inserted."""

    exit_code = ExitCode.AUDIT_BROKEN


class HostUnreachable(CoordinatorError):
    """A host could not be reached over SSH: nothing was changed there; fix SSH, then resume."""

    exit_code = ExitCode.HOST_UNREACHABLE


class HostNotReady(CoordinatorError):
    """A host answered but cannot run the deploy: broken Python, a missing library, Docker down."""

    exit_code = ExitCode.HOST_NOT_READY


class FirstReleaseFailed(CoordinatorError):
    """The first release to an environment failed: the broken container was removed, nothing restored."""

    exit_code = ExitCode.FIRST_RELEASE_FAILED


class IdentityRefused(CoordinatorError):
    """The acting identity could not be verified, or it may not approve this release."""

    exit_code = ExitCode.IDENTITY_REFUSED


class StateBackendError(CoordinatorError):
    """The shared state database is unreachable, refused us, or has another schema version."""

    exit_code = ExitCode.STATE_BACKEND


class RunLockLost(CoordinatorError):
    """The run lock's database session is gone (terminated, or the server restarted).

    Another command may hold the lock now, so this one stops before its next step and
    writes nothing more to the release record: it no longer owns it.
    """

    exit_code = ExitCode.RUN_LOCK_LOST


class DigestFailedBefore(CoordinatorError):
    """The digest about to be deployed already failed in production: no automatic second try."""

    exit_code = ExitCode.DIGEST_FAILED_BEFORE


class RegistryCredentialsError(CoordinatorError):
    """The image registry answered 401: we sent no credentials, or it refused the ones we sent.

    Configuration, not an outage: resuming cannot help until the operator gives credentials
    (config `image.credentials` or `docker login`); the message names where they came from,
    never their value.
    """

    exit_code = ExitCode.REGISTRY_CREDENTIALS


class RegistryDenied(CoordinatorError):
    """The image registry accepted who we are but refuses us the repository (403)."""

    exit_code = ExitCode.REGISTRY_DENIED


class RegistryUnavailable(CoordinatorError):
    """The image registry could not be reached or answered unexpectedly (resumable, like the forge)."""

    exit_code = ExitCode.FORGE_UNAVAILABLE


class NoHosts(UsageError):
    """An environment's inventory is missing or has no hosts in the group a playbook targets.

    Acting on zero hosts would "succeed" while changing nothing (a rollback that restored
    nothing, a lock status that says nothing), so it is a configuration error, exit 2.
    """


class RecordUnreadable(StateBackendError):
    """A release record this coordinator cannot read: written by a newer coordinator, or damaged.

    Records are strict (an unknown field is refused, never dropped): a machine that ignored
    a newer field would write the record back without it, losing what the newer coordinator
    recorded (a CI run, the approvals a gate counted).
    """
