"""The exit-code walk: README's table, `ExitCode` and the CLI tests agree, code by code.

The table is parsed from README, so a new row needs only two things here: its `ExitCode`
member and an entry in CLI_TESTS naming a test that drives the CLI to that code (the test
must compare a return code with `ExitCode.<NAME>`). The tests below it give the codes that
had none: 1, 8, 11, 13 and 19 (12 is in test_no_input.py, under a real terminal).
"""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coordinator.errors import ExitCode
from tests.sandbox.coordinator_config import FORGE_URL, REPO_ROOT, write_sandbox_config
from tests.integration.conftest import ReleaseWorld

README = REPO_ROOT / "README.md"

CLI_TESTS: dict[int, str] = {
    0: "tests/unit/test_config_check.py::test_a_complete_config_passes",
    1: "tests/integration/test_exit_codes.py::test_an_unexpected_error_is_exit_1_pointing_at_debug",
    2: "tests/integration/test_zero_hosts.py::test_an_inventory_path_that_does_not_exist_is_exit_2_naming_it",
    3: "tests/integration/test_preflight.py::test_plan_exits_3_naming_the_failed_check",
    4: "tests/integration/test_release.py::test_resume_without_approval_stays_at_the_gate",
    5: "tests/integration/test_release.py::test_failed_ci_run_stops_the_release_with_its_url",
    6: "tests/drills/test_deploy_drills.py::test_broken_health_caught_on_staging_restores_a_verified_release",
    7: "tests/integration/test_release.py::test_broken_production_image_is_rolled_back_to_the_previous_digest",
    8: "tests/integration/test_exit_codes.py::test_a_failed_manual_rollback_is_exit_8_naming_its_log",
    9: "tests/integration/test_safety.py::test_a_lock_held_by_someone_else_stops_promotion_until_released",
    10: "tests/integration/test_bad_input.py::test_unreachable_forge_is_a_resumable_one_line_error",
    11: "tests/integration/test_exit_codes.py::test_sigint_stops_at_the_next_safe_point_with_exit_11_and_resumes",
    12: "tests/integration/test_no_input.py::test_on_a_terminal_the_gate_prompts_and_a_wrong_answer_refuses_with_12",
    13: "tests/integration/test_exit_codes.py::test_a_failing_forge_release_after_verify_is_exit_13_and_resume_finishes",
    14: "tests/integration/test_kill_resume.py::test_release_killed_at_every_boundary_resumes_to_the_same_end_state",
    15: "tests/integration/test_preflight.py::test_hosts_check_names_an_unreachable_host_and_exits_15",
    16: "tests/integration/test_preflight.py::test_hosts_check_names_a_docker_engine_that_does_not_answer_and_exits_16",
    17: "tests/integration/test_release.py::test_a_failed_first_release_has_its_own_exit_code_and_releases_the_lock",
    18: "tests/integration/test_safety.py::test_self_approval_can_be_forbidden",
    19: "tests/integration/test_exit_codes.py::test_an_unreachable_state_database_is_exit_19",
    20: "tests/drills/test_safety_drills.py::test_a_terminated_lock_session_stops_its_holder_and_the_second_resume_meets_the_host_lock",
    21: "tests/integration/test_registry_auth.py::test_without_credentials_plan_exits_21_naming_the_registry_and_the_fix",
    22: "tests/integration/test_registry_auth.py::test_a_user_without_access_to_the_repository_exits_22",
    23: "tests/drills/test_safety_drills.py::test_resume_of_a_digest_that_failed_is_refused_without_force_even_when_its_record_was_lost",
}


def readme_exit_codes() -> dict[int, str]:
    """README's "Exit codes" table as {code: meaning}."""
    section = README.read_text(encoding="utf-8").split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    return {int(m.group(1)): m.group(2).strip() for m in re.finditer(r"^\| (\d+) \| (.+?) \|$", section, re.MULTILINE)}


def test_readme_table_and_exit_code_enum_list_the_same_codes():
    table = readme_exit_codes()
    assert table, "README has no Exit codes table"
    assert sorted(table) == sorted(code.value for code in ExitCode)


def test_cli_help_lists_every_code():
    result = subprocess.run([sys.executable, "-m", "coordinator", "--help"], capture_output=True, text=True, check=False,
                            timeout=60)
    for code in ExitCode:
        assert re.search(rf"^\s+{code.value}\s+{code.name.lower().replace('_', ' ')}$", result.stdout, re.MULTILINE), code


