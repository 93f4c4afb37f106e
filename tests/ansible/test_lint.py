"""The Ansible content passes ansible-lint's production profile and a syntax check."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.ansible.conftest import REPO, VENV_BIN, ansible_env

PLAYBOOKS = sorted(path.name for path in (REPO / "playbooks").glob("*.yml"))
INVENTORIES = sorted(path.name for path in (REPO / "inventory").iterdir() if path.is_dir())


def test_every_documented_playbook_exists() -> None:
    assert {"deploy.yml", "verify.yml", "rollback.yml", "lock.yml", "status.yml"} <= set(PLAYBOOKS)


def test_lint_config_uses_the_production_profile_offline_without_skips() -> None:
    config = yaml.safe_load((REPO / ".ansible-lint").read_text())
    assert config["profile"] == "production"
    assert config["offline"] is True
    assert not config.get("skip_list") and not config.get("warn_list")


def test_ansible_lint_production_profile_passes_on_playbooks_and_roles() -> None:
    result = subprocess.run(
        [str(VENV_BIN / "ansible-lint"), "--nocolor", "playbooks", "roles"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=ansible_env(),
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("inventory", INVENTORIES)
@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_playbook_passes_syntax_check(playbook: str, inventory: str) -> None:
    result = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", f"inventory/{inventory}", "--syntax-check", f"playbooks/{playbook}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=ansible_env(),
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ansible_cfg_keeps_host_key_checking_on() -> None:
    text = (REPO / "ansible.cfg").read_text()
    assert "host_key_checking = True" in text
    assert "pipelining = True" in text
    assert "ControlPersist" in text


@pytest.mark.parametrize("role", sorted(path.name for path in (REPO / "roles").iterdir() if path.is_dir()))
def test_role_has_the_documented_layout(role: str) -> None:
    role_dir: Path = REPO / "roles" / role
    for part in ("defaults/main.yml", "tasks/main.yml", "meta/main.yml", "meta/argument_specs.yml", "README.md",
                 "molecule/default/molecule.yml", "molecule/default/converge.yml", "molecule/default/verify.yml"):
        assert (role_dir / part).is_file(), f"{role} is missing {part}"
