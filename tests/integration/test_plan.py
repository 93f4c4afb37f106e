"""`plan` and `release --dry-run` look at everything and change nothing."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.sandbox.docker_engine import world_label

from tests.integration.conftest import ReleaseWorld

pytestmark = pytest.mark.world


def snapshot(rw: ReleaseWorld) -> dict:
    """Everything a release could change: refs, containers, forge state, files, host records."""
    refs = subprocess.run(["git", "-C", str(rw.checkout), "ls-remote", "origin"], capture_output=True, text=True,
                          check=True).stdout
    # Only this world's containers: anything else on the engine may come and go meanwhile.
    containers = subprocess.run(["docker", "ps", "-a", "--filter", f"label={world_label(rw.world_dir)}",
                                 "--format", "{{.Names}} {{.Image}} {{.Status}}"],
                                capture_output=True, text=True, check=True).stdout
    forge = rw.forge.get(f"{rw.forge_url}/_standin/state").json()
    files = sorted(str(p.relative_to(rw.state_dir)) for p in rw.state_dir.rglob("*")) if rw.state_dir.exists() else []
    return {"refs": refs, "containers": "\n".join(sorted(line.split(" Up ")[0] for line in containers.splitlines())),
            "forge": json.dumps(forge, sort_keys=True), "files": files}


def test_plan_and_dry_run_change_nothing(release_world: ReleaseWorld):
    rw = release_world
    before = snapshot(rw)
    plan = rw.coordinator("plan", "1.0.0", "--json")
    assert plan.returncode == 0, plan.stderr
    data = json.loads(plan.stdout)
    assert {check["name"] for check in data["checks"]} >= {"version file", "changelog", "ci status", "release blockers"}
    assert [env["name"] for env in data["environments"]] == ["staging", "production"]
    assert data["environments"][1]["hosts"][0]["host"] == "prod1"
    assert data["environments"][1]["batches"] == [1]
    dry = rw.coordinator("release", "1.0.0", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "nothing will be changed" in dry.stdout
    assert "deploy.yml batches: 1 (a canary, then a quarter of the hosts rounded up)" in dry.stdout
    assert snapshot(rw) == before