def _test_source(reference: str) -> str | None:
    path, _, name = reference.partition("::")
    tree = ast.parse((REPO_ROOT / path).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return ast.get_source_segment((REPO_ROOT / path).read_text(encoding="utf-8"), node)
    return None


@pytest.mark.parametrize("code", sorted(readme_exit_codes()))
def test_every_code_in_the_table_has_a_cli_test_that_expects_it(code: int):
    reference = CLI_TESTS.get(code)
    assert reference, f"exit code {code} has no CLI test: write one and add it to CLI_TESTS"
    source = _test_source(reference)
    assert source is not None, f"{reference} does not exist"
    assert f"ExitCode.{ExitCode(code).name}" in source, f"{reference} never expects ExitCode.{ExitCode(code).name}"


# -- codes without a test before: 1 and 19 need no world ---------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_cli(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "coordinator", "-c", str(config), *args], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, check=False, timeout=120, env={**os.environ, **(env or {})})


def test_an_unreachable_state_database_is_exit_19(tmp_path: Path):
    password = "pw-canary-5d1e"
    config = write_sandbox_config(tmp_path / "coordinator.yml", tmp_path / "world", tmp_path / "state",
                                  state={"backend": "postgres", "connect_timeout_s": 5})
    port = closed_port()
    result = run_cli(config, "status", env={"COORDINATOR_DATABASE_URL": f"postgresql://app:{password}@127.0.0.1:{port}/coordinator"})
    assert result.returncode == ExitCode.STATE_BACKEND, result.stdout + result.stderr
    error = result.stderr.strip().splitlines()
    assert len(error) == 1 and f"state database 127.0.0.1:{port}/coordinator is unreachable" in error[0]
    assert password not in result.stdout + result.stderr
    assert not (tmp_path / "state" / "releases").exists()


def test_an_unexpected_error_is_exit_1_pointing_at_debug(tmp_path: Path):
    config = write_sandbox_config(tmp_path / "coordinator.yml", tmp_path / "world", tmp_path / "state")
    # A directory where a release record should be: nothing the coordinator classifies.
    (tmp_path / "state" / "releases" / "sample-1.0.0.json").mkdir(parents=True)
    result = run_cli(config, "status")
    assert result.returncode == ExitCode.ERROR, result.stdout + result.stderr
    error = result.stderr.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error: unexpected ") and "--debug" in error[0]


def test_a_release_record_that_is_not_json_is_named_as_damaged_exit_19(tmp_path: Path):
    config = write_sandbox_config(tmp_path / "coordinator.yml", tmp_path / "world", tmp_path / "state")
    record = tmp_path / "state" / "releases" / "sample-1.0.0.json"
    record.parent.mkdir(parents=True)
    record.write_text("{not json")
    result = run_cli(config, "status")
    assert result.returncode == ExitCode.STATE_BACKEND, result.stdout + result.stderr
    error = result.stderr.strip().splitlines()
    assert len(error) == 1 and f"release record {record} is damaged" in error[0]
    assert record.read_text() == "{not json"


# -- 8, 11 and 13 on the real world ----------------------------------------------------


def audit_records(rw: ReleaseWorld) -> list[dict]:
    return [json.loads(line) for line in (rw.state_dir / "audit.jsonl").read_text().splitlines()]


def release_record(rw: ReleaseWorld, version: str) -> dict:
    shown = rw.coordinator("status", "--json")
    assert shown.returncode == ExitCode.OK, shown.stderr
    return next(r for r in json.loads(shown.stdout) if r["version"] == version)


@pytest.mark.world
def test_a_failed_manual_rollback_is_exit_8_naming_its_log(release_world: ReleaseWorld):
    rw = release_world
    missing = "sha256:" + "0" * 64  # in no registry: the host cannot pull it
    result = rw.coordinator("rollback", "staging", "--to-digest", missing, "--to-version", "0.9.0", "--reason", "drill")
    assert result.returncode == ExitCode.ROLLBACK_FAILED, result.stdout + result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: manual rollback of staging failed: ")
    log = Path(re.search(r"\(full log: (\S+/stdout\.txt)\)$", error).group(1))
    assert log.is_relative_to(rw.state_dir / "logs") and (log.stat().st_mode & 0o777) == 0o600
    assert (log.parent.stat().st_mode & 0o777) == 0o700
    assert "FAILED!" in log.read_text(), "the log holds Ansible's own output"
    assert (log.parent / "events.jsonl").read_text().count("\n") > 3
    failed = [r for r in audit_records(rw) if r["event"] == "rollback.failed"]
    assert len(failed) == 1 and failed[0]["outcome"] == "rollback_failed" and failed[0]["environment"] == "staging"
    assert not any(r["event"] == "rollback.completed" for r in audit_records(rw))


@pytest.mark.world
def test_sigint_stops_at_the_next_safe_point_with_exit_11_and_resumes(release_world: ReleaseWorld):
    from tests.drills.forge_helpers import configure_standin

    rw = release_world
    configure_standin(rw, ci_delay_s=4.0)  # the build stage waits long enough to be interrupted in it
    argv = [sys.executable, "-m", "coordinator", "-c", str(rw.config), "release", "1.0.0"]
    env = {**os.environ, "COORDINATOR_OPERATOR": "release-manager"}
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                          env=env) as proc:
        try:
            assert proc.stdout is not None
            deadline = time.monotonic() + 300
            seen = ""
            while "==> build: v1.0.0" not in seen:
                assert time.monotonic() < deadline and proc.poll() is None, seen
                seen += proc.stdout.readline()
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == ExitCode.INTERRUPTED, seen + out + err
    assert "stopping at the next safe point" in err
    assert err.strip().splitlines()[-1].startswith("error: stopped before ")
    record = release_record(rw, "1.0.0")
    assert record["status"] == "in_progress" and "build" in record["completed"], record
    resumed = rw.coordinator("resume", "1.0.0")  # the run lock was given back
    assert resumed.returncode == ExitCode.AWAITING_APPROVAL, resumed.stdout + resumed.stderr


