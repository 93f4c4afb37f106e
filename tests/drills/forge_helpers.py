"""What the forge and audit drills share: reading what the operator sees through the CLI.

Everything here goes through the coordinator's own commands (`audit show --json`, `audit
verify`) or the stand-in's admin endpoints; nothing reads coordinator internals.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.sandbox.coordinator_config import FORGE_URL
from tests.integration.conftest import ReleaseWorld


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    """The `error: …` lines the CLI printed: a failure must produce exactly one."""
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


def the_error(result: subprocess.CompletedProcess) -> str:
    """The one error line, without its `error: ` prefix (fails if there is not exactly one)."""
    lines = error_lines(result)
    assert len(lines) == 1, f"expected one error line, got {lines!r}\n{result.stdout}{result.stderr}"
    return lines[0].removeprefix("error: ")


def audit_records(rw: ReleaseWorld) -> list[dict[str, Any]]:
    """The trail as `coordinator audit show --json` prints it."""
    shown = rw.coordinator("audit", "show", "--json", "--limit", "1000")
    assert shown.returncode == 0, shown.stderr
    records: list[dict[str, Any]] = json.loads(shown.stdout)
    return records


def audit_events(rw: ReleaseWorld) -> list[str]:
    return [record["event"] for record in audit_records(rw)]


def audit_file(rw: ReleaseWorld) -> Path:
    return rw.state_dir / "audit.jsonl"


def configure_standin(rw: ReleaseWorld, **settings: Any) -> dict[str, Any]:
    """Set the stand-in forge's failure-injection knobs (POST /_standin/config)."""
    response = rw.forge.post(f"{FORGE_URL}/_standin/config", json=settings)
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


def standin_config(rw: ReleaseWorld) -> dict[str, Any]:
    config: dict[str, Any] = rw.forge.get(f"{FORGE_URL}/_standin/config").json()
    return config


def forge_section(rw: ReleaseWorld, **changes: Any) -> dict[str, Any]:
    """The sandbox config's `forge:` section with some keys changed (for rewrite_config)."""
    return {"url": FORGE_URL, "repo": "acme/sample", "token_file": str(rw.world_dir / "forge-token"), **changes}


def git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()


def deploy_locks_free(rw: ReleaseWorld) -> bool:
    """Every host of both environments reports its deploy lock free (`lock status --json`)."""
    for environment in ("staging", "production"):
        shown = rw.coordinator("lock", "status", environment, "--json")
        assert shown.returncode == 0, shown.stderr
        if any(info.get("held") for info in json.loads(shown.stdout).values()):
            return False
    return True
