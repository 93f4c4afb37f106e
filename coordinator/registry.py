"""OCI registry look-ups: what digest does a tag point at right now?

Used to confirm the artifact manifest's digest against the registry itself, so a manifest
that lies (or a tag that moved) stops the release before anything is deployed. Private
registries (and public ones that want a token even for public images) are answered as
their challenge asks: registry_auth holds the credentials and the token flow.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from coordinator.errors import BuildFailed, ConfigError, RegistryCredentialsError, RegistryDenied, RegistryUnavailable
from coordinator.registry_auth import (
    RegistryCredentials,
    fetch_token,
    is_loopback_host,
    parse_challenges,
    pick_challenge,
    safe_to_send_secrets,
)
from coordinator.tls import CaFileError, trust_context, untrusted_certificate

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")

_MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def registry_base_url(registry: str) -> str:
    """Loopback registries speak plain HTTP (as Docker allows); every other one HTTPS."""
    host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    return f"{'http' if is_loopback_host(host) else 'https'}://{registry}"


def resolve_digest(
    image: str, reference: str, *, ca_file: Path | None = None, timeout_s: float = 10.0,
    credentials: RegistryCredentials | None = None, transport: httpx.BaseTransport | None = None,
) -> str:
    """HEAD the manifest of `image:reference` and return its Docker-Content-Digest.

    TLS is verified against the system's trust store plus `ca_file` (coordinator/tls.py), as
    for the forge. Anonymous first; on a 401 challenge, as the registry asks (see registry_auth). Each
    refusal is named for its cause: 401 = credentials (exit 21), 403 = no access to the
    repository (exit 22), 404 = no such tag (the build's failure, exit 5).
    """
    registry, repository = image.split("/", 1)
    url = f"{registry_base_url(registry)}/v2/{repository}/manifests/{reference}"
    try:
        verify = trust_context(ca_file)
    except CaFileError as exc:
        raise ConfigError(f"image.registry_ca_file: {exc}") from exc
    with httpx.Client(timeout=timeout_s, verify=verify, transport=transport) as client:
        response = _head(client, registry, url, None)
        if response.status_code == 401:
            response = _answer_challenge(client, registry, repository, url, response, credentials)
    return _digest_of(response, registry, image, reference, url, credentials)


def _head(client: httpx.Client, registry: str, url: str, authorization: str | None) -> httpx.Response:
    headers = {"Accept": _MANIFEST_TYPES}
    if authorization:
        headers["Authorization"] = authorization
    try:
        return client.head(url, headers=headers)
    except httpx.HTTPError as exc:
        if (reason := untrusted_certificate(exc)) is not None:
            raise ConfigError(
                f"registry {registry}'s TLS certificate is not trusted ({reason}): add its CA to the system "
                "trust store or name it in image.registry_ca_file") from exc
        raise RegistryUnavailable(
            f"registry {registry} unreachable at {url} ({exc.__class__.__name__}); resume when it answers") from exc


def _answer_challenge(client: httpx.Client, registry: str, repository: str, url: str, refused: httpx.Response,
                      credentials: RegistryCredentials | None) -> httpx.Response:
    """Retry as the 401's challenge asks: Bearer (anonymous token, then one with credentials) or Basic."""
    challenge = pick_challenge(parse_challenges(refused.headers.get("WWW-Authenticate", "")))
    if challenge is None:
        return refused
    if challenge.scheme == "basic":
        if credentials is None:
            return refused
        if not safe_to_send_secrets(url):
            raise RegistryCredentialsError(
                f"registry {registry} asks for Basic credentials over plain HTTP: refusing to send them (use HTTPS)")
        return _head(client, registry, url, credentials.basic_header())
    scope = f"repository:{repository}:pull"
    response = refused
    token = fetch_token(client, registry, challenge, scope, None)
    if token is not None:
        response = _head(client, registry, url, f"Bearer {token}")
    if response.status_code in (401, 403) and credentials is not None:  # the anonymous token was not enough
        token = fetch_token(client, registry, challenge, scope, credentials)
        if token is None:
            raise RegistryCredentialsError(
                f"registry {registry} refused the credentials from {credentials.source} at its token service: "
                "fix the user or password/token (`docker login` checks them)")
        response = _head(client, registry, url, f"Bearer {token}")
    return response


def _digest_of(response: httpx.Response, registry: str, image: str, reference: str, url: str,
               credentials: RegistryCredentials | None) -> str:
    status = response.status_code
    if status == 401:
        if credentials is None:
            raise RegistryCredentialsError(
                f"registry {registry} needs credentials to read {image}:{reference} and none were found: set "
                "image.credentials in the config or run `docker login` (see docs/registries.md)")
        raise RegistryCredentialsError(
            f"registry {registry} refused the credentials from {credentials.source} for {image}:{reference} (HTTP 401): "
            "fix the user or password/token")
    if status == 403:
        who = f"the user from {credentials.source}" if credentials else "anonymous access"
        raise RegistryDenied(
            f"registry {registry} denies {who} access to {image} (HTTP 403): grant it pull access to the repository")
    if status == 404:
        raise BuildFailed(f"registry {registry} has no manifest for {image}:{reference}: was the tag pushed?")
    if status != 200:
        raise RegistryUnavailable(f"registry {registry} answered HTTP {status} for HEAD {url}; resume when it answers")
    digest = response.headers.get("Docker-Content-Digest", "")
    if not DIGEST.match(digest):
        raise RegistryUnavailable(f"registry {registry} sent no usable Docker-Content-Digest for {image}:{reference}")
    return digest
