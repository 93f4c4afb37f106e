"""The registry's challenge and our credentials: parsing, where credentials come from, and the token flow.

Pure logic: httpx.MockTransport plays the registry for the flow's decisions. The same flow
against the real registry behind the token-auth stand-in is tests/integration/test_registry_auth.py.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest

from coordinator.config import ImageConfig
from coordinator.errors import (
    BuildFailed,
    ConfigError,
    ExitCode,
    RegistryCredentialsError,
    RegistryDenied,
    RegistryUnavailable,
)
from coordinator.registry import resolve_digest
from coordinator.registry_auth import (
    Challenge,
    RegistryCredentials,
    credentials_for,
    docker_config_credentials,
    host_pull_env,
    parse_challenges,
    pick_challenge,
)

DIGEST = "sha256:" + "b" * 64
SECRET = "s3cret-never-printed"


def test_a_bearer_challenge_with_a_quoted_comma_in_its_scope_is_read_whole() -> None:
    header = 'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:acme/shop:pull,push"'
    assert parse_challenges(header) == [Challenge("bearer", {
        "realm": "https://auth.example.com/token", "service": "registry.example.com",
        "scope": "repository:acme/shop:pull,push"})]


def test_several_challenges_unquoted_values_and_escapes_are_parsed() -> None:
    header = 'Basic realm="a \\"quoted\\" realm", charset=UTF-8, Bearer realm=https://t.example/token,error=insufficient_scope'
    basic, bearer = parse_challenges(header)
    assert basic == Challenge("basic", {"realm": 'a "quoted" realm', "charset": "UTF-8"})
    assert bearer == Challenge("bearer", {"realm": "https://t.example/token", "error": "insufficient_scope"})
    assert pick_challenge([basic, bearer]) is bearer
    assert pick_challenge(parse_challenges("")) is None


def test_credentials_repr_never_shows_the_secret() -> None:
    assert SECRET not in repr(RegistryCredentials("ci", SECRET, "test"))


def _image(**credentials: object) -> ImageConfig:
    data: dict[str, object] = {"name": "registry.example.com/acme/shop"}
    if credentials:
        data["credentials"] = credentials
    return ImageConfig.model_validate(data)


def test_configured_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_REGISTRY_TOKEN", SECRET)
    found = credentials_for(_image(username="ci", password_env="SHOP_REGISTRY_TOKEN"))
    assert found is not None and found.username == "ci" and found.secret == SECRET
    assert "$SHOP_REGISTRY_TOKEN" in found.source and SECRET not in found.source


def test_a_password_file_readable_by_others_is_refused_naming_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COORDINATOR_REGISTRY_PASSWORD", raising=False)
    secret_file = tmp_path / "registry-token"
    secret_file.write_text(SECRET)
    secret_file.chmod(0o640)
    with pytest.raises(ConfigError) as refused:
        credentials_for(_image(username="ci", password_file=str(secret_file)))
    assert f"chmod 600 {secret_file}" in refused.value.message and SECRET not in refused.value.message
    assert refused.value.exit_code == ExitCode.USAGE
    secret_file.chmod(0o600)
    assert credentials_for(_image(username="ci", password_file=str(secret_file))).secret == SECRET  # type: ignore[union-attr]


def test_configured_credentials_without_a_password_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COORDINATOR_REGISTRY_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="export COORDINATOR_REGISTRY_PASSWORD="):
        credentials_for(_image(username="ci"))


def _docker_config(tmp_path: Path, auths: dict[str, object]) -> dict[str, str]:
    (tmp_path / "config.json").write_text(json.dumps({"auths": auths}))
    return {"DOCKER_CONFIG": str(tmp_path)}


def test_docker_config_auth_entries_are_read_in_both_forms(tmp_path: Path) -> None:
    encoded = base64.b64encode(f"robot:{SECRET}".encode()).decode()
    environ = _docker_config(tmp_path, {
        "https://registry.example.com/v1/": {"auth": encoded},
        "other.example.com:5000": {"username": "bob", "password": "pw"},
    })
    first = docker_config_credentials("registry.example.com", environ=environ)
    second = docker_config_credentials("other.example.com:5000", environ=environ)
    assert first is not None and (first.username, first.secret) == ("robot", SECRET)
    assert second is not None and (second.username, second.secret) == ("bob", "pw")
    assert str(tmp_path / "config.json") in first.source and SECRET not in first.source
    assert docker_config_credentials("third.example.com", environ=environ) is None
    assert docker_config_credentials("registry.example.com", environ={"DOCKER_CONFIG": str(tmp_path / "none")}) is None


def test_a_docker_config_auth_that_is_not_base64_names_the_file_and_the_fix(tmp_path: Path) -> None:
    environ = _docker_config(tmp_path, {"registry.example.com": {"auth": "not base64!"}})
    with pytest.raises(ConfigError, match="docker login registry.example.com"):
        docker_config_credentials("registry.example.com", environ=environ)


def test_docker_config_is_used_only_when_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    _docker_config(tmp_path, {"registry.example.com": {"username": "robot", "password": SECRET}})
    assert credentials_for(_image()) is not None
    assert credentials_for(ImageConfig(name="registry.example.com/acme/shop", docker_config=False)) is None
    assert host_pull_env(_image()) == {"DOCKER_RELEASE_REGISTRY_URL": "registry.example.com",
                                       "DOCKER_RELEASE_REGISTRY_USERNAME": "robot", "DOCKER_RELEASE_REGISTRY_PASSWORD": SECRET}


class FakeRegistry:
    """A token-auth registry as a function: who may read what, and every request it saw."""

    def __init__(self, *, realm: str = "https://auth.example.com/token", anonymous_pull: bool = False,
                 users: dict[str, str] | None = None, allowed: set[str] | None = None, tag_exists: bool = True) -> None:
        self.realm, self.anonymous_pull, self.tag_exists = realm, anonymous_pull, tag_exists
        self.users = users or {}
        self.allowed = allowed if allowed is not None else set(self.users)
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        auth = request.headers.get("Authorization", "")
        if request.url.path == "/token":
            user = None
            if auth.startswith("Basic "):
                name, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                if self.users.get(name) != password:
                    return httpx.Response(401)
                user = name
            return httpx.Response(200, json={"token": f"token-for-{user or 'anonymous'}"})
        challenge = f'Bearer realm="{self.realm}",service="registry.example.com",scope="repository:acme/shop:pull"'
        who = auth.removeprefix("Bearer token-for-") if auth.startswith("Bearer ") else None
        if who is None or (who == "anonymous" and not self.anonymous_pull):
            return httpx.Response(401, headers={"WWW-Authenticate": challenge})
        if who != "anonymous" and who not in self.allowed:
            return httpx.Response(403)
        if not self.tag_exists:
            return httpx.Response(404)
        return httpx.Response(200, headers={"Docker-Content-Digest": DIGEST})


def _resolve(registry: FakeRegistry, credentials: RegistryCredentials | None = None) -> str:
    return resolve_digest("registry.example.com/acme/shop", "v1.0.0", credentials=credentials,
                          transport=httpx.MockTransport(registry))


ROBOT = RegistryCredentials("robot", SECRET, "image.credentials (user robot, $REG)")


def test_a_public_image_behind_a_token_service_resolves_with_an_anonymous_token() -> None:
    registry = FakeRegistry(anonymous_pull=True)
    assert _resolve(registry, ROBOT) == DIGEST
    token_requests = [r for r in registry.seen if r.url.path == "/token"]
    assert len(token_requests) == 1 and "Authorization" not in token_requests[0].headers, "credentials sent unasked"
    assert token_requests[0].url.params["scope"] == "repository:acme/shop:pull"
    assert token_requests[0].url.params["service"] == "registry.example.com"


def test_a_private_image_is_read_with_a_token_earned_by_credentials() -> None:
    registry = FakeRegistry(users={"robot": SECRET})
    assert _resolve(registry, ROBOT) == DIGEST
    assert [r.url.path for r in registry.seen] == ["/v2/acme/shop/manifests/v1.0.0", "/token",
                                                  "/v2/acme/shop/manifests/v1.0.0", "/token",
                                                  "/v2/acme/shop/manifests/v1.0.0"]


def test_no_credentials_for_a_private_image_is_exit_21_saying_how_to_give_them() -> None:
    with pytest.raises(RegistryCredentialsError) as refused:
        _resolve(FakeRegistry(users={"robot": SECRET}))
    assert refused.value.exit_code == ExitCode.REGISTRY_CREDENTIALS == 21
    assert "registry registry.example.com needs credentials" in refused.value.message
    assert "docker login" in refused.value.message


def test_wrong_credentials_are_exit_21_naming_their_source_never_their_value() -> None:
    wrong = RegistryCredentials("robot", "wrong-" + SECRET, "image.credentials (user robot, $REG)")
    with pytest.raises(RegistryCredentialsError) as refused:
        _resolve(FakeRegistry(users={"robot": SECRET}), wrong)
    assert "refused the credentials from image.credentials (user robot, $REG)" in refused.value.message
    assert SECRET not in refused.value.message


def test_a_user_without_access_to_the_repository_is_exit_22() -> None:
    with pytest.raises(RegistryDenied) as denied:
        _resolve(FakeRegistry(users={"robot": SECRET}, allowed=set()), ROBOT)
    assert denied.value.exit_code == ExitCode.REGISTRY_DENIED == 22
    assert "registry registry.example.com denies the user from image.credentials" in denied.value.message
    assert "registry.example.com/acme/shop" in denied.value.message


def test_a_missing_tag_is_the_build_stage_failure_naming_the_reference() -> None:
    with pytest.raises(BuildFailed) as missing:
        _resolve(FakeRegistry(anonymous_pull=True, tag_exists=False))
    assert missing.value.exit_code == ExitCode.BUILD_FAILED
    assert "registry.example.com/acme/shop:v1.0.0" in missing.value.message


def test_a_realm_over_plain_http_to_another_machine_never_gets_the_credentials() -> None:
    registry = FakeRegistry(realm="http://auth.example.com/token", users={"robot": SECRET})
    with pytest.raises(RegistryCredentialsError, match="refusing to send them"):
        _resolve(registry, ROBOT)
    assert not any("Authorization" in r.headers and r.url.path == "/token" for r in registry.seen)


def test_an_unreachable_registry_is_named_never_the_forge() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(RegistryUnavailable) as unreachable:
        resolve_digest("registry.example.com/acme/shop", "v1.0.0", transport=httpx.MockTransport(down))
    assert unreachable.value.exit_code == ExitCode.FORGE_UNAVAILABLE  # resumable, like the forge
    assert unreachable.value.message.startswith("registry registry.example.com unreachable")
    assert "forge" not in unreachable.value.message


def test_basic_is_answered_only_when_the_registry_asks_for_it() -> None:
    seen: list[httpx.Request] = []

    def basic_registry(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers.get("Authorization") != ROBOT.basic_header():
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="registry"'})
        return httpx.Response(200, headers={"Docker-Content-Digest": DIGEST})

    assert resolve_digest("registry.example.com/acme/shop", "v1", credentials=ROBOT,
                          transport=httpx.MockTransport(basic_registry)) == DIGEST
    assert "Authorization" not in seen[0].headers and len(seen) == 2
