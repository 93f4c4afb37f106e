"""The demo: release 1.0.0 and then 1.1.0 of the sample service through staging and production.

Everything is real except the forge: Docker, the registry, the SSH "production host", git
and the coordinator's own CLI. The gate is passed the way a team would in CI: `release`
stops at the gate (exit 4), a second operator runs `approve`, then `resume` promotes.

`--team` shows team mode instead (tests/sandbox/team_demo.py): a shared PostgreSQL database and
approvers verified by their own forge tokens, each person on their own "machine".
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.sandbox.coordinator_config import PRODUCTION_URL, REPO_ROOT, write_sandbox_config
from tests.sandbox.forge_seed import create_milestone_with_issues, ensure_label, forge_client, wait_for_green
from tests.sandbox.receiver import Receiver

AWAITING_APPROVAL = 4


def coordinator(config: Path, *args: str, operator: str, expect: int, env: dict[str, str] | None = None) -> None:
    argv = [sys.executable, "-m", "coordinator", "-c", str(config), *args]
    print(f"\n$ coordinator {' '.join(args)}   (operator: {operator})", flush=True)
    env = {**os.environ, "COORDINATOR_OPERATOR": operator, **(env or {})}
    completed = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, check=False)
    if completed.returncode != expect:
        raise SystemExit(f"demo: `coordinator {' '.join(args)}` exited {completed.returncode}, expected {expect}")


def release_through_the_gate(config: Path, version: str) -> float:
    started = time.monotonic()
    coordinator(config, "release", version, operator="release-manager", expect=AWAITING_APPROVAL)
    coordinator(config, "approve", version, operator="ops-lead", expect=0)
    coordinator(config, "resume", version, operator="release-manager", expect=0)
    return time.monotonic() - started


def fresh_world(scratch: str) -> tuple[Path, Path, Path]:
    """Bring the world up and reset it; returns its dir, an emptied scratch dir in it, and the app checkout."""
    from tests.sandbox.world import reset, up

    world_dir = REPO_ROOT / ".sandbox"
    reset(up(world_dir))
    scratch_dir = world_dir / scratch
    shutil.rmtree(scratch_dir, ignore_errors=True)
    return world_dir, scratch_dir, world_dir / "work" / "sample"


def head_of(checkout: Path) -> str:
    return subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def main() -> None:
    if "--team" in sys.argv[1:]:
        from tests.sandbox.team_demo import team_demo

        team_demo()
        return
    from tests.sandbox import sample

    world_dir, state_dir, checkout = fresh_world("demo-state")
    with Receiver() as chat, forge_client(world_dir) as forge:
        config = write_sandbox_config(
            world_dir / "coordinator.yml", world_dir, state_dir,
            notify={"announce": [chat.url("json", "announce")], "escalate": [chat.url("json", "escalate")]},
        )
        ensure_label(forge)
        create_milestone_with_issues(forge, "1.0.0", ["Serve /health", "Serve /version"])
        create_milestone_with_issues(forge, "1.1.0", ["Faster start-up"])
        head = head_of(checkout)
        wait_for_green(forge, head)
        first = release_through_the_gate(config, "1.0.0")
        sample.bump(checkout, "1.1.0", "### Changed\n- Faster start-up.")
        head = head_of(checkout)
        wait_for_green(forge, head)
        second = release_through_the_gate(config, "1.1.0")
        coordinator(config, "status", operator="release-manager", expect=0)
        coordinator(config, "audit", "verify", operator="release-manager", expect=0)
        served = httpx.get(f"{PRODUCTION_URL}/version", timeout=5).text.strip()
        print(f"\ndemo: production serves {served}; 1.0.0 took {first:.1f}s, 1.1.0 took {second:.1f}s; "
              f"{len(chat.messages)} chat message(s) received; config in {config}")
        if served != "1.1.0":
            raise SystemExit(f"demo: production serves {served!r}, expected 1.1.0")


if __name__ == "__main__":
    main()
