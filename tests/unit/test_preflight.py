"""What `hosts check` makes of a preflight.yml run: one HostCheck per host, problems named."""

from __future__ import annotations

import pytest

from coordinator.ansible import HostOutcome, PlaybookResult
from coordinator.errors import HostNotReady, HostUnreachable
from coordinator.preflight import host_checks, raise_for_problems

READY_FINDINGS = [
    {"check": "python", "ok": True, "detail": "3.11.2 at /usr/bin/python3"},
    {"check": "python library requests", "ok": True, "detail": "importable"},
    {"check": "docker engine", "ok": True, "detail": "engine 20.10 answers on /var/run/docker.sock"},
    {"check": "state directory", "ok": True, "detail": "writable: /var/lib/coordinator"},
]


def result_with(hosts: dict[str, HostOutcome], reported: dict[str, dict]) -> PlaybookResult:
    return PlaybookResult(playbook="preflight.yml", status="failed", rc=2, hosts=hosts, reported=reported)


def test_a_ready_host_passes_and_shows_its_lock():
    lock = {"held": True, "owner": "alice", "expires_at": "2026-11-29T10:00:00+00:00", "lock_id": "ab12"}
    [check] = host_checks(result_with({"prod1": HostOutcome(ok=3)},
                                      {"prod1": {"ready": True, "findings": READY_FINDINGS, "lock": lock}}))

    assert check.ready and check.reachable
    assert check.lock == "held by alice until 2026-11-29T10:00:00+00:00 (id ab12)"
    raise_for_problems("production", [check])  # a held lock is information, not a failure


def test_an_unreachable_host_is_named_with_the_ssh_error_and_exits_15():
    checks = host_checks(result_with(
        {"prod2": HostOutcome(unreachable=True, message="ssh: connect to host 10.0.0.2 port 22: Connection refused")},
        {}))

    with pytest.raises(HostUnreachable, match=r"prod2: ssh: unreachable: ssh: connect to host .* Connection refused"):
        raise_for_problems("production", checks)


def test_a_missing_library_is_named_and_exits_16():
    findings = [*READY_FINDINGS[:1], {"check": "python library requests", "ok": False,
                                      "detail": "/usr/bin/python3 cannot import requests: install it"}]
    checks = host_checks(result_with({"prod1": HostOutcome(ok=2)}, {"prod1": {"ready": False, "findings": findings}}))

    with pytest.raises(HostNotReady, match=r"^production: prod1: python library requests: /usr/bin/python3 cannot import"):
        raise_for_problems("production", checks)


def test_a_host_without_python_is_reported_from_the_module_error():
    checks = host_checks(result_with(
        {"prod1": HostOutcome(failed=True, message="MODULE FAILURE")},
        {"prod1": {"ready": False, "error": "/bin/sh: 1: /usr/bin/python3: not found"}}))

    [check] = checks
    assert not check.ready and check.reachable
    assert "/usr/bin/python3: not found" in check.problems()[0]


def test_unreachable_wins_over_not_ready_when_both_happen():
    checks = host_checks(result_with(
        {"prod1": HostOutcome(unreachable=True, message="timed out"), "prod2": HostOutcome(failed=True)},
        {"prod2": {"ready": False, "error": "boom"}}))

    with pytest.raises(HostUnreachable):
        raise_for_problems("production", checks)
