"""A coordinator config for the local world, used by the demo and the integration tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
FORGE_URL = "http://127.0.0.1:45300"
IMAGE = "127.0.0.1:45000/acme/sample"
STAGING_URL = "http://127.0.0.1:45080"
PRODUCTION_URL = "http://127.0.0.1:45081"


def sandbox_config(world_dir: Path, state_dir: Path, **overrides: Any) -> dict[str, Any]:
    """The config as data; `overrides` replace top-level sections (tests tweak them)."""
    config: dict[str, Any] = {
        "project": "sample",
        "app": {
            "path": str(world_dir / "work" / "sample"),
            "version_file": "VERSION",
            "changelog": "CHANGELOG.md",
            "test_command": ["sh", "tests/run.sh"],
            "uat_command": ["sh", "tests/uat.sh"],
            "command_timeout_s": 120,
        },
        "forge": {"url": FORGE_URL, "repo": "acme/sample", "token_file": str(world_dir / "forge-token")},
        "ci": {"provider": "gitea-actions", "timeout_s": 180, "poll_interval_s": 0.5},
        "image": {"name": IMAGE},
        "environments": {
            "staging": {"inventory": str(REPO_ROOT / "inventory" / "sandbox-staging"), "url": STAGING_URL,
                        "health_timeout_s": 60, "health_interval_s": 0.5},
            "production": {"inventory": str(REPO_ROOT / "inventory" / "sandbox-production"), "url": PRODUCTION_URL,
                           "health_timeout_s": 60, "health_interval_s": 0.5},
        },
        "state_dir": str(state_dir),
        "ansible_dir": str(REPO_ROOT),
    }
    config.update(overrides)
    return config


def write_sandbox_config(path: Path, world_dir: Path, state_dir: Path, **overrides: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(sandbox_config(world_dir, state_dir, **overrides), sort_keys=False), encoding="utf-8")
    return path
