"""Zero hosts is an error: an inventory must exist and name hosts in the group a play targets.

Ansible treats an inventory path that does not exist, or a group with no hosts, as a
warning and runs the play on nobody, successfully. For a release tool that is the worst
answer: `rollback` reported "rolled back on 0 host(s)" and audited it. So the path is
checked before a run and the hosts the run processed after it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from coordinator.errors import NoHosts

DEFAULT_GROUP = "app"


def target_group(playbook: str, extravars: dict[str, Any]) -> str:
    """The host pattern a playbook runs on: its `<name>_hosts` variable, else the `app` group."""
    value = extravars.get(f"{Path(playbook).stem}_hosts")
    return value if isinstance(value, str) and value else DEFAULT_GROUP


def require_inventory(inventory: Path, group: str) -> None:
    """Refuse an inventory path that does not exist, before Ansible quietly runs on nobody."""
    if not inventory.exists():
        raise NoHosts(f"inventory {inventory} does not exist, so group {group!r} has no hosts: "
                      "fix the environment's `inventory` path in the config (`coordinator config check` lists them)")


def require_hosts(inventory: Path, group: str, processed: set[str]) -> None:
    """Refuse a run that matched no host: the play changed nothing and proved nothing."""
    if not processed:
        raise NoHosts(f"inventory {inventory} has no hosts in group {group!r}: add the environment's hosts "
                      f"to {group!r} there (or point the environment's `inventory` at the right one)")
