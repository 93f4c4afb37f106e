"""Installed as users install it: a wheel in a fresh venv, run from outside the checkout.

`pip install .` has no checkout to find playbooks/, roles/ and ansible.cfg in, so the
wheel carries a copy (setup.py) and `ansible_dir` defaults to it. The wheel is built once
(scripts/wheel, from a clean copy) and installed once with the tested pins into a venv
outside the checkout; the tests then take a new team's first hour with that venv's
commands (`init`, `config check`, `--version`, the shipped playbooks' syntax), and the
README's install lines are run as written. pip's cache is used, so only a cold cache
downloads anything; every step is bounded.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
import yaml

from coordinator.errors import ExitCode
from tests.sandbox.coordinator_config import REPO_ROOT, sandbox_config
from tests.integration.conftest import ReleaseWorld, running_digest

pytestmark = pytest.mark.install

PIP_TIMEOUT_S = 900
SANDBOX_SSH_PORT = 45022  # the world's "production host" (README, Quick start)
SHIPPED_PLAYBOOKS = ("deploy.yml", "verify.yml", "rollback.yml", "lock.yml", "status.yml", "preflight.yml")
PINNED_CORE = re.search(r"^ansible-core==(\S+)", (REPO_ROOT / "scripts" / "constraints.txt").read_text(), re.M)[1]  # type: ignore[index]


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without anything that points into the checkout or its venv."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "VIRTUAL_ENV", "ANSIBLE_CONFIG", "COORDINATOR_CONFIG")}
    env["PATH"] = os.pathsep.join(part for part in env.get("PATH", "").split(os.pathsep)
                                  if not part.startswith(str(REPO_ROOT)))
    return {**env, **extra}


def checkout_litter() -> set[str]:
    return {path.name for path in REPO_ROOT.iterdir() if path.name == "build" or path.name == "dist"
            or (path.name.endswith(".egg-info") and path.name != "release_coordinator.egg-info")}


def copy_checkout(target: Path) -> None:
    """The files git knows in this checkout (tracked, and new ones not ignored), as a clone would have them."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                           capture_output=True, check=True, timeout=60).stdout.decode().split("\0")
    for name in filter(None, files):
        if (REPO_ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, target / name)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built once from a clean copy of this checkout (scripts/wheel)."""
    before = checkout_litter()
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([str(REPO_ROOT / "scripts" / "wheel"), str(dist)], check=True, capture_output=True,
                   timeout=PIP_TIMEOUT_S, env=clean_env(PYTHON=sys.executable))
    assert checkout_litter() == before, "building the wheel left build/ or *.egg-info in the checkout"
    return next(dist.glob("release_coordinator-*.whl"))


@pytest.fixture(scope="module")
def installed_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv outside the checkout with the wheel and the tested pins."""
    venv = tmp_path_factory.mktemp("wheel-install") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--constraint",
                    str(REPO_ROOT / "scripts" / "constraints.txt"), str(wheel)],
                   check=True, capture_output=True, timeout=PIP_TIMEOUT_S, env=clean_env())
    return venv


