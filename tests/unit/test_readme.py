"""The README's Commands table names every command the CLI has."""

from __future__ import annotations

import re

import click

from coordinator.cli import cli
from coordinator.config import REPO_ROOT


def _commands(group: click.Group, prefix: str = "coordinator") -> list[str]:
    found = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.extend(_commands(command, f"{prefix} {name}"))
        else:
            found.append(f"{prefix} {name}")
    return found


def _documented(command: str, rows: list[str]) -> bool:
    """`coordinator audit verify` counts when a row starts with `coordinator audit` and names `audit verify`."""
    group, *sub = command.split()[1:]
    return any(f"`coordinator {group}" in row and (not sub or re.search(rf"`(coordinator )?({group} )?{sub[0]}\b", row))
               for row in rows)


def test_every_command_is_in_the_readme_commands_table():
    readme = (REPO_ROOT / "README.md").read_text()
    table = readme.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `coordinator ")]
    missing = [command for command in _commands(cli) if not _documented(command, rows)]
    assert not missing, f"README Commands table lacks: {missing}"
    assert any("`coordinator --version`" in row for row in rows)
