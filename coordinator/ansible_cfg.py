"""Which `ansible.cfg` a playbook run uses: ours as the base, the operator's on top.

Ansible reads exactly one config file, so forcing ours (as the coordinator must: roles,
pipelining, timeouts) would silently drop an operator's own settings such as
`vault_password_file` or an `ssh_args` with a jump host. When the operator's environment
names a file in `ANSIBLE_CONFIG`, each run gets one merged file: every section and key of
ours, then every key of theirs added or replacing ours. Host key checking and the roles
path stay ours whatever the file says: the runner sets them as environment variables,
which Ansible ranks above any config file.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from pathlib import Path

from coordinator.errors import UsageError

OVERRIDE_ENV = "ANSIBLE_CONFIG"


def operator_ansible_cfg(ansible_dir: Path, environ: Mapping[str, str] | None = None) -> Path | None:
    """The operator's own ansible.cfg named by `ANSIBLE_CONFIG`, or None (also when it is ours)."""
    named = (os.environ if environ is None else environ).get(OVERRIDE_ENV, "").strip()
    if not named:
        return None
    path = Path(named).expanduser()
    if not path.is_file():
        raise UsageError(f"{OVERRIDE_ENV}={named}: no such file; point it at your ansible.cfg or unset it")
    if path.resolve() == (ansible_dir / "ansible.cfg").resolve():
        return None
    return path


def _read(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # Ansible keys are case-sensitive
    try:
        with path.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    except (OSError, configparser.Error, UnicodeDecodeError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"{path}: not a readable ansible.cfg ({first_line}); fix the file or unset {OVERRIDE_ENV}") from exc
    return parser


def layered_ansible_cfg(ansible_dir: Path, run_dir: Path, environ: Mapping[str, str] | None = None) -> Path:
    """The config file for one run: ours, or ours merged with the operator's in `run_dir`.

    Relative paths in the operator's file would be resolved against `run_dir`, a private
    scratch directory, so the merged file's own directory cannot be theirs: the README asks
    for absolute (or `~/`) paths there.
    """
    ours = ansible_dir / "ansible.cfg"
    theirs = operator_ansible_cfg(ansible_dir, environ)
    if theirs is None:
        return ours
    merged = _read(ours)
    # Ours says `roles_path = ./roles`, relative to its own directory; the merged copy lives elsewhere.
    if merged.has_option("defaults", "roles_path"):
        merged.set("defaults", "roles_path", str(ansible_dir / "roles"))
    overrides = _read(theirs)
    for section in overrides.sections():
        if not merged.has_section(section):
            merged.add_section(section)
        for key, value in overrides.items(section, raw=True):
            merged.set(section, key, value)
    target = run_dir / "ansible.cfg"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(f"# ours ({ours}) with {theirs} on top, for one coordinator run\n")
        merged.write(handle)
    return target
