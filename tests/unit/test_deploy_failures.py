"""How failed lock and deploy runs are classified and worded (pure logic; the drills run them for real)."""

from __future__ import annotations

from coordinator.ansible import HostOutcome, PlaybookResult
from coordinator.errors import ExitCode, HostNotReady, HostUnreachable, LockHeld
from coordinator.locks import lock_error
from coordinator.stages.deploy import failure_reason, removed_first_release


def failed(reported: dict, hosts: dict | None = None) -> PlaybookResult:
    return PlaybookResult(playbook="deploy.yml", status="failed", rc=2, hosts=hosts or {}, reported=reported)


def test_an_unreachable_host_is_not_a_held_lock() -> None:
    result = failed({"prod1": {"lock_failure": "unreachable", "error": "cannot reach prod1: Connection refused"},
                     "prod2": {"lock_failure": "other_host", "error": "not locked"}})
    error = lock_error("production", result, "start the deploy")
    assert isinstance(error, HostUnreachable) and error.exit_code == ExitCode.HOST_UNREACHABLE
    assert "cannot reach prod1 over SSH" in error.message and "Connection refused" in error.message
    assert "check SSH" in error.message and "prod2" not in error.message


def test_ansible_s_own_unreachable_verdict_counts_too() -> None:
    result = failed({}, {"prod1": HostOutcome(unreachable=True, message="Failed to connect to the host via ssh")})
    assert isinstance(lock_error("production", result, "read the deploy lock"), HostUnreachable)


def test_a_host_that_cannot_run_the_deploy_is_named_with_its_error() -> None:
    result = failed({"staging": {"lock_failure": "not_ready",
                                 "error": "Failed to import the required Python library (requests)"}})
    error = lock_error("staging", result, "start the deploy")
    assert isinstance(error, HostNotReady) and error.exit_code == ExitCode.HOST_NOT_READY
    assert "staging answered but cannot run the deploy" in error.message and "(requests)" in error.message


def test_a_held_lock_names_its_holder() -> None:
    result = failed({"prod1": {"lock_failure": "held", "error": "locked by alice",
                               "lock": {"held": True, "owner": "alice", "acquired_at": "t", "lock_id": "x1"}}})
    error = lock_error("production", result, "start the deploy")
    assert isinstance(error, LockHeld) and "held by alice" in error.message and "lock release production" in error.message


def test_the_reason_is_each_host_s_own_error_not_the_run_s_last_task() -> None:
    result = failed({"prod1": {"error": "Wait for /health: /health answered 404", "rolled_back": True, "version": "1.0.0"}},
                    {"prod1": HostOutcome(failed=True, failed_task="Fail the run", message="deploy of 1.1.0 failed ...")})
    assert failure_reason(result) == "prod1: Wait for /health: /health answered 404"


def test_only_a_plain_removed_first_release_counts_as_one() -> None:
    assert removed_first_release(failed({"a": {"first_release": True, "removed": True}})) == ["a"]
    assert removed_first_release(failed({"a": {"first_release": True, "removed": True},
                                         "b": {"rolled_back": True}})) == []
    assert removed_first_release(failed({"a": {"first_release": True, "removed": False, "rollback_error": "x"}})) == []


def test_an_unreachable_host_after_the_deploy_call_began_is_reported_as_unknown_not_unchanged() -> None:
    result = failed({"prod1": {"lock_failure": "unreachable", "error": "cannot reach prod1: Connection refused"}})
    error = lock_error("production", result, "start the deploy of v1.1.0",
                       dropped="taken this run's lock (id L1) and started v1.1.0")
    assert isinstance(error, HostUnreachable) and error.exit_code == ExitCode.HOST_UNREACHABLE
    assert "Nothing was changed" not in error.message
    assert "prod1 may have taken this run's lock (id L1) and started v1.1.0: its state is unknown" in error.message
    assert "`coordinator lock status production`" in error.message and "`coordinator hosts check production`" in error.message
