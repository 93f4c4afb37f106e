"""Failures an operator must be able to debug, on the real world: the whole cause, the run
log and its verbosity, and `plan`'s exit codes matching README's table."""

from __future__ import annotations

import json
import re
import secrets
import socket
import stat
from pathlib import Path

import pytest

from coordinator.errors import ExitCode
from tests.sandbox.coordinator_config import sandbox_config
from tests.drills.forge_helpers import forge_section
from tests.integration.conftest import ReleaseWorld

pytestmark = pytest.mark.world


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def last_error(result) -> str:
    return result.stderr.strip().splitlines()[-1]


def newest_run(state_dir: Path, ident: str) -> Path:
    return sorted((state_dir / "logs" / ident).iterdir())[-1]


def test_plan_exits_2_for_a_token_the_forge_refuses(release_world: ReleaseWorld, tmp_path: Path):
    rw = release_world
    wrong = tmp_path / "wrong-token"
    wrong.write_text("0" * 40 + "\n")
    wrong.chmod(0o600)
    rw.rewrite_config(forge=forge_section(rw, token_file=str(wrong)))
    result = rw.coordinator("plan", "1.0.0")
    assert result.returncode == ExitCode.USAGE, result.stdout + result.stderr
    assert "refused the token from" in last_error(result) and str(wrong) in last_error(result)
    assert "0" * 40 not in result.stdout + result.stderr


def test_plan_exits_10_when_the_forge_cannot_be_reached(release_world: ReleaseWorld):
    rw = release_world
    rw.rewrite_config(forge=forge_section(rw, url=f"http://127.0.0.1:{closed_port()}", timeout_s=2))
    result = rw.coordinator("plan", "1.0.0")
    assert result.returncode == ExitCode.FORGE_UNAVAILABLE, result.stdout + result.stderr
    assert last_error(result).startswith("error: forge unreachable while planning: ")


def test_a_missing_git_remote_shows_git_s_whole_message(release_world: ReleaseWorld):
    rw = release_world
    rw.rewrite_config(app={**sandbox_config(rw.world_dir, rw.state_dir)["app"], "remote": "nosuchremote"})
    result = rw.coordinator("plan", "1.0.0")
    assert result.returncode == ExitCode.CHECK_FAILED, result.stdout + result.stderr
    assert re.search(r"git ls-remote --heads failed: fatal: 'nosuchremote' does not appear to be a git repository "
                     r"fatal: Could not read from remote repository\. .*and the repository exists\.", result.stdout)


def test_v_passes_verbosity_to_ansible_and_the_log_keeps_it(release_world: ReleaseWorld):
    rw = release_world
    quiet = rw.coordinator("lock", "status", "staging")
    assert quiet.returncode == ExitCode.OK, quiet.stderr
    quiet_log = newest_run(rw.state_dir, "lock-staging-status") / "stdout.txt"
    assert "ESTABLISH " not in quiet_log.read_text()
    loud = rw.coordinator("-vvv", "lock", "status", "staging")
    assert loud.returncode == ExitCode.OK, loud.stderr
    loud_log = newest_run(rw.state_dir, "lock-staging-status") / "stdout.txt"
    assert loud_log != quiet_log, "one folder per run"
    assert "ESTABLISH LOCAL CONNECTION" in loud_log.read_text()  # -vvv: the sandbox's staging host is local
    assert "ESTABLISH " not in loud.stdout + loud.stderr, "the detail goes to the log, not the terminal"


def test_a_verbose_release_keeps_private_redacted_run_logs_listed_by_status(release_world: ReleaseWorld):
    rw = release_world
    canary = f"canary-env-{secrets.token_hex(8)}"
    token = (rw.world_dir / "forge-token").read_text().strip()
    result = rw.coordinator("-vvv", "release", "1.0.0", env={"SAMPLE_API_SECRET": canary})
    assert result.returncode == ExitCode.AWAITING_APPROVAL, result.stdout + result.stderr
    shown = json.loads(rw.coordinator("status", "--json").stdout)[0]
    runs = [Path(run) for run in shown["run_logs"]]
    assert any(run.parent.name == "sample-1.0.0-staging-deploy" for run in runs), runs
    logs = rw.state_dir / "logs"
    for path in [logs, *logs.rglob("*")]:
        want = 0o700 if path.is_dir() else 0o600
        assert stat.S_IMODE(path.stat().st_mode) == want, path
    deploy_log = next(run for run in runs if run.parent.name == "sample-1.0.0-staging-deploy") / "stdout.txt"
    assert "ESTABLISH " in deploy_log.read_text()
    for path in logs.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert canary not in text and token not in text, path