def installed(venv: Path, workdir: Path, *args: str, operator: str = "release-manager",
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed `coordinator` in `workdir`, with nothing of the checkout on the paths."""
    full_env = clean_env(COORDINATOR_OPERATOR=operator, **(env or {}))
    full_env["PATH"] = f"{venv / 'bin'}{os.pathsep}{full_env['PATH']}"
    return subprocess.run([str(venv / "bin" / "coordinator"), *args], cwd=workdir, env=full_env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=900, check=False)


def test_the_wheel_holds_the_package_and_its_ansible_content_only(wheel: Path):
    names = zipfile.ZipFile(wheel).namelist()
    dist_info = "-".join(wheel.name.split("-")[:2]) + ".dist-info"
    assert {name.split("/")[0] for name in names} == {"coordinator", dist_info}
    assert "coordinator/forge/testing.py" not in names, "test scaffolding is not shipped"
    assert not [name for name in names if "/molecule/" in name or "__pycache__" in name]
    for needed in ("coordinator/templates/init/coordinator.yml.j2", "coordinator/_ansible/ansible.cfg",
                   *(f"coordinator/_ansible/playbooks/{playbook}" for playbook in SHIPPED_PLAYBOOKS)):
        assert needed in names, needed
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    runtime = [req for req in requires if "extra ==" not in req]
    assert any(req.startswith("ansible-core") for req in runtime)
    assert not [req for req in runtime if re.match(r"(ansible|requests)\b(?!-)", req)]


def test_a_stale_build_dir_cannot_carry_a_deleted_module_into_the_wheel(tmp_path: Path):
    """A plain `pip wheel .` in a checkout reuses build/lib; setup.py empties it first."""
    source = tmp_path / "checkout"
    copy_checkout(source)
    stale = source / "build" / "lib" / "coordinator" / "deleted_module.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("raise SystemExit('shipped by accident')\n")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path / "dist"),
                    str(source)], check=True, capture_output=True, timeout=PIP_TIMEOUT_S, env=clean_env())
    names = zipfile.ZipFile(next((tmp_path / "dist").glob("release_coordinator-*.whl"))).namelist()
    assert "coordinator/cli.py" in names
    assert "coordinator/deleted_module.py" not in names


def test_the_wheel_carries_the_playbooks_and_finds_them_without_a_checkout(installed_venv: Path, tmp_path: Path):
    found = subprocess.run([str(installed_venv / "bin" / "python"), "-c",
                            "from coordinator.config import default_ansible_dir; print(default_ansible_dir())"],
                           cwd=tmp_path, capture_output=True, text=True, check=True, timeout=60,
                           env={"PATH": os.environ.get("PATH", "")}).stdout.strip()
    ansible_dir = Path(found)
    assert ansible_dir.is_relative_to(installed_venv), found
    for needed in ("ansible.cfg", "playbooks/deploy.yml", "playbooks/preflight.yml",
                   "roles/docker_release/library/release_record.py", "roles/deploy_lock/meta/argument_specs.yml"):
        assert (ansible_dir / needed).is_file(), needed
    assert not list(ansible_dir.glob("roles/*/molecule")), "test scaffolding is not shipped"


def app_checkout(path: Path) -> Path:
    """Where an operator runs `init` first: their app's git checkout (config check wants app.path to be one)."""
    path.mkdir()
    subprocess.run(["git", "init", "-q", str(path)], check=True, timeout=30)
    return path


def test_the_first_hour_init_config_check_version_and_playbook_syntax(installed_venv: Path, tmp_path: Path):
    """init → config check → --version, then the manual runbook's ansible-playbook on the shipped playbooks."""
    ops = app_checkout(tmp_path / "ops")
    init = installed(installed_venv, ops, "init", "--project", "shop", "--host", "production=deploy@app1.example.com:2222")
    assert init.returncode == 0, init.stderr
    again = installed(installed_venv, ops, "init")
    assert again.returncode == ExitCode.USAGE and "exists; nothing was written" in again.stderr

    check = installed(installed_venv, ops, "config", "check")
    assert check.returncode == 0, check.stderr
    assert "coordinator.yml is valid" in check.stdout

    version = installed(installed_venv, ops, "--version")
    assert version.returncode == 0, version.stderr
    lines = version.stdout.splitlines()
    assert f"ansible-core {PINNED_CORE}" in lines, version.stdout  # the tested pins were applied
    assert f"config: {ops / 'coordinator.yml'} (found)" in lines
    playbook_dir = Path(next(line for line in lines if line.startswith("playbooks: ")).removeprefix("playbooks: "))
    assert playbook_dir.is_relative_to(installed_venv)
    ansible_playbook = Path(next(line for line in lines if line.startswith("ansible-playbook: ")).split(": ", 1)[1])
    assert ansible_playbook.is_file()

    # The runbook: from the directory --version names, so the shipped ansible.cfg applies.
    for playbook in SHIPPED_PLAYBOOKS:
        syntax = subprocess.run([str(ansible_playbook), "-i", str(ops / "inventory" / "production"), "--syntax-check",
                                 f"playbooks/{playbook}"], cwd=playbook_dir.parent, capture_output=True, text=True,
                                env=clean_env(), timeout=300, check=False)
        assert syntax.returncode == 0, f"{playbook}: {syntax.stdout}{syntax.stderr}"


def test_a_failpoint_variable_does_nothing_in_an_installed_coordinator(installed_venv: Path, tmp_path: Path):
    probe = subprocess.run([str(installed_venv / "bin" / "python"), "-c",
                            "from coordinator import failpoints; failpoints.hit('before:validate'); print('alive')"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
                           env=clean_env(COORDINATOR_FAILPOINT="before:validate"))
    assert (probe.returncode, probe.stdout.strip()) == (0, "alive"), probe.stderr


def readme_install_lines() -> list[str]:
    """The command lines of the README's "Install" code block, as a reader copies them."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("\n## Install\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


README_GIT_URL = "https://git.example.com/acme/coordinator"


def test_the_readme_install_lines_work_as_written(tmp_path: Path):
    """pipx with the tested pins, pip into a venv, and from a git URL (the forge's URL swapped for a local clone)."""
    lines = readme_install_lines()
    assert [line.split()[0] for line in lines] == ["pipx", "python3", "~/.venvs/coordinator/bin/pip", "pip"], lines
    clone = tmp_path / "coordinator"
    copy_checkout(clone)
    git_env = clean_env(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t",
                        GIT_COMMITTER_EMAIL="t@example.com")
    for argv in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "release"],
                 ["git", "tag", "v0.1.0"]):
        subprocess.run(argv, cwd=clone, check=True, env=git_env, timeout=60, capture_output=True)
    home = tmp_path / "home"
    pip_venv = tmp_path / "any-venv"  # the venv a reader has activated for the plain `pip` line
    subprocess.run([sys.executable, "-m", "venv", str(pip_venv)], check=True, timeout=120)
    env = clean_env(HOME=str(home), PIPX_HOME=str(home / "pipx"), PIPX_BIN_DIR=str(home / "bin"))
    env["PATH"] = os.pathsep.join([str(pip_venv / "bin"), str(Path(sys.executable).parent), env["PATH"]])
    for line in lines:
        command = line.replace(f"{README_GIT_URL}/raw/tag/v0.1.0/scripts/constraints.txt",
                               str(clone / "scripts" / "constraints.txt")).replace(f"{README_GIT_URL}.git", f"file://localhost{clone}")
        ran = subprocess.run(["bash", "-c", command], cwd=clone, env=env, capture_output=True, text=True,
                             timeout=PIP_TIMEOUT_S, check=False)
        assert ran.returncode == 0, f"{line}\n{ran.stdout}{ran.stderr}"
    for coordinator in (home / "bin" / "coordinator", home / ".venvs" / "coordinator" / "bin" / "coordinator",
                        pip_venv / "bin" / "coordinator"):
        version = subprocess.run([str(coordinator), "--version"], cwd=tmp_path, env=clean_env(), capture_output=True,
                                 text=True, timeout=60, check=False)
        assert f"ansible-core {PINNED_CORE}" in version.stdout.splitlines(), f"{coordinator}: {version.stdout}{version.stderr}"


@pytest.mark.world
def test_the_first_hour_reaches_a_host_once_its_key_is_pinned(installed_venv: Path, world: object, tmp_path: Path,
                                                              request: pytest.FixtureRequest):
    """init → config check → hosts check against the world's sshd, pinning its key as hosts.yml says."""
    ops = app_checkout(tmp_path / "ops")
    host = f"production=root@127.0.0.1:{SANDBOX_SSH_PORT}"
    assert installed(installed_venv, ops, "init", "--project", "sample", "--host", host).returncode == 0
    group_vars = ops / "inventory" / "production" / "group_vars" / "all.yml"
    # What an operator edits for their hosts: this one is reached as root, without sudo, and
    # interpreter discovery would find a pyenv shim before the system Python.
    group_vars.write_text(group_vars.read_text().replace("ansible_become: true", "ansible_become: false")
                          .replace("# ansible_python_interpreter: /usr/bin/python3", "ansible_python_interpreter: /usr/bin/python3"))
    assert installed(installed_venv, ops, "config", "check").returncode == 0
    # Its own ssh ControlPath dir: a master connection another test left to the same
    # root@127.0.0.1:port would be reused without checking this inventory's known_hosts.
    control_dir = Path(tempfile.mkdtemp(prefix="cp-", dir="/tmp"))  # short: socket paths are limited to 108 bytes
    request.addfinalizer(lambda: shutil.rmtree(control_dir, ignore_errors=True))
    key = {"ANSIBLE_PRIVATE_KEY_FILE": str(REPO_ROOT / ".sandbox" / "ssh" / "client_key"),
           "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir)}

    unpinned = installed(installed_venv, ops, "hosts", "check", "production", env=key)
    assert unpinned.returncode == ExitCode.HOST_UNREACHABLE, unpinned.stdout + unpinned.stderr
    assert "127.0.0.1" in unpinned.stdout + unpinned.stderr

    scanned = subprocess.run(["ssh-keyscan", "-p", str(SANDBOX_SSH_PORT), "127.0.0.1"], capture_output=True, text=True,
                             timeout=60, check=True).stdout
    assert scanned.strip(), "ssh-keyscan found no key"
    (ops / "inventory" / "production" / "known_hosts").write_text(scanned)
    pinned = installed(installed_venv, ops, "hosts", "check", "production", env=key)
    assert pinned.returncode == 0, pinned.stdout + pinned.stderr


@pytest.mark.world
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
