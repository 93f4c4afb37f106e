"""Fixtures and helpers for the failure drills, shared by every drill module.

The world fixtures are the integration tests' own (re-exported here); the helpers read what an
operator would look at after a failure: the chat escalations, `coordinator lock status --json`,
`coordinator audit show --json` and `docker inspect`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from coordinator.errors import ExitCode
from tests.sandbox.coordinator_config import REPO_ROOT, sandbox_config
from tests.sandbox.forge_seed import wait_for_green
from tests.integration.conftest import ReleaseWorld, release_world, running_digest, world  # noqa: F401 (fixtures)

SANDBOX_RECORDS = Path("/var/lib/coordinator")
HEALTH_TIMEOUT_S = 8.0  # short: a broken /health waits the whole deadline


def configure(rw: ReleaseWorld, **environments: dict[str, Any]) -> None:
    """Rewrite the config: short health deadlines, `environments` merged over the sandbox's own."""
    merged = sandbox_config(rw.world_dir, rw.state_dir)["environments"]
    for name in merged:
        merged[name] = {**merged[name], "health_timeout_s": HEALTH_TIMEOUT_S, **environments.get(name, {})}
    rw.rewrite_config(environments=merged,
                      notify={"announce": [rw.chat.url("json", "announce")], "escalate": [rw.chat.url("json", "escalate")]})


def empty_staging(tmp_path: Path) -> dict[str, Any]:
    """A staging with no hosts and a smoke test that passes: for failures only production shows."""
    empty = tmp_path / "inventory-empty"
    empty.mkdir(exist_ok=True)
    (empty / "hosts.yml").write_text("all:\n  hosts: {}\n")
    return {"inventory": str(empty), "smoke_command": ["true"], "allow_no_hosts": True}


def inventory_copy(tmp_path: Path, environment: str, **host_vars: Any) -> dict[str, Any]:
    """The sandbox inventory of `environment` copied into tmp_path with `host_vars` set on every host.

    Relative paths (`{{ inventory_dir }}/../..`) are made absolute, so the copy reaches the same
    sshd with the same key and labels its containers as the world's.
    """
    source = REPO_ROOT / "inventory" / f"sandbox-{environment}"
    target = tmp_path / f"inventory-{environment}"
    shutil.copytree(source / "group_vars", target / "group_vars", dirs_exist_ok=True)
    # The world's container label is computed from the inventory's place: keep it the world's,
    # so `sandbox reset` removes what a drill deploys through the copy.
    for group_vars in (target / "group_vars").glob("*.yml"):
        group_vars.write_text(group_vars.read_text().replace("inventory_dir ~ '/../../.sandbox'",
                                                             f"'{REPO_ROOT}/.sandbox'"))
    hosts = yaml.safe_load((source / "hosts.yml").read_text().replace("{{ inventory_dir }}/../..", str(REPO_ROOT)))
    for entry in hosts["app"]["hosts"].values():
        entry.update(host_vars)
    (target / "hosts.yml").write_text(yaml.safe_dump(hosts, sort_keys=False))
    return {"inventory": str(target)}


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed again)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ssh_host_vars(port: int) -> dict[str, Any]:
    """Host vars that make a host reached over SSH at 127.0.0.1:`port` like the sandbox's prod1."""
    ssh = REPO_ROOT / ".sandbox" / "ssh"
    return {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": port, "ansible_user": "root",
            "ansible_ssh_private_key_file": str(ssh / "client_key"),
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={ssh / 'known_hosts'} -o StrictHostKeyChecking=yes "
                                       f"-o IdentitiesOnly=yes -o ConnectTimeout=5"}


def one_line_error(completed: subprocess.CompletedProcess) -> str:
    """The operator's one-line error: the `error: ...` line the CLI ends with (exactly one)."""
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, completed.stderr
    return errors[0]


def escalations(rw: ReleaseWorld) -> list[str]:
    """Every escalation the chat sink received, title and body as one text each."""
    texts = []
    for message in rw.chat.messages:
        if message["path"] != "/escalate":
            continue
        body = message["body"]
        texts.append(f"{body.get('title', '')}\n{body.get('message', body.get('body', ''))}" if isinstance(body, dict)
                     else str(body))
    return texts


def lock_status(rw: ReleaseWorld, environment: str) -> dict[str, dict[str, Any]]:
    completed = rw.coordinator("lock", "status", environment, "--json")
    assert completed.returncode == ExitCode.OK, completed.stdout + completed.stderr
    found: dict[str, dict[str, Any]] = json.loads(completed.stdout)
    return found


