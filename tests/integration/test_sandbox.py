"""The local world behaves as docs/CONTRACTS.md section 1 promises."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sandbox import registry, sample
from tests.sandbox.docker_engine import sandbox_containers
from tests.sandbox.gitrepo import git
from tests.sandbox.testing import Container, build_variant, run_image
from tests.sandbox.world import RELEASE_RECORDS, World, reset, up

pytestmark = pytest.mark.world

TEST_REPOSITORY = "sandbox-test/sample"


@pytest.fixture
def fresh(world: World) -> World:
    return reset(world)


@pytest.fixture(scope="module")
def variant_digests(world: World, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Each variant built once and pushed as `sandbox-test/sample:<variant>`."""
    workdir = tmp_path_factory.mktemp("variants")
    image = f"{world.registry}/{TEST_REPOSITORY}"
    return {name: build_variant(workdir, name, image, name) for name in sample.VARIANTS}


@pytest.fixture
def started(world: World, variant_digests: dict[str, str]) -> Iterator[list[Container]]:
    containers: list[Container] = []
    yield containers
    for container in containers:
        container.remove()


def run_variant(world: World, digests: dict[str, str], started: list[Container], variant: str) -> Container:
    container = run_image(f"{world.registry}/{TEST_REPOSITORY}@{digests[variant]}", variant)
    started.append(container)
    return container


def example_version() -> str:
    return (sample.EXAMPLE / "VERSION").read_text().strip()


def test_up_again_reuses_the_running_parts(world: World):
    again = up(world.dir)

    assert {part: proc.pid for part, proc in again.started.items()} == \
        {part: proc.pid for part, proc in world.started.items()}


def test_world_json_describes_the_running_world(world: World):
    loaded = World.load(world.dir)

    assert loaded.image == "127.0.0.1:45000/acme/sample"
    assert loaded.started == world.started
    assert loaded.bare_remote == world.dir / "git" / "acme" / "sample.git"
    assert loaded.token_file.stat().st_mode & 0o777 == 0o600


def test_ssh_login_as_root_works_with_the_pinned_host_key(world: World):
    completed = subprocess.run([*world.ssh_argv(), "id", "-u"], capture_output=True, text=True, timeout=30)

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "0"


def test_a_command_over_ssh_runs_without_the_controller_s_bashrc(world: World):
    """The sandbox host is this machine's root, whose ~/.bashrc is the developer's (pyenv init
    here): sshd's SetEnv SHLVL=1 makes the session's bash a second-level shell, which does not
    read it, as a server's root shell costs nothing to start (tests/sandbox/sshd.py)."""
    completed = subprocess.run([*world.ssh_argv(), "echo $SHLVL"], capture_output=True, text=True, timeout=30)

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "2"  # 1 from sshd, +1 by bash: a top-level shell (which reads ~/.bashrc) says 1


def test_ssh_refuses_a_host_that_is_not_pinned(world: World, tmp_path: Path):
    empty_known_hosts = tmp_path / "known_hosts"
    empty_known_hosts.write_text("")
    argv = [arg if not arg.startswith("UserKnownHostsFile=") else f"UserKnownHostsFile={empty_known_hosts}"
            for arg in world.ssh_argv()]

    completed = subprocess.run([*argv, "true"], capture_output=True, text=True, timeout=30)

    assert completed.returncode != 0
    assert "host key" in completed.stderr.lower()


def test_pushed_digest_is_the_registry_manifest_digest(world: World, variant_digests: dict[str, str]):
    served = registry.manifest_digest(world.registry, TEST_REPOSITORY, "good")

    assert served == variant_digests["good"]


def test_good_variant_is_healthy_and_serves_its_version(world, variant_digests, started):
    container = run_variant(world, variant_digests, started, "good")

    health = container.get("/health")
    assert health.status_code == 200 and health.text.strip() == "ok"
    assert container.get("/version").text.strip() == example_version()


def test_broken_health_variant_answers_404_on_health(world, variant_digests, started):
    container = run_variant(world, variant_digests, started, "broken-health")

    assert container.get("/health").status_code == 404
    assert container.get("/version").text.strip() == example_version()


def test_wrong_version_variant_serves_another_version(world, variant_digests, started):
    container = run_variant(world, variant_digests, started, "wrong-version")

    assert container.get("/health").status_code == 200
    assert container.get("/version").text.strip() not in ("", example_version())


def test_exits_variant_container_stops_with_a_failure_status(world, variant_digests, started):
    container = run_variant(world, variant_digests, started, "exits")

    assert container.wait_exit() != 0


def test_bump_commits_and_pushes_a_new_release(fresh: World):
    head = sample.bump(fresh.checkout, "1.1.0", "### Changed\n- Faster start-up.")

    assert git(fresh.bare_remote, "rev-parse", "refs/heads/main").strip() == head
    assert (fresh.checkout / "VERSION").read_text().strip() == "1.1.0"
    sections = [line for line in (fresh.checkout / "CHANGELOG.md").read_text().splitlines() if line.startswith("## [")]
    assert sections[0].startswith("## [1.1.0] - ") and sections[1] == "## [1.0.0] - 2026-11-24"
    assert git(fresh.checkout, "status", "--porcelain") == ""


def test_reset_gives_a_fresh_one_commit_history(fresh: World):
    sample.make_variant(fresh.checkout, "broken-health")
    sample.bump(fresh.checkout, "2.0.0", "### Removed\n- Health.")
    git(fresh.checkout, "tag", "v2.0.0")
    git(fresh.checkout, "push", "--quiet", "origin", "v2.0.0")

    reset(fresh)

    assert git(fresh.checkout, "rev-list", "--count", "HEAD").strip() == "1"
    assert git(fresh.bare_remote, "tag", "--list") == ""
    assert git(fresh.bare_remote, "rev-parse", "refs/heads/main") == git(fresh.checkout, "rev-parse", "HEAD")
    assert (fresh.checkout / "VERSION").read_text().strip() == example_version()
    assert (fresh.checkout / "www" / "health").is_file()
    assert git(fresh.checkout, "status", "--porcelain") == ""


def test_reset_removes_sample_containers_and_release_records(world: World, variant_digests):
    run_image(f"{world.registry}/{TEST_REPOSITORY}@{variant_digests['good']}", "leftover")
    record = RELEASE_RECORDS / "sample-sandbox-test" / "release.json"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text("{}")

    reset(world)

    assert sandbox_containers(world.dir) == []
    assert not record.parent.exists()


def test_reset_leaves_other_worlds_containers_alone(world: World, variant_digests, tmp_path):
    other = run_image(f"{world.registry}/{TEST_REPOSITORY}@{variant_digests['good']}", "other-world",
                      world_dir=tmp_path / "other-checkout" / ".sandbox")
    try:
        reset(world)

        assert other.name in sandbox_containers(tmp_path / "other-checkout" / ".sandbox")
        assert other.get("/health").status_code == 200
    finally:
        other.remove()
