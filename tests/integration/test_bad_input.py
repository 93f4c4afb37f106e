"""Bad input: one line naming the problem and the fix, a distinct exit code, nothing written."""

from __future__ import annotations

import socket

import pytest

from coordinator.errors import ExitCode
from tests.integration.conftest import ReleaseWorld

pytestmark = pytest.mark.world


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_forge_is_a_resumable_one_line_error(release_world: ReleaseWorld):
    rw = release_world
    rw.rewrite_config(forge={"url": f"http://127.0.0.1:{closed_port()}", "repo": "acme/sample",
                             "token_file": str(rw.world_dir / "forge-token"), "timeout_s": 2})
    result = rw.coordinator("release", "1.0.0")
    assert result.returncode == ExitCode.FORGE_UNAVAILABLE, result.stdout + result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: forge unreachable")


def test_missing_token_names_the_variable_and_writes_nothing(release_world: ReleaseWorld, monkeypatch):
    rw = release_world
    monkeypatch.delenv("COORDINATOR_FORGE_TOKEN", raising=False)
    rw.rewrite_config(forge={"url": "http://127.0.0.1:45300", "repo": "acme/sample"})
    result = rw.coordinator("release", "1.0.0")
    assert result.returncode == ExitCode.USAGE
    assert result.stderr.strip() == ("error: no forge token: export COORDINATOR_FORGE_TOKEN=<token> "
                                     "(or set forge.token_file to a 0600 file)")
    assert not rw.state_dir.exists()


def test_unknown_config_key_is_named(release_world: ReleaseWorld):
    rw = release_world
    rw.config.write_text(rw.config.read_text() + "approval:\n  required: 2\n")
    result = rw.coordinator("release", "1.0.0")
    assert result.returncode == ExitCode.USAGE
    assert "approval: unknown key" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_changelog_fails_validation_and_names_the_file(release_world: ReleaseWorld):
    import subprocess

    rw = release_world
    subprocess.run(["git", "-C", str(rw.checkout), "rm", "-q", "CHANGELOG.md"], check=True)
    subprocess.run(["git", "-C", str(rw.checkout), "commit", "-qm", "drop changelog"], check=True)
    subprocess.run(["git", "-C", str(rw.checkout), "push", "-q", "origin", "main"], check=True)
    result = rw.coordinator("release", "1.0.0")
    assert result.returncode == ExitCode.CHECK_FAILED
    assert "CHANGELOG.md not found" in result.stderr


def test_token_is_never_printed_even_on_errors(release_world: ReleaseWorld):
    rw = release_world
    token = (rw.world_dir / "forge-token").read_text().strip()
    for args in (["release", "1.0.0"], ["config", "check"], ["status"], ["plan", "1.0.0"]):
        result = rw.coordinator(*args)
        assert token not in result.stdout + result.stderr, args
