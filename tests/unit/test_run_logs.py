"""Run logs: private, redacted, one folder per run, pruned by age and count."""

from __future__ import annotations

import errno
import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from coordinator.run_logs import logs_root, open_run_log, prune, runs_for, secrets_to_redact


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_run_keeps_stdout_and_every_event_in_private_files(tmp_path: Path):
    log = open_run_log(tmp_path, "shop-1.0.0-staging-deploy", "deploy.yml", [])
    log.record({"event": "runner_on_failed", "stdout": "fatal: [app1]: FAILED! => {\"msg\": \"boom\"}",
                "event_data": {"host": "app1"}})
    log.record({"event": "playbook_on_stats", "stdout": "", "event_data": {}})
    log.close()
    assert log.folder.parent == logs_root(tmp_path) / "shop-1.0.0-staging-deploy"
    assert log.folder.name.endswith("-deploy")
    assert "FAILED!" in (log.folder / "stdout.txt").read_text()
    events = [json.loads(line) for line in (log.folder / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["runner_on_failed", "playbook_on_stats"]
    for folder in (logs_root(tmp_path), log.folder.parent, log.folder):
        assert mode(folder) == 0o700
    for name in ("stdout.txt", "events.jsonl"):
        assert mode(log.folder / name) == 0o600


def test_secret_values_never_reach_the_files(tmp_path: Path):
    secret = "canary-9f8e7d6c5b4a"
    secrets = secrets_to_redact({"SAMPLE_API_SECRET": secret, "PATH": "/usr/bin"}, {"docker_release_tag": "v1"})
    assert secrets == [secret]
    log = open_run_log(tmp_path, "ident", "verify.yml", secrets)
    log.record({"event": "runner_on_ok", "stdout": f"ok: env {secret}", "event_data": {"res": {"x": secret}}})
    log.note(f"ended with {secret}")
    log.close()
    for path in log.folder.iterdir():
        text = path.read_text()
        assert secret not in text and "***" in text


def test_short_or_plain_values_are_not_mistaken_for_secrets():
    assert secrets_to_redact({"TOKEN_TTL": "60", "HOME": "/root", "PASSWORD": "hunter2"}) == ["hunter2"]


def test_old_runs_and_runs_beyond_the_count_are_pruned(tmp_path: Path):
    root = logs_root(tmp_path)
    folders = [open_run_log(tmp_path, f"shop-1.0.{n}-staging-deploy", "deploy.yml", [],
                            now=datetime(2026, 1, 1, 0, 0, n, tzinfo=UTC)).folder for n in range(5)]
    for age_days, folder in zip((40, 3, 2, 1, 0), folders, strict=True):
        stamp = 1_800_000_000 - age_days * 86400
        os.utime(folder, (stamp, stamp))
    removed = prune(root, keep_days=30, keep_runs=3, now=1_800_000_000)
    assert set(removed) == {folders[0], folders[1]}
    assert [f.exists() for f in folders] == [False, False, True, True, True]
    assert not (root / "shop-1.0.0-staging-deploy").exists(), "an emptied release folder goes too"


def test_runs_for_finds_a_release_s_runs_and_not_a_prerelease_s(tmp_path: Path):
    mine = open_run_log(tmp_path, "shop-1.0.0-staging-deploy", "deploy.yml", []).folder
    open_run_log(tmp_path, "shop-1.0.0-rc.1-staging-deploy", "deploy.yml", [])
    open_run_log(tmp_path, "manual-rollback-production", "rollback.yml", [])
    assert runs_for(tmp_path, "shop-1.0.0", ["staging", "production"]) == [mine]


def test_a_log_that_cannot_be_written_is_cut_and_never_stops_the_run(tmp_path: Path) -> None:
    """A full state dir (here /dev/full) must not stop the playbook the log records: a rollback still runs."""
    log = open_run_log(tmp_path, "sample-1.1.0-production-rollback", "rollback.yml", [])
    log._stdout.close()
    log._stdout = open("/dev/full", "w", encoding="utf-8")  # every flush fails with ENOSPC
    for n in range(2000):  # more than one buffer's worth, so a write itself meets the full disk
        log.record({"stdout": f"line {n} " + "x" * 64, "event": "runner_on_ok"})
    log.note("ansible-runner ended successful (rc 0)")
    log.close()
    assert log.failure is not None and log.failure.errno == errno.ENOSPC


def test_a_state_dir_where_no_log_folder_can_be_made_is_an_oserror_the_runner_can_skip(tmp_path: Path) -> None:
    (tmp_path / "logs").write_text("not a folder")
    with pytest.raises(OSError):
        open_run_log(tmp_path, "sample-1.1.0-production-rollback", "rollback.yml", [])
