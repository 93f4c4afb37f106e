"""`coordinator init`: files a new team can start from, written without a question, never over theirs."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from coordinator import __version__
from coordinator.errors import ExitCode

ANSIBLE_INVENTORY = Path(sys.executable).parent / "ansible-inventory"


def run_main(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "coordinator", *args], capture_output=True, text=True, cwd=cwd,
                          stdin=subprocess.DEVNULL, check=False, timeout=120)


def test_init_asks_nothing_and_its_config_passes_config_check(tmp_path: Path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, timeout=30)  # init runs in the app's checkout
    written = run_main("init", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    for path in ("coordinator.yml", "inventory/staging/hosts.yml", "inventory/production/group_vars/all.yml",
                 "inventory/production/known_hosts", ".gitea/workflows/release.yml"):
        assert (tmp_path / path).is_file(), path
    assert "coordinator config check" in written.stdout and "hosts check production" in written.stdout

    checked = run_main("config", "check", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "is valid" in checked.stdout


def test_flags_fill_in_the_forge_repo_image_environments_and_hosts(tmp_path: Path):
    result = run_main("init", "--project", "shop", "--forge", "forgejo", "--forge-url", "https://code.example.org",
                      "--repo", "team/shop", "--image", "registry.example.org/team/shop", "--env", "qa", "--env", "live",
                      "--host", "live=deploy@app1.example.org:2222", "--host", "live=app2.example.org", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((tmp_path / "coordinator.yml").read_text())
    assert config["forge"] == {**config["forge"], "kind": "forgejo", "url": "https://code.example.org", "repo": "team/shop"}
    assert config["ci"]["provider"] == "forgejo-actions"
    assert config["image"]["name"] == "registry.example.org/team/shop"
    assert list(config["environments"]) == ["qa", "live"]
    assert (config["promote_from"], config["promote_to"]) == ("qa", "live")
    hosts = yaml.safe_load((tmp_path / "inventory/live/hosts.yml").read_text())["app"]["hosts"]
    assert hosts == {"app1.example.org": {"ansible_port": 2222, "ansible_user": "deploy"}, "app2.example.org": None}


def test_the_inventory_gives_every_host_what_the_roles_need_and_pins_host_keys(tmp_path: Path):
    assert run_main("init", "--project", "shop", "--host", "production=app1.example.com", cwd=tmp_path).returncode == 0
    listed = subprocess.run([str(ANSIBLE_INVENTORY), "-i", str(tmp_path / "inventory/production"), "--list"],
                            capture_output=True, text=True, check=True, timeout=120)
    host = json.loads(listed.stdout)["_meta"]["hostvars"]["app1.example.com"]
    # What docker_release and release_health require and the coordinator does not pass itself.
    assert host["docker_release_container_name"] == "shop"
    assert host["docker_release_published_port"] == 8080
    assert host["release_health_base_url"].startswith("http://127.0.0.1:")
    assert "-o StrictHostKeyChecking=yes" in host["ansible_ssh_common_args"]
    assert "UserKnownHostsFile={{ inventory_dir }}/known_hosts" in host["ansible_ssh_common_args"]
    assert "ssh-keyscan" in (tmp_path / "inventory/production/hosts.yml").read_text()


def test_the_ci_job_runs_to_the_gate_without_input_and_keeps_secrets_out_of_the_file(tmp_path: Path):
    assert run_main("init", cwd=tmp_path).returncode == 0
    workflow = yaml.safe_load((tmp_path / ".gitea/workflows/release.yml").read_text())
    steps = workflow["jobs"]["release"]["steps"]
    release = next(step for step in steps if "coordinator release" in step.get("run", ""))
    assert 'coordinator release "$VERSION" || [ $? -eq 4 ]' in release["run"]
    assert release["env"]["COORDINATOR_NO_INPUT"] == "1"
    assert release["env"]["COORDINATOR_FORGE_TOKEN"] == "${{ secrets.COORDINATOR_FORGE_TOKEN }}"
    assert workflow[True]["workflow_dispatch"]["inputs"]["version"]["required"] is True  # YAML 1.1 reads `on` as True
    install = next(step for step in steps if step.get("name") == "Install the coordinator")
    pip_line = next(line for line in install["run"].splitlines() if "pip\" install" in line)
    tag = f"v{__version__}"
    assert shlex.split(pip_line)[-3:] == ["--constraint", f"https://git.example.com/acme/coordinator/raw/tag/{tag}/scripts/constraints.txt",
                                          f"release-coordinator @ git+https://git.example.com/acme/coordinator.git@{tag}"]


def test_a_value_cannot_inject_shell_into_the_ci_job(tmp_path: Path):
    assert run_main("init", "--install", "x$(touch /tmp/pwned)'\"; id", cwd=tmp_path).returncode == 0
    run = yaml.safe_load((tmp_path / ".gitea/workflows/release.yml").read_text())["jobs"]["release"]["steps"][1]["run"]
    line = next(line for line in run.splitlines() if "pip\" install" in line)
    assert shlex.split(line)[-1] == "x$(touch /tmp/pwned)'\"; id"  # one word, as given


def test_init_refuses_to_overwrite_and_then_writes_nothing(tmp_path: Path):
    theirs = tmp_path / "inventory" / "production" / "hosts.yml"
    theirs.parent.mkdir(parents=True)
    theirs.write_text("app: {hosts: {mine.example.com: }}\n")
    result = run_main("init", cwd=tmp_path)
    assert result.returncode == ExitCode.USAGE == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "inventory/production/hosts.yml exists; nothing was written" in result.stderr
    assert theirs.read_text() == "app: {hosts: {mine.example.com: }}\n"
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == ["inventory/production/hosts.yml"]


@pytest.mark.parametrize(("flags", "message"), [
    (["--host", "app1.example.com"], "--host 'app1.example.com': expected ENV=[USER@]HOST[:PORT]"),
    (["--host", "prod=app1.example.com"], "no environment 'prod'; known: staging, production"),
    (["--image", "Registry.example.com/App:latest"], "init: image.name:"),
    (["--env", "production"], "at least two distinct environments"),
    # A value cannot smuggle keys into the YAML: it is quoted, then validated as config check would.
    (["--repo", "acme/x\nstate_dir: /etc"], "init: forge.repo: Value error, must be owner/name"),
], ids=["host-form", "host-env", "image", "one-env", "yaml-injection"])
def test_a_bad_flag_is_one_line_naming_it_and_nothing_is_written(tmp_path: Path, flags: list[str], message: str):
    result = run_main("init", *flags, cwd=tmp_path)
    assert result.returncode == ExitCode.USAGE
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())
