"""Registry credentials and the registry's challenge: how we earn the right to read a manifest.

Docker Hub, GHCR, Gitea and most private registries answer an anonymous request with
`401` and a `WWW-Authenticate` challenge (the distribution token-auth spec): `Bearer
realm=...,service=...,scope=...` means "get a token from realm and come back", `Basic`
means "send a user and password". We follow it as `docker pull` does: an anonymous token
first (public images need no credentials), then one earned with credentials.

Credentials come from the config (`image.credentials`: a user and a password or token from
an environment variable or a 0600 file) or else from the operator's Docker `config.json`
(`auths`, what `docker login` writes). They are sent only where they can't be read on the way:
over HTTPS, or to a loopback address; and they never appear in a message, a log or the
audit (only where they came from does).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from coordinator.config import ImageConfig, secret_from
from coordinator.errors import ConfigError, RegistryCredentialsError, RegistryUnavailable


@dataclass(frozen=True)
class Challenge:
    """One challenge of a `WWW-Authenticate` header: its scheme (lower case) and parameters."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RegistryCredentials:
    """A user and secret for one registry, with where they came from (for messages: never the value)."""

    username: str
    secret: str = field(repr=False)
    source: str

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.secret}".encode("utf-8")
        return "Basic " + base64.b64encode(raw).decode("ascii")


# A scheme (a bare token) or an auth-param (token "=" token / quoted-string), RFC 7235 section 2.1.
_ITEM = re.compile(r'[\s,]*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)(?:\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,"]*))?')


def parse_challenges(header: str) -> list[Challenge]:
    """Every challenge in a `WWW-Authenticate` value, in order.

    Quoted values may hold commas and escaped quotes (a scope listing several actions
    does: `scope="repository:a/b:pull,push"`), so the header is read item by item rather
    than split on commas.
    """
    challenges: list[Challenge] = []
    for item in _ITEM.finditer(header):
        name, value = item.group(1), item.group(2)
        if value is None:
            challenges.append(Challenge(scheme=name.lower()))
        elif challenges:
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            challenges[-1].params[name.lower()] = value
    return challenges


def pick_challenge(challenges: list[Challenge]) -> Challenge | None:
    """The challenge we answer: Bearer when offered (it scopes access), else Basic, else none."""
    for scheme in ("bearer", "basic"):
        for challenge in challenges:
            if challenge.scheme == scheme:
                return challenge
    return None


def is_loopback_host(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def safe_to_send_secrets(url: str) -> bool:
    """HTTPS anywhere, plain HTTP only to this machine: a realm may not lure credentials into the open."""
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname or ""))


def credentials_for(image: ImageConfig, *, environ: dict[str, str] | None = None) -> RegistryCredentials | None:
    """The credentials for the image's registry: the config's, else Docker's config.json, else None."""
    configured = image.credentials
    if configured is not None:
        secret = secret_from(configured.password_env, configured.password_file, "image.credentials.password_file")
        if not secret:
            raise ConfigError(
                f"image.credentials: no password for registry user {configured.username!r}: export "
                f"{configured.password_env}=<password or token> (or set image.credentials.password_file to a 0600 file)")
        where = f"${configured.password_env}" if os.environ.get(configured.password_env, "").strip() else \
            str(configured.password_file)
        return RegistryCredentials(configured.username, secret, f"image.credentials (user {configured.username}, {where})")
    if not image.docker_config:
        return None
    return docker_config_credentials(image.registry, environ=environ)


def docker_config_path(environ: dict[str, str] | None = None) -> Path:
    """Where `docker login` keeps credentials: $DOCKER_CONFIG/config.json, else ~/.docker/config.json."""
    env = os.environ if environ is None else environ
    folder = env.get("DOCKER_CONFIG")
    return Path(folder) / "config.json" if folder else Path.home() / ".docker" / "config.json"


def _auths_key_host(key: str) -> str:
    """`https://reg.example.com/v1/`, `reg.example.com:5000` -> the host[:port] part."""
    if "://" in key:
        key = urlsplit(key).netloc
    return key.split("/", 1)[0].lower()


def docker_config_credentials(registry: str, *, environ: dict[str, str] | None = None) -> RegistryCredentials | None:
    """The `auths` entry for `registry` in Docker's config.json (base64 `auth` or username/password)."""
    path = docker_config_path(environ)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Docker config {path} cannot be read as JSON ({exc.__class__.__name__}): fix or remove it") from None
    auths = data.get("auths") if isinstance(data, dict) else None
    if not isinstance(auths, dict):
        return None
    wanted = registry.lower()
    aliases = {wanted, "index.docker.io", "registry-1.docker.io"} if wanted in ("docker.io", "index.docker.io",
                                                                                "registry-1.docker.io") else {wanted}
    for key, entry in auths.items():
        if _auths_key_host(str(key)) not in aliases or not isinstance(entry, dict):
            continue
        source = f"{path} (auths entry {key})"
        username, secret = str(entry.get("username") or ""), str(entry.get("password") or "")
        if entry.get("auth"):
            try:
                decoded = base64.b64decode(str(entry["auth"]), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise ConfigError(f"{source}: 'auth' is not base64 of user:password: run `docker login {registry}` again") from None
            username, _, secret = decoded.partition(":")
        if username and secret:
            return RegistryCredentials(username, secret, source)
    return None


def fetch_token(client: httpx.Client, registry: str, challenge: Challenge, scope: str,
                credentials: RegistryCredentials | None) -> str | None:
    """A token from the challenge's realm: anonymous when `credentials` is None.

    Returns None when the token service refuses (401/403): the caller then tries with
    credentials, or reports that they are missing or wrong.
    """
    realm = challenge.params.get("realm", "")
    if urlsplit(realm).scheme not in ("http", "https"):
        raise RegistryUnavailable(f"registry {registry} sent a Bearer challenge without a usable realm ({realm!r})")
    params = {"scope": challenge.params.get("scope") or scope}
    if challenge.params.get("service"):
        params["service"] = challenge.params["service"]
    headers = {}
    if credentials is not None:
        if not safe_to_send_secrets(realm):
            raise RegistryCredentialsError(
                f"registry {registry} asks for credentials at {realm}, plain HTTP to another machine: "
                "refusing to send them (the token service must use HTTPS)")
        headers["Authorization"] = credentials.basic_header()
    try:
        response = client.get(realm, params=params, headers=headers)
    except httpx.HTTPError as exc:
        raise RegistryUnavailable(
            f"registry {registry}: its token service {realm} unreachable ({exc.__class__.__name__}); resume when it answers"
        ) from exc
    if response.status_code in (401, 403):
        return None
    if response.status_code != 200:
        raise RegistryUnavailable(f"registry {registry}: its token service {realm} answered HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        body = None
    token = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise RegistryUnavailable(f"registry {registry}: its token service {realm} answered without a token")
    return token


def host_pull_env(image: ImageConfig) -> dict[str, str]:
    """The environment that hands our registry credentials to the hosts' pull (docker_release's defaults).

    The environment, not extra vars: ansible-runner keeps extra vars in its artifacts and on
    the command line, while `suppress_env_files` keeps the environment off the disk.
    """
    credentials = credentials_for(image)
    if credentials is None:
        return {}
    return {"DOCKER_RELEASE_REGISTRY_URL": image.registry, "DOCKER_RELEASE_REGISTRY_USERNAME": credentials.username,
            "DOCKER_RELEASE_REGISTRY_PASSWORD": credentials.secret}
