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


def _stored_release(config_path: Path, **extra_fields) -> Path:
    from coordinator.release import Release

    release = Release(id="shop-1.0.0", project="shop", version="1.0.0", tag="v1.0.0", operator="alice")
    path = config_path.parent / "state" / "releases" / "shop-1.0.0.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**release.model_dump(mode="json"), **extra_fields}))
    return path


def _run_cli(config_path: Path, *args: str):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "coordinator", "-c", str(config_path), *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_a_record_from_a_newer_coordinator_is_refused_naming_its_fields_and_the_fix(config_path):
    path = _stored_release(config_path, rollout_plan=[1, 2], signed_by="alice")
    before = path.read_text()

    result = _run_cli(config_path, "status")

    assert result.returncode == ExitCode.STATE_BACKEND
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in result.stderr
    assert str(path) in message and "(rollout_plan, signed_by)" in message
    assert "newer coordinator wrote it; upgrade coordinator on this machine" in message
    assert path.read_text() == before  # refused, never rewritten without the fields


def test_a_damaged_record_names_the_field_at_fault(config_path):
    path = _stored_release(config_path, status="half-done")

    result = _run_cli(config_path, "status")

    assert result.returncode == ExitCode.STATE_BACKEND
    assert "Traceback" not in result.stderr
    assert f"release record {path} is damaged: status:" in result.stderr