def audit_events(rw: ReleaseWorld) -> list[dict[str, Any]]:
    completed = rw.coordinator("audit", "show", "--json", "--limit", "500")
    assert completed.returncode == ExitCode.OK, completed.stderr
    events: list[dict[str, Any]] = json.loads(completed.stdout)
    return events


def container_exists(name: str) -> bool:
    return subprocess.run(["docker", "container", "inspect", name], capture_output=True, check=False).returncode == 0


def host_record(container: str) -> dict[str, Any]:
    """The release record the deploy keeps on the host for `container`."""
    record: dict[str, Any] = json.loads((SANDBOX_RECORDS / container / "release.json").read_text())
    return record


def plant_lock(container: str, *, owner: str, expires_epoch: float, lock_id: str = "drill-lock-1") -> Path:
    """A lock on the host as another operator's run would leave it (roles/deploy_lock's layout)."""
    import datetime as dt

    def iso(epoch: float) -> str:
        return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    path = SANDBOX_RECORDS / "locks" / f"{container}.lock"
    path.mkdir(parents=True, mode=0o700)
    (path / "info.json").write_text(json.dumps({
        "owner": owner, "reason": "hotfix by hand", "version": "0.9.9", "lock_id": lock_id, "host": "drill",
        "acquired_at": iso(expires_epoch - 1800), "expires_at": iso(expires_epoch), "expires_epoch": expires_epoch}))
    return path


def release_to_production(rw: ReleaseWorld, version: str) -> None:
    """release, approve, resume: `version` runs in staging and production."""
    first = rw.coordinator("release", version)
    assert first.returncode == ExitCode.AWAITING_APPROVAL, first.stdout + first.stderr
    assert rw.coordinator("approve", version, operator="ops-lead").returncode == ExitCode.OK
    resumed = rw.coordinator("resume")
    assert resumed.returncode == ExitCode.OK, resumed.stdout + resumed.stderr


def push_variant(rw: ReleaseWorld, variant: str, version: str) -> None:
    """Make the app `variant` (tests/sandbox/sample.py), bump it to `version`, push, wait for CI."""
    from tests.sandbox import sample

    sample.make_variant(rw.checkout, variant)
    sample.bump(rw.checkout, version, f"### Changed\n- Drill: {variant}.")
    wait_for_green(rw.forge, rw.head())


def to_production_gate(rw: ReleaseWorld, version: str) -> None:
    """release and approve `version`; the next `resume` promotes it."""
    first = rw.coordinator("release", version)
    assert first.returncode == ExitCode.AWAITING_APPROVAL, first.stdout + first.stderr
    assert rw.coordinator("approve", version, operator="ops-lead").returncode == ExitCode.OK


def variant_at_the_gate(rw: ReleaseWorld, tmp_path: Path, variant: str, **production: object) -> None:
    """1.0.0 everywhere, then 1.1.0 (`variant`) approved past a staging that cannot catch it:
    the next `resume` promotes it to production."""
    configure(rw)
    release_to_production(rw, "1.0.0")
    configure(rw, staging=empty_staging(tmp_path), production=dict(production))
    push_variant(rw, variant, "1.1.0")
    to_production_gate(rw, "1.1.0")


class PartSwitch:
    """Stops one of the world's processes on demand; its fixture starts it again after the test."""

    def __init__(self, world: Any, part: str) -> None:
        self.world = world
        self.part = part
        self.stopped = False

    def stop(self, *, cut_connections: bool = False) -> None:
        """Stop it; with `cut_connections`, also kill the processes serving open connections (an
        sshd's per-connection children outlive the listener), as a dropped network would end them."""
        from tests.sandbox.procs import stop

        proc = self.world.started.get(self.part)
        assert proc is not None, f"the world's {self.part} was not started by it"
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True, timeout=30,
                                  check=False).stdout.split() if cut_connections else []
        self.stopped = True
        stop(proc)
        for pid in children:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass

    def start(self) -> None:
        from tests.sandbox.world import up

        if self.stopped:
            self.world.started.update(up(self.world.dir).started)  # the session's world sees the new process
            self.stopped = False


RegistrySwitch = PartSwitch


def _switch(world: Any, part: str) -> Iterator[PartSwitch]:
    switch = PartSwitch(world, part)
    try:
        yield switch
    finally:
        switch.start()


@pytest.fixture
def registry_switch(world: Any) -> Iterator[PartSwitch]:
    from tests.sandbox.world import Part

    yield from _switch(world, Part.REGISTRY)


@pytest.fixture
def sshd_switch(world: Any) -> Iterator[PartSwitch]:
    from tests.sandbox.world import Part

    yield from _switch(world, Part.SSHD)
