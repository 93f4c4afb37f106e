"""`coordinator --version`: what a bug report and the manual runbook need, not just our number."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

from coordinator.config import REPO_ROOT


def version(*args: str, cwd: Path, env: dict[str, str] | None = None) -> list[str]:
    result = subprocess.run([sys.executable, "-m", "coordinator", *args, "--version"], capture_output=True, text=True,
                            cwd=cwd, check=False, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_version_names_ansible_python_and_the_playbooks_in_use(tmp_path: Path):
    lines = version(cwd=tmp_path)
    assert lines[0] == f"coordinator {metadata.version('release-coordinator')} (release-coordinator)"
    assert f"ansible-core {metadata.version('ansible-core')}" in lines
    assert f"ansible-runner {metadata.version('ansible-runner')}" in lines
    assert f"mitogen {metadata.version('mitogen')} (for the opt-in ansible.strategy: mitogen)" in lines
    assert any(line.startswith(f"Python {sys.version_info.major}.{sys.version_info.minor}.") for line in lines)
    assert f"playbooks: {REPO_ROOT / 'playbooks'}" in lines
    assert f"ansible-playbook: {Path(sys.executable).parent / 'ansible-playbook'}" in lines
    assert "config: coordinator.yml (not found; pass -c PATH or run `coordinator init`)" in lines


def test_version_says_which_config_file_it_found_and_the_operators_ansible_cfg(tmp_path: Path):
    assert subprocess.run([sys.executable, "-m", "coordinator", "init"], cwd=tmp_path, capture_output=True,
                          check=False, timeout=60).returncode == 0
    mine = tmp_path / "mine.cfg"
    mine.write_text("[defaults]\n")
    lines = version("-c", "coordinator.yml", cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "ANSIBLE_CONFIG": str(mine)})
    assert f"config: {tmp_path / 'coordinator.yml'} (found)" in lines
    assert f"ansible.cfg: {REPO_ROOT / 'ansible.cfg'} + ANSIBLE_CONFIG={mine} on top" in lines
