"""ansible.cfg layering: ours is the base, the operator's ANSIBLE_CONFIG adds to it, safety stays ours."""

from __future__ import annotations

import configparser
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from coordinator.ansible import run_playbook, runner_envvars
from coordinator.ansible_cfg import layered_ansible_cfg
from coordinator.config import REPO_ROOT
from coordinator.errors import ExitCode, UsageError
from coordinator.strategy import AnsibleStrategy

ANSIBLE_CONFIG_BIN = Path(sys.executable).parent / "ansible-config"


def operator_cfg(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mine" / "ansible.cfg"
    path.parent.mkdir()
    path.write_text(text)
    return path


def read(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path)
    return parser


def test_without_ansible_config_ours_is_used_as_is(tmp_path: Path):
    assert layered_ansible_cfg(REPO_ROOT, tmp_path, environ={}) == REPO_ROOT / "ansible.cfg"
    assert not list(tmp_path.iterdir())


def test_ansible_config_naming_ours_changes_nothing(tmp_path: Path):
    environ = {"ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg")}
    assert layered_ansible_cfg(REPO_ROOT, tmp_path, environ=environ) == REPO_ROOT / "ansible.cfg"


def test_the_operators_keys_are_added_and_win_over_ours(tmp_path: Path):
    theirs = operator_cfg(tmp_path, "[defaults]\nvault_password_file = /etc/ansible/vault-pass\nforks = 5\n"
                                    "[ssh_connection]\nssh_args = -o ProxyJump=bastion.example.com\n")
    (tmp_path / "run").mkdir()
    merged = layered_ansible_cfg(REPO_ROOT, tmp_path / "run", environ={"ANSIBLE_CONFIG": str(theirs)})
    assert merged == tmp_path / "run" / "ansible.cfg"
    config = read(merged)
    assert config["defaults"]["vault_password_file"] == "/etc/ansible/vault-pass"
    assert config["defaults"]["forks"] == "5"
    assert config["ssh_connection"]["ssh_args"] == "-o ProxyJump=bastion.example.com"
    # Ours stays underneath: what the operator did not set.
    assert config["defaults"]["gathering"] == "explicit"
    assert config["ssh_connection"]["pipelining"] == "True"
    assert config["defaults"]["roles_path"] == str(REPO_ROOT / "roles")
    assert stat.S_IMODE(merged.stat().st_mode) == 0o600


def test_ansible_reads_the_merged_file_but_host_keys_stay_checked(tmp_path: Path):
    """The operator's file cannot turn host key checking off: the runner's env outranks any file."""
    theirs = operator_cfg(tmp_path, "[defaults]\nvault_password_file = /etc/ansible/vault-pass\nhost_key_checking = False\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    merged = layered_ansible_cfg(REPO_ROOT, run_dir, environ={"ANSIBLE_CONFIG": str(theirs)})
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **runner_envvars(REPO_ROOT, {"ANSIBLE_CONFIG": str(merged)})}
    dumped = subprocess.run([str(ANSIBLE_CONFIG_BIN), "dump", "--only-changed"], capture_output=True, text=True,
                            env=env, check=True, timeout=120).stdout
    assert "DEFAULT_VAULT_PASSWORD_FILE" in dumped and "/etc/ansible/vault-pass" in dumped
    assert "DEFAULT_GATHERING" in dumped  # ours, still applied
    host_key_line = next(line for line in dumped.splitlines() if line.startswith("HOST_KEY_CHECKING"))
    assert "True" in host_key_line and "env: ANSIBLE_HOST_KEY_CHECKING" in host_key_line


def test_a_missing_override_file_is_a_usage_error_naming_the_variable(tmp_path: Path):
    with pytest.raises(UsageError) as raised:
        layered_ansible_cfg(REPO_ROOT, tmp_path, environ={"ANSIBLE_CONFIG": str(tmp_path / "nope.cfg")})
    assert raised.value.exit_code == ExitCode.USAGE
    assert f"ANSIBLE_CONFIG={tmp_path / 'nope.cfg'}: no such file" in raised.value.message


def test_an_unreadable_override_file_is_named_with_the_fix(tmp_path: Path):
    theirs = operator_cfg(tmp_path, "vault_password_file = /x\n")  # no section header
    with pytest.raises(UsageError) as raised:
        layered_ansible_cfg(REPO_ROOT, tmp_path, environ={"ANSIBLE_CONFIG": str(theirs)})
    assert f"{theirs}: not a readable ansible.cfg" in raised.value.message
    assert "\n" not in raised.value.message


PROBE = """---
- name: Probe the config a coordinator run sees
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Assert the operator's vault password file is configured
      ansible.builtin.assert:
        that: lookup('ansible.builtin.config', 'DEFAULT_VAULT_PASSWORD_FILE') == expected_vault_password_file
"""


def test_a_coordinator_playbook_run_sees_the_operators_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    ansible_dir = tmp_path / "content"
    (ansible_dir / "playbooks").mkdir(parents=True)
    (ansible_dir / "roles").mkdir()
    (ansible_dir / "ansible.cfg").write_text((REPO_ROOT / "ansible.cfg").read_text())
    (ansible_dir / "playbooks" / "probe.yml").write_text(PROBE)
    (tmp_path / "vault-pass").write_text("x\n")
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")

    def probe() -> bool:
        return run_playbook(ansible_dir=ansible_dir, playbook="probe.yml", inventory=inventory,
                            extravars={"expected_vault_password_file": str(tmp_path / "vault-pass")},
                            ident="probe", strategy=AnsibleStrategy.LINEAR, timeout_s=120, run_log_dir=tmp_path / "state").ok

    monkeypatch.delenv("ANSIBLE_CONFIG", raising=False)
    (tmp_path / "runtime").mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "runtime"))
    assert not probe()  # ours alone has no vault password file: the probe can fail
    theirs = operator_cfg(tmp_path, f"[defaults]\nvault_password_file = {tmp_path / 'vault-pass'}\n")
    monkeypatch.setenv("ANSIBLE_CONFIG", str(theirs))
    assert probe()
    assert not list((tmp_path / "runtime" / "coordinator-runner").iterdir()), "the merged file goes with the run's private dir"
