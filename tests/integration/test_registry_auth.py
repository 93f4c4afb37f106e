"""Private registries through the CLI: the world's real registry behind the token-auth stand-in.

`plan` checks the registry as the build stage does, so each refusal shows here with the
exit code and one-line error the operator gets: 21 for credentials (none, or refused), 22
for a repository the user may not pull, 2 for a password file others can read. The
credentials come from the config or from Docker's config.json, and never show.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator.errors import ExitCode
from tests.sandbox.coordinator_config import IMAGE
from tests.sandbox.token_registry import Access, TokenRegistry
from tests.integration.conftest import ReleaseWorld

pytestmark = pytest.mark.world

PASSWORD = "canary-registry-7a4c-never-print-me"
WORLD_REGISTRY = IMAGE.split("/", 1)[0]


@pytest.fixture
def private_registry(release_world: ReleaseWorld) -> Iterator[TokenRegistry]:
    access = Access(users={"robot": PASSWORD, "outsider": "outsider-pw"}, pulls={"robot": ["acme/*"]})
    with TokenRegistry(WORLD_REGISTRY, access) as front:
        yield front


def use_registry(rw: ReleaseWorld, front: TokenRegistry, **image: object) -> str:
    name = f"{front.address}/{IMAGE.split('/', 1)[1]}"
    rw.rewrite_config(image={"name": name, **image})
    return name


def plan(rw: ReleaseWorld, tmp_path: Path, **env: str):
    """`plan 1.0.0` with an empty Docker config unless the test gives one."""
    (tmp_path / "no-docker-config").mkdir(exist_ok=True)
    return rw.coordinator("plan", "1.0.0", env={"DOCKER_CONFIG": str(tmp_path / "no-docker-config"), **env})


def error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stdout + result.stderr
    return lines[0]


def test_without_credentials_plan_exits_21_naming_the_registry_and_the_fix(
        release_world: ReleaseWorld, private_registry: TokenRegistry, tmp_path: Path) -> None:
    use_registry(release_world, private_registry)

    result = plan(release_world, tmp_path)

    assert result.returncode == ExitCode.REGISTRY_CREDENTIALS, result.stdout + result.stderr
    error = error_line(result)
    assert f"registry {private_registry.address} needs credentials" in error and "docker login" in error, error
    assert "forge" not in error


def test_refused_credentials_exit_21_naming_their_source_never_their_value(
        release_world: ReleaseWorld, private_registry: TokenRegistry, tmp_path: Path) -> None:
    use_registry(release_world, private_registry, credentials={"username": "robot", "password_env": "SHOP_REGISTRY_TOKEN"})

    result = plan(release_world, tmp_path, SHOP_REGISTRY_TOKEN="wrong-" + PASSWORD)

    assert result.returncode == ExitCode.REGISTRY_CREDENTIALS, result.stdout + result.stderr
    error = error_line(result)
    assert "refused the credentials from image.credentials (user robot, $SHOP_REGISTRY_TOKEN)" in error, error
    assert PASSWORD not in result.stdout + result.stderr


def test_a_user_without_access_to_the_repository_exits_22(
        release_world: ReleaseWorld, private_registry: TokenRegistry, tmp_path: Path) -> None:
    name = use_registry(release_world, private_registry, credentials={"username": "outsider"})

    result = plan(release_world, tmp_path, COORDINATOR_REGISTRY_PASSWORD="outsider-pw")

    assert result.returncode == ExitCode.REGISTRY_DENIED, result.stdout + result.stderr
    error = error_line(result)
    assert "denies the user from image.credentials (user outsider" in error and name in error, error


def test_a_password_file_others_can_read_exits_2_saying_chmod_600(
        release_world: ReleaseWorld, private_registry: TokenRegistry, tmp_path: Path) -> None:
    secret = tmp_path / "registry-password"
    secret.write_text(PASSWORD)
    secret.chmod(0o644)
    use_registry(release_world, private_registry, credentials={"username": "robot", "password_file": str(secret)})

    result = plan(release_world, tmp_path)

    assert result.returncode == ExitCode.USAGE, result.stdout + result.stderr
    assert f"chmod 600 {secret}" in error_line(result)
    assert PASSWORD not in result.stdout + result.stderr


def test_docker_login_credentials_are_used_and_never_shown(
        release_world: ReleaseWorld, private_registry: TokenRegistry, tmp_path: Path) -> None:
    docker_config = tmp_path / "docker"
    docker_config.mkdir()
    auth = base64.b64encode(f"robot:{PASSWORD}".encode()).decode()
    (docker_config / "config.json").write_text(json.dumps({"auths": {private_registry.address: {"auth": auth}}}))
    use_registry(release_world, private_registry)

    result = plan(release_world, tmp_path, DOCKER_CONFIG=str(docker_config))

    assert result.returncode not in (ExitCode.REGISTRY_CREDENTIALS, ExitCode.REGISTRY_DENIED), result.stdout + result.stderr
    robot = [seen for seen in private_registry.seen if seen.user == "robot"]
    assert any(seen.path == "/token" and seen.status == 200 for seen in robot), private_registry.seen
    assert any("/manifests/" in seen.path for seen in robot), "the manifest was read with robot's token"
    assert PASSWORD not in result.stdout + result.stderr
    assert not any(PASSWORD in path.read_text(errors="replace") for path in release_world.state_dir.rglob("*") if path.is_file())
