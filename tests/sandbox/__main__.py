"""`python -m tests.sandbox up|down|status|reset [--dir DIR]`: manage the local world."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tests.sandbox.errors import SandboxError
from tests.sandbox.world import DEFAULT_DIR, World, down, reset, status, up

dir_option = click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
                          default=DEFAULT_DIR, show_default=True, help="World directory.")


def say(line: str) -> None:
    click.echo(f"sandbox: {line}")


@click.group()
def main() -> None:
    """The local world: docker, a registry, an SSH host, git remotes and a stand-in Gitea."""


@main.command("up")
@dir_option
def up_command(directory: Path) -> None:
    """Start (or reuse) every part and write DIR/world.json."""
    world = up(directory, report=say)
    say(f"world is up; facts in {world.json_file}")


@main.command("down")
@dir_option
def down_command(directory: Path) -> None:
    """Stop what this world started and remove the sandbox's containers."""
    down(directory, report=say)


@main.command("status")
@dir_option
def status_command(directory: Path) -> None:
    """Show which parts answer, and which of them this world started. Exit 1 if any is down."""
    lines = status(directory)
    for line in lines:
        if line.ours:
            owner = f"ours, pid {line.pid}" if line.pid else "ours"
        else:
            owner = "not ours" if line.up else "not running"
        click.echo(f"{line.name:9} {'up  ' if line.up else 'DOWN'}  {line.address}  ({owner})")
    if not all(line.up for line in lines):
        sys.exit(1)


@main.command("reset")
@dir_option
def reset_command(directory: Path) -> None:
    """Fresh app history, no sample containers or release records, stand-in state cleared."""
    reset(World.load(directory.resolve()), report=say)


def run() -> None:
    try:
        main(standalone_mode=True)
    except SandboxError as exc:
        click.echo(f"sandbox: error: {exc.message}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    run()
