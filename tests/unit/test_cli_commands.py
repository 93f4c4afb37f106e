"""Read-only commands through click's CliRunner: tables, --json, exit codes, redaction."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from coordinator.audit import AuditEvent, AuditLog
from coordinator.cli import cli
from coordinator.errors import ExitCode


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    data = {
        "project": "shop",
        "app": {"path": "app"},
        "forge": {"url": "https://git.example.com", "repo": "acme/shop"},
        "image": {"name": "registry.example.com/acme/shop"},
        "environments": {
            "staging": {"inventory": "inventory/staging", "url": "https://staging.example.com"},
            "production": {"inventory": "inventory/production", "url": "https://shop.example.com"},
        },
        "notify": {"announce": ["slack://TokenA/TokenB/TokenC/#releases"], "escalate": ["json://pager.example.com/hook?key=abc"]},
        "state_dir": "state",
    }
    path = tmp_path / "coordinator.yml"
    path.write_text(yaml.safe_dump(data))
    for folder in ("app/.git", "inventory/staging", "inventory/production"):  # `config check` looks for them
        (tmp_path / folder).mkdir(parents=True)
    return path


def history(state_dir: Path) -> AuditLog:
    """Two verified production deploys, one failed and restored."""
    now = datetime.now(UTC)
    times = iter([now - timedelta(days=3), now - timedelta(days=2), now - timedelta(days=1, hours=1),
                  now - timedelta(days=1)])
    state_dir.mkdir(parents=True, exist_ok=True)
    log = AuditLog(state_dir / "audit.jsonl", clock=lambda: next(times))
    commit_time = (now - timedelta(days=4)).isoformat()
    log.append(AuditEvent.DEPLOY_VERIFIED, operator="alice", release_id="shop-1.0.0", version="1.0.0",
               environment="production", outcome="verified", data={"commit_time": commit_time})
    log.append(AuditEvent.DEPLOY_VERIFIED, operator="alice", release_id="shop-1.1.0", version="1.1.0",
               environment="production", outcome="verified", data={"commit_time": commit_time})
    log.append(AuditEvent.DEPLOY_FAILED, operator="alice", release_id="shop-1.2.0", version="1.2.0",
               environment="production", outcome="failed", data={"reason": "health"})
    log.append(AuditEvent.ROLLBACK_COMPLETED, operator="alice", release_id="shop-1.2.0", version="1.2.0",
               environment="production", outcome="rolled_back", data={})
    return log


def invoke(config_path: Path, *args: str):
    return CliRunner().invoke(cli, ["-c", str(config_path), *args], standalone_mode=False, catch_exceptions=True)


def test_status_with_no_releases_says_so(config_path):
    result = invoke(config_path, "status")
    assert result.exit_code == 0
    assert "no releases yet" in result.output


def test_audit_show_prints_a_table_and_json(config_path, tmp_path):
    history(tmp_path / "state")
    table = invoke(config_path, "audit", "show")
    assert "deploy.verified" in table.output and "SEQ" in table.output
    records = json.loads(invoke(config_path, "audit", "show", "--json").output)
    assert [r["seq"] for r in records] == [1, 2, 3, 4]


def test_audit_verify_names_the_first_tampered_record(config_path, tmp_path):
    log = history(tmp_path / "state")
    lines = log.path.read_text().splitlines()
    lines[1] = lines[1].replace('"alice"', '"mallory"')
    log.path.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(cli, ["-c", str(config_path), "audit", "verify"], standalone_mode=False)
    assert getattr(result.exception, "exit_code", None) == ExitCode.AUDIT_BROKEN
    assert "seq 2" in str(result.exception)


def test_metrics_from_the_audit_trail(config_path, tmp_path):
    history(tmp_path / "state")
    data = json.loads(invoke(config_path, "metrics", "--json").output)
    production = data["environments"]["production"]
    assert production["deployments"] == 2
    assert production["change_failure_rate"] == pytest.approx(1 / 3)
    assert "production" in invoke(config_path, "metrics").output


def test_config_check_redacts_notification_secrets(config_path):
    result = invoke(config_path, "config", "check")
    assert result.exit_code == 0
    assert "TokenA" not in result.output and "key=abc" not in result.output
    assert "slack://" in result.output
    assert "is valid" in result.output
