"""Private registries on real parts: the real registry behind the token-auth stand-in.

The controller's digest check (coordinator.registry) and the hosts' pull (docker_release
through the real Docker engine, which runs its own token flow with the credentials the
coordinator hands over) against a registry that answers as Docker Hub, GHCR and Gitea do:
401 with a Bearer challenge, tokens from a realm, 403 for a repository the user may not pull.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from coordinator.errors import BuildFailed, ExitCode, RegistryCredentialsError, RegistryDenied
from coordinator.registry import resolve_digest
from coordinator.registry_auth import RegistryCredentials
from tests.sandbox.token_registry import Access, TokenRegistry
from tests.ansible import ansible_world
from tests.ansible.conftest import (
    CANARY_SECRET,
    REGISTRY_PORT,
    Images,
    InventoryFactory,
    container_exists,
    deploy_vars,
    run_playbook,
    running_digest,
)

PASSWORD = "canary-registry-5d1e-never-print-me"
ROBOT = RegistryCredentials("robot", PASSWORD, "test (user robot)")


@pytest.fixture
def private_registry(images: Images) -> Iterator[TokenRegistry]:
    """The test registry behind token auth: only `robot` may pull anstest/*; `outsider` may pull nothing."""
    access = Access(users={"robot": PASSWORD, "outsider": "outsider-pw"}, pulls={"robot": ["anstest/*"]})
    with TokenRegistry(f"127.0.0.1:{REGISTRY_PORT}", access) as front:
        yield front


def behind(front: TokenRegistry, image: ansible_world.Image) -> ansible_world.Image:
    """The same image, named by the front's address."""
    return ansible_world.Image(name=f"{front.address}/{image.name.split('/', 1)[1]}", tag=image.tag,
                               version=image.version, digest=image.digest, variant=image.variant)


def test_the_controller_earns_a_token_with_credentials_and_reads_the_real_digest(
        private_registry: TokenRegistry, images: Images) -> None:
    image = behind(private_registry, images.sample["1.0.0"])

    assert resolve_digest(image.name, image.tag, credentials=ROBOT) == image.digest
    tokens = [seen for seen in private_registry.seen if seen.path == "/token"]
    assert [(seen.user, seen.status) for seen in tokens] == [("", 200), ("robot", 200)], "anonymous token first"
    assert private_registry.seen[-1].scheme == "bearer" and private_registry.seen[-1].status == 200


def test_without_credentials_a_private_registry_is_exit_21_not_forge_unreachable(
        private_registry: TokenRegistry, images: Images) -> None:
    image = behind(private_registry, images.sample["1.0.0"])
    with pytest.raises(RegistryCredentialsError) as refused:
        resolve_digest(image.name, image.tag)
    assert refused.value.exit_code == ExitCode.REGISTRY_CREDENTIALS
    assert f"registry {private_registry.address} needs credentials" in refused.value.message


def test_wrong_credentials_are_exit_21_and_never_shown(private_registry: TokenRegistry, images: Images) -> None:
    image = behind(private_registry, images.sample["1.0.0"])
    with pytest.raises(RegistryCredentialsError) as refused:
        resolve_digest(image.name, image.tag, credentials=RegistryCredentials("robot", "wrong-" + PASSWORD, "test"))
    assert "refused the credentials from test" in refused.value.message and PASSWORD not in refused.value.message


def test_a_user_without_access_to_the_repository_is_exit_22(private_registry: TokenRegistry, images: Images) -> None:
    image = behind(private_registry, images.sample["1.0.0"])
    with pytest.raises(RegistryDenied) as denied:
        resolve_digest(image.name, image.tag, credentials=RegistryCredentials("outsider", "outsider-pw", "test"))
    assert denied.value.exit_code == ExitCode.REGISTRY_DENIED and image.name in denied.value.message


def test_a_tag_the_real_registry_lacks_is_a_build_failure_naming_it(private_registry: TokenRegistry, images: Images) -> None:
    image = behind(private_registry, images.sample["1.0.0"])
    with pytest.raises(BuildFailed) as missing:
        resolve_digest(image.name, "v9.9.9", credentials=ROBOT)
    assert f"{image.name}:v9.9.9" in missing.value.message


def test_a_public_image_behind_token_auth_needs_no_credentials(images: Images) -> None:
    with TokenRegistry(f"127.0.0.1:{REGISTRY_PORT}", Access(pulls={"": ["anstest/*"]})) as public:
        image = behind(public, images.sample["1.0.0"])
        assert resolve_digest(image.name, image.tag) == image.digest


def test_a_basic_auth_registry_is_answered_with_basic(images: Images) -> None:
    access = Access(users={"robot": PASSWORD}, pulls={"robot": ["anstest/*"]}, scheme="basic")
    with TokenRegistry(f"127.0.0.1:{REGISTRY_PORT}", access) as basic:
        image = behind(basic, images.sample["1.0.0"])
        assert resolve_digest(image.name, image.tag, credentials=ROBOT) == image.digest
        assert [seen.scheme for seen in basic.seen] == ["", "basic"]


def test_the_hosts_pull_through_token_auth_with_the_credentials_handed_over(
        private_registry: TokenRegistry, images: Images, make_inventory: InventoryFactory) -> None:
    image = behind(private_registry, images.sample["2.0.0"])
    inventory = make_inventory(["web"])
    handed_over = {"DOCKER_RELEASE_REGISTRY_USERNAME": "robot", "DOCKER_RELEASE_REGISTRY_PASSWORD": PASSWORD,
                   "DOCKER_RELEASE_REGISTRY_URL": private_registry.address}

    run = run_playbook("deploy.yml", inventory.path, deploy_vars(image), env=handed_over)

    assert not run.failed, str(run)
    assert running_digest(inventory.container("web")) == image.digest
    pulls = [seen for seen in private_registry.seen if "/manifests/" in seen.path and seen.status == 200]
    assert pulls and all(seen.user == "robot" for seen in pulls), "the engine pulled with the handed-over credentials"
    assert PASSWORD not in run.output and CANARY_SECRET not in run.output


def test_a_hosts_pull_without_credentials_fails_naming_the_registry_and_changes_nothing(
        private_registry: TokenRegistry, images: Images, make_inventory: InventoryFactory) -> None:
    image = behind(private_registry, images.sample["1.0.0"])
    inventory = make_inventory(["web"])

    run = run_playbook("deploy.yml", inventory.path, deploy_vars(image))

    assert run.failed
    failure = " ".join(run.failures)
    assert private_registry.address in failure or "anstest/sample" in failure, failure
    assert "unauthorized" in failure.lower() or "denied" in failure.lower() or "authentication" in failure.lower(), failure
    assert not container_exists(inventory.container("web"))
