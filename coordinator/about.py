"""`coordinator --version`: what is running, and with which Ansible and files.

A bug report or a manual runbook needs more than our own version: the ansible-core and
ansible-runner that will run the playbooks, the Python, where the shipped playbooks are
(a pipx install hides them in its venv; the manual rollback runbook starts from this
line), which config file would be read and which ansible.cfg applies.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path

from coordinator import DISTRIBUTION, __version__
from coordinator.ansible_cfg import OVERRIDE_ENV
from coordinator.errors import ConfigError


def _installed(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _ansible_dir_and_config(config_path: Path) -> tuple[Path, str]:
    """The Ansible content in use and a description of the config file: its own ansible_dir wins."""
    from coordinator.config import default_ansible_dir, load_config

    if not config_path.is_file():
        return default_ansible_dir(), f"{config_path} (not found; pass -c PATH or run `coordinator init`)"
    try:
        config = load_config(config_path)
    except ConfigError:
        return default_ansible_dir(), f"{config_path.resolve()} (found, invalid: run `coordinator config check`)"
    return config.ansible_dir, f"{config_path.resolve()} (found)"


def version_report(config_path: Path | None = None) -> str:
    """The lines `--version` prints; without a path, the config file a command would read."""
    if config_path is None:
        config_path = Path(os.environ.get("COORDINATOR_CONFIG", "coordinator.yml"))
    ansible_dir, config_line = _ansible_dir_and_config(config_path)
    override = os.environ.get(OVERRIDE_ENV, "").strip()
    ansible_cfg = str(ansible_dir / "ansible.cfg") + (f" + {OVERRIDE_ENV}={override} on top" if override else "")
    bin_dir = Path(sys.executable).parent
    return "\n".join([
        f"coordinator {__version__} ({DISTRIBUTION})",
        f"Python {platform.python_version()} ({sys.executable})",
        f"ansible-core {_installed('ansible-core')}",
        f"ansible-runner {_installed('ansible-runner')}",
        f"mitogen {_installed('mitogen')} (for the opt-in ansible.strategy: mitogen)",
        f"playbooks: {ansible_dir / 'playbooks'}",
        f"ansible-playbook: {bin_dir / 'ansible-playbook'}",
        f"ansible.cfg: {ansible_cfg}",
        f"config: {config_line}",
    ])
