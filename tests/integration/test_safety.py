"""Safety core on the real world: secrets never leak, locks are honoured, approvals bind."""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from coordinator.errors import ExitCode
from coordinator.runner_scratch import PREFIX, scratch_root
from tests.sandbox.coordinator_config import IMAGE, REPO_ROOT
from tests.sandbox.forge_seed import REPO_API, register_person
from tests.integration.conftest import ReleaseWorld
from tests.integration.strategies import StrategyWatch, ansible_strategy  # noqa: F401 (fixture)

pytestmark = pytest.mark.world

PRODUCTION_INVENTORY = REPO_ROOT / "inventory" / "sandbox-production"
HOST_STATE = Path("/var/lib/coordinator/sample-prod1")


def ansible_playbook(*args: str) -> subprocess.CompletedProcess:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg")}
    return subprocess.run([str(bin_dir / "ansible-playbook"), "-i", str(PRODUCTION_INVENTORY), *args],
                          capture_output=True, text=True, cwd=REPO_ROOT, env=env, check=False)


def files_under(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def test_token_and_env_secret_never_leave_their_places(release_world: ReleaseWorld,
                                                      ansible_strategy: StrategyWatch):  # noqa: F811 (fixture)
    rw = release_world
    runner_dirs_before = runner_dirs()
    canary = f"canary-env-{secrets.token_hex(8)}"
    registry_password = f"canary-registry-{secrets.token_hex(8)}"  # handed to the hosts' pull as well
    token = (rw.world_dir / "forge-token").read_text().strip()
    env = {"SAMPLE_API_SECRET": canary, "COORDINATOR_REGISTRY_PASSWORD": registry_password}
    rw.rewrite_config(image={"name": IMAGE, "credentials": {"username": "robot"}},
                      notify={"announce": [rw.chat.url("json", "announce")], "escalate": [rw.chat.url("json", "escalate")]})
    assert rw.coordinator("release", "1.0.0", env=env).returncode == ExitCode.AWAITING_APPROVAL
    assert rw.coordinator("approve", "1.0.0", operator="ops-lead", env=env).returncode == 0
    final = rw.coordinator("resume", env=env)
    assert final.returncode == 0, final.stdout + final.stderr

    env_file = HOST_STATE / "app.env"
    assert canary in env_file.read_text(), "the secret must reach the host, or this test proves nothing"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    leaks = []
    for output in rw.outputs:
        for secret in (canary, token, registry_password):
            if secret in output:
                leaks.append("command output")
    written = files_under(rw.state_dir) + [HOST_STATE / "release.json"]
    new_runner_dirs = runner_dirs() - runner_dirs_before
    for runner_dir in new_runner_dirs:
        written += files_under(runner_dir)
    for path in written:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for secret in (canary, token, registry_password):
            if secret in text and path != env_file:
                leaks.append(str(path))
    body = rw.forge.get(f"{REPO_API}/releases/tags/v1.0.0").json()["body"]
    assert canary not in body and token not in body and registry_password not in body
    assert leaks == []
    assert new_runner_dirs == set()  # every run's private data dir is removed when the run ends
    ansible_strategy.assert_ran()


def runner_dirs() -> set[Path]:
    """ansible-runner's private data dirs on this machine: the run dirs under this user's scratch
    root (what the coordinator subprocesses use: same user, same environment) and the fallback
    dirs a run makes when that root cannot be trusted."""
    root = scratch_root()
    found = set(root.glob(f"{PREFIX}*")) if root is not None else set()
    return found | set(Path(tempfile.gettempdir()).glob("coordinator-runner-*")) - ({root} if root else set())


def test_a_lock_held_by_someone_else_stops_promotion_until_released(release_world: ReleaseWorld):
    rw = release_world
    held = ansible_playbook("playbooks/lock.yml", "-e", "deploy_lock_action=acquire", "-e", "deploy_lock_owner=alice",
                            "-e", "deploy_lock_reason=hotfix", "-e", "deploy_lock_id=alicelock1234567", "-e", "deploy_lock_ttl=600")
    assert held.returncode == 0, held.stdout + held.stderr
    assert rw.coordinator("release", "1.0.0").returncode == ExitCode.AWAITING_APPROVAL
    assert rw.coordinator("approve", "1.0.0", operator="ops-lead").returncode == 0
    blocked = rw.coordinator("resume")
    assert blocked.returncode == ExitCode.LOCKED, blocked.stdout + blocked.stderr
    assert "alice" in blocked.stderr
    shown = rw.coordinator("lock", "status", "production")
    assert "held by alice" in shown.stdout
    freed = rw.coordinator("lock", "release", "production", "--lock-id", "alicelock1234567")
    assert freed.returncode == 0, freed.stderr
    done = rw.coordinator("resume")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "free" in rw.coordinator("lock", "status", "production").stdout


def test_an_expired_lock_is_taken_over_and_audited(release_world: ReleaseWorld):
    import time

    rw = release_world
    held = ansible_playbook("playbooks/lock.yml", "-e", "deploy_lock_action=acquire", "-e", "deploy_lock_owner=bob",
                            "-e", "deploy_lock_reason=cancelled job", "-e", "deploy_lock_ttl=1")
    assert held.returncode == 0, held.stdout + held.stderr
    time.sleep(2)
    assert rw.coordinator("release", "1.0.0").returncode == ExitCode.AWAITING_APPROVAL
    assert rw.coordinator("approve", "1.0.0", operator="ops-lead").returncode == 0
    assert rw.coordinator("resume").returncode == 0
    events = json.loads(rw.coordinator("audit", "show", "--json").stdout)
    assert any(e["event"] == "lock.taken_over" and e["data"]["previous_owner"] == "bob" for e in events)


def test_an_approval_for_another_digest_does_not_promote(release_world: ReleaseWorld):
    rw = release_world
    assert rw.coordinator("release", "1.0.0").returncode == ExitCode.AWAITING_APPROVAL
    assert rw.coordinator("approve", "1.0.0", operator="ops-lead").returncode == 0
    path = rw.state_dir / "releases" / "sample-1.0.0.json"
    record = json.loads(path.read_text())
    record["build"]["digest"] = "sha256:" + "0" * 64  # the artifact changed after the approval
    path.write_text(json.dumps(record))
    result = rw.coordinator("resume")
    assert result.returncode == ExitCode.AWAITING_APPROVAL
    inspect = subprocess.run(["docker", "inspect", "sample-prod1"], capture_output=True, check=False)
    assert inspect.returncode != 0, "production must not have been deployed"


def test_self_approval_can_be_forbidden(release_world: ReleaseWorld):
    rw = release_world
    notify = {"announce": [rw.chat.url("json", "announce")], "escalate": [rw.chat.url("json", "escalate")]}
    # Self-approval is judged on verified identities: the forge token's owner, not --operator.
    tokens = {login: register_person(login) for login in ("alice", "bob")}
    as_alice, as_bob = ({"COORDINATOR_FORGE_TOKEN": tokens[login]} for login in ("alice", "bob"))
    rw.rewrite_config(approvals={"required": 1, "forbid_self_approval": True, "identity": "forge"}, notify=notify)
    assert rw.coordinator("release", "1.0.0", env=as_alice).returncode == ExitCode.AWAITING_APPROVAL
    refused = rw.coordinator("approve", "1.0.0", operator="bob", env=as_alice)
    assert refused.returncode == ExitCode.IDENTITY_REFUSED
    assert "alice (forge token owner) started this release and self-approval is forbidden" in refused.stderr
    assert rw.coordinator("approve", "1.0.0", operator="alice", env=as_bob).returncode == 0
