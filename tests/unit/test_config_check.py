"""`coordinator config check` refuses what the file system contradicts, through the real CLI."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest

from coordinator.errors import ExitCode
from tests.unit.test_config import MINIMAL, write


def write_config(tmp_path: Path, **changes) -> Path:
    """MINIMAL with a state dir; `section=value` replaces a section, `section__key=value` one key."""
    data = copy.deepcopy({**MINIMAL, "state_dir": "state"})
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if name:
            data[section][name] = value
        else:
            data[section] = value
    return write(tmp_path, data)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    for folder in ("app/.git", "inventory/staging", "inventory/production"):
        (tmp_path / folder).mkdir(parents=True)
    return tmp_path


def config_check(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "coordinator", "-c", str(config), "config", "check"],
                          capture_output=True, text=True, check=False, timeout=60, stdin=subprocess.DEVNULL)


def test_a_complete_config_passes(checkout: Path):
    result = config_check(write_config(checkout))
    assert result.returncode == ExitCode.OK, result.stderr
    assert "is valid" in result.stdout


def test_a_missing_inventory_is_named_with_its_key(checkout: Path):
    (checkout / "inventory" / "production").rmdir()
    result = config_check(write_config(checkout))
    assert result.returncode == ExitCode.USAGE
    assert "environments.production.inventory" in result.stderr
    assert str(checkout / "inventory" / "production") in result.stderr and "does not exist" in result.stderr
    assert "environments.staging" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_missing_app_path_is_named(checkout: Path):
    result = config_check(write_config(checkout, app={"path": "no-such-app"}))
    assert result.returncode == ExitCode.USAGE
    assert "app.path" in result.stderr and "no-such-app" in result.stderr


def test_an_app_path_that_is_no_git_checkout_is_named(checkout: Path):
    (checkout / "app" / ".git").rmdir()
    result = config_check(write_config(checkout))
    assert result.returncode == ExitCode.USAGE
    assert "app.path" in result.stderr and "not a git work tree" in result.stderr


def test_a_token_file_readable_by_others_is_refused_with_the_fix(checkout: Path):
    token = checkout / "forge-token"
    token.write_text("s3cret-token-value\n")
    token.chmod(0o644)
    result = config_check(write_config(checkout, forge__token_file="forge-token"))
    assert result.returncode == ExitCode.USAGE
    assert "forge.token_file" in result.stderr and "0644" in result.stderr and f"chmod 600 {token}" in result.stderr
    assert "s3cret-token-value" not in result.stdout + result.stderr
    token.chmod(0o600)
    assert config_check(write_config(checkout, forge__token_file="forge-token")).returncode == ExitCode.OK


def test_every_problem_is_reported_at_once(checkout: Path):
    (checkout / "inventory" / "staging").rmdir()
    result = config_check(write_config(checkout, app={"path": "gone"}))
    assert result.returncode == ExitCode.USAGE
    assert "app.path" in result.stderr and "environments.staging.inventory" in result.stderr


@pytest.mark.parametrize(("section", "typo", "nearest"), [
    ("environments", {"staging": {"inventroy": "inventory/staging", "url": "https://s.example.com"},
                      "production": {"inventory": "inventory/production", "url": "https://p.example.com"}},
     "environments.staging.inventroy: unknown key; did you mean 'inventory'?"),
    ("forge", {"url": "https://git.example.com", "repo": "acme/shop", "token_fiel": "t"},
     "forge.token_fiel: unknown key; did you mean 'token_file'?"),
])
def test_a_misspelled_key_suggests_the_nearest_one(checkout: Path, section, typo, nearest):
    result = config_check(write_config(checkout, **{section: typo}))
    assert result.returncode == ExitCode.USAGE
    assert nearest in result.stderr


def test_a_key_far_from_any_is_not_guessed(checkout: Path):
    result = config_check(write_config(checkout, forge={"url": "https://git.example.com", "repo": "acme/shop", "zzz": 1}))
    assert result.returncode == ExitCode.USAGE
    assert "forge.zzz: unknown key" in result.stderr and "did you mean" not in result.stderr


def test_a_bot_that_is_also_an_approver_is_named(checkout: Path):
    result = config_check(write_config(checkout, approvals={"bots": ["CI-Bot"], "approvers": ["ci-bot", "alice"]}))
    assert result.returncode == ExitCode.USAGE
    assert "approvals.bots: ci-bot is also listed in approvals.approvers, but a bot never approves" in result.stderr


def test_bots_with_the_commit_status_provider_can_never_release_and_config_check_says_so(checkout: Path):
    result = config_check(write_config(checkout, approvals={"bots": ["ci-bot"]}, ci={"provider": "commit-status"}))
    assert result.returncode == ExitCode.USAGE
    assert "with ci.provider commit-status there are no CI run records" in result.stderr


def test_a_bot_name_that_is_no_account_name_is_refused_naming_the_key(checkout: Path):
    result = config_check(write_config(checkout, approvals={"bots": ["ci bot; drop"]}))
    assert result.returncode == ExitCode.USAGE
    assert "approvals.bots: 'ci bot; drop' is not an account name" in result.stderr
