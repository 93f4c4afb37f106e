"""The CLI's promises: help, exit codes, one-line errors."""

import subprocess
import sys

from click.testing import CliRunner

from coordinator.cli import cli
from coordinator.errors import ExitCode


def run_main(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "coordinator", *args], capture_output=True, text=True, cwd=cwd, check=False)


def test_help_lists_every_command_and_the_exit_codes():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("release", "plan", "status", "resume", "approve", "rollback", "audit"):
        assert command in result.output
    assert "awaiting approval" in result.output


def test_malformed_version_is_a_usage_error(tmp_path):
    result = run_main("release", "v1.2.3;rm -rf /", cwd=tmp_path)
    assert result.returncode == ExitCode.USAGE
    assert "not SemVer" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_config_is_a_one_line_usage_error(tmp_path):
    result = run_main("status", cwd=tmp_path)
    assert result.returncode == ExitCode.USAGE
    assert "coordinator.yml" in result.stderr and "--config" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_command_is_a_usage_error(tmp_path):
    result = run_main("relase", "1.0.0", cwd=tmp_path)
    assert result.returncode == ExitCode.USAGE
