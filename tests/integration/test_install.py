"""Installed as users install it: a wheel in a fresh venv, run from outside the checkout.

`pip install .` has no checkout to find playbooks/, roles/ and ansible.cfg in, so the
wheel carries a copy (setup.py) and `ansible_dir` defaults to it. This builds the wheel,
installs it with the tested pins into a new venv, and releases the sample service with
that venv's `coordinator` from a directory that is not the checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from coordinator.errors import ExitCode
from sandbox.coordinator_config import REPO_ROOT, sandbox_config
from tests.integration.conftest import ReleaseWorld, running_digest

pytestmark = pytest.mark.world

PIP_TIMEOUT_S = 900


@pytest.fixture(scope="module")
def installed_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel built from this checkout (dependencies from the lock)."""
    scratch = tmp_path_factory.mktemp("wheel-install")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(scratch / "dist"),
                    str(REPO_ROOT)], check=True, capture_output=True, timeout=PIP_TIMEOUT_S)
    wheel = next((scratch / "dist").glob("coordinator-*.whl"))
    venv = scratch / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--constraint",
                    str(REPO_ROOT / "scripts" / "constraints.txt"), str(wheel)],
                   check=True, capture_output=True, timeout=PIP_TIMEOUT_S)
    return venv


def installed(venv: Path, workdir: Path, *args: str, operator: str = "release-manager") -> subprocess.CompletedProcess[str]:
    """Run the installed `coordinator` in `workdir`, with nothing of the checkout on the paths."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update({"COORDINATOR_OPERATOR": operator, "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"})
    return subprocess.run([str(venv / "bin" / "coordinator"), *args], cwd=workdir, env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=900, check=False)


def test_the_wheel_carries_the_playbooks_and_finds_them_without_a_checkout(installed_venv: Path, tmp_path: Path):
    found = subprocess.run([str(installed_venv / "bin" / "python"), "-c",
                            "from coordinator.config import default_ansible_dir; print(default_ansible_dir())"],
                           cwd=tmp_path, capture_output=True, text=True, check=True,
                           env={"PATH": os.environ.get("PATH", "")}).stdout.strip()
    ansible_dir = Path(found)
    assert ansible_dir.is_relative_to(installed_venv), found
    for needed in ("ansible.cfg", "playbooks/deploy.yml", "playbooks/preflight.yml",
                   "roles/docker_release/library/release_record.py", "roles/deploy_lock/meta/argument_specs.yml"):
        assert (ansible_dir / needed).is_file(), needed
    assert not list(ansible_dir.glob("roles/*/molecule")), "test scaffolding is not shipped"


def test_a_wheel_install_releases_the_sample_service(installed_venv: Path, release_world: ReleaseWorld, tmp_path: Path):
    rw = release_world
    workdir = tmp_path / "ops"
    workdir.mkdir()
    config = sandbox_config(rw.world_dir, workdir / "state")
    del config["ansible_dir"]  # the installed copy, as for any user
    (workdir / "coordinator.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    plan = installed(installed_venv, workdir, "plan", "1.0.0")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "ready to release" in plan.stdout

    first = installed(installed_venv, workdir, "release", "1.0.0")
    assert first.returncode == ExitCode.AWAITING_APPROVAL, first.stdout + first.stderr
    assert installed(installed_venv, workdir, "approve", "1.0.0", operator="ops-lead").returncode == 0
    resumed = installed(installed_venv, workdir, "resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr

    digest = yaml.safe_load((workdir / "state" / "releases" / "sample-1.0.0.json").read_text())["build"]["digest"]
    assert running_digest("sample-prod1") == digest
    assert installed(installed_venv, workdir, "audit", "verify").returncode == 0