@pytest.mark.world
def resume_past_the_gate_while_the_forge_fails(rw: ReleaseWorld, path_regex: str) -> subprocess.CompletedProcess:
    """release and approve 1.0.0, then `resume` while the forge answers 500 on `path_regex`."""
    from tests.drills.forge_helpers import configure_standin

    assert rw.coordinator("release", "1.0.0").returncode == ExitCode.AWAITING_APPROVAL
    assert rw.coordinator("approve", "1.0.0", operator="ops-lead").returncode == ExitCode.OK
    configure_standin(rw, fail_500_count=50, fail_500_path=path_regex)
    try:
        return rw.coordinator("resume")
    finally:
        configure_standin(rw, fail_500_count=0)


def test_a_failing_forge_release_after_verify_is_exit_13_and_resume_finishes(release_world: ReleaseWorld):
    rw = release_world
    result = resume_past_the_gate_while_the_forge_fails(rw, r"/repos/acme/sample/releases$")
    assert result.returncode == ExitCode.ANNOUNCE_PENDING, result.stdout + result.stderr
    assert "production verified" in result.stdout
    record = release_record(rw, "1.0.0")
    assert record["status"] == "announce_pending" and "verify" in record["completed"]
    assert rw.forge.get(f"{FORGE_URL}/api/v1/repos/acme/sample/releases/tags/v1.0.0").status_code == 404
    done = rw.coordinator("resume")
    assert done.returncode == ExitCode.OK, done.stdout + done.stderr
    assert rw.forge.get(f"{FORGE_URL}/api/v1/repos/acme/sample/releases/tags/v1.0.0").status_code == 200


def test_an_issue_that_cannot_be_closed_is_named_with_its_cause_and_resume_closes_it(release_world: ReleaseWorld):
    """The milestone's issues are closed side by side: the one that fails is named with the
    forge's cause, the others are closed, and the milestone stays open for `resume`."""
    from tests.sandbox.forge_seed import REPO_API, create_milestone_with_issues

    rw = release_world
    create_milestone_with_issues(rw.forge, "1.0.0", ["Serve /health", "Serve /version", "Log requests"])
    issues = rw.forge.get(f"{REPO_API}/issues", params={"milestones": "1.0.0", "state": "open", "type": "issues"}).json()
    stuck = next(issue["number"] for issue in issues if issue["title"] == "Serve /version")
    result = resume_past_the_gate_while_the_forge_fails(rw, rf"/repos/acme/sample/issues/{stuck}$")

    assert result.returncode == ExitCode.ANNOUNCE_PENDING, result.stdout + result.stderr
    warning = next(line for line in (result.stdout + result.stderr).splitlines() if "milestone pending" in line)
    assert f"could not close 1 issue(s) of milestone 1.0.0: #{stuck}: " in warning and "500" in warning, warning
    record = release_record(rw, "1.0.0")
    assert record["announcement"]["pending"] == ["milestone"]
    assert sorted(record["announcement"]["issues_closed"]) == sorted(i["number"] for i in issues if i["number"] != stuck)
    assert record["announcement"]["forge_release_id"] is not None and record["announcement"]["notified"]
    still_open = rw.forge.get(f"{REPO_API}/issues", params={"milestones": "1.0.0", "state": "open", "type": "issues"}).json()
    assert [issue["number"] for issue in still_open] == [stuck]

    done = rw.coordinator("resume")
    assert done.returncode == ExitCode.OK, done.stdout + done.stderr
    assert f"closed #{stuck} Serve /version" in done.stdout
    assert rw.forge.get(f"{REPO_API}/issues", params={"milestones": "1.0.0", "state": "open", "type": "issues"}).json() == []
    assert rw.coordinator("audit", "verify").returncode == ExitCode.OK
