"""OCI registry look-ups: what digest does a tag point at right now?

Used to confirm the artifact manifest's digest against the registry itself, so a manifest
that lies (or a tag that moved) stops the release before anything is deployed.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import httpx

from coordinator.errors import BuildFailed, ForgeError

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
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    return f"{'http' if loopback else 'https'}://{registry}"


def resolve_digest(
    image: str, reference: str, *, ca_file: Path | None = None, timeout_s: float = 10.0,
    transport: httpx.BaseTransport | None = None,
) -> str:
    """HEAD the manifest of `image:reference` and return its Docker-Content-Digest."""
    registry, repository = image.split("/", 1)
    url = f"{registry_base_url(registry)}/v2/{repository}/manifests/{reference}"
    verify: str | bool = str(ca_file) if ca_file else True
    try:
        with httpx.Client(timeout=timeout_s, verify=verify, transport=transport) as client:
            response = client.head(url, headers={"Accept": _MANIFEST_TYPES})
    except httpx.HTTPError as exc:
        raise ForgeError(f"registry {registry} unreachable while resolving {image}:{reference} ({exc.__class__.__name__})") from exc
    if response.status_code == 404:
        raise BuildFailed(f"registry has no manifest for {image}:{reference}")
    if response.status_code != 200:
        raise ForgeError(f"registry answered HTTP {response.status_code} for HEAD {url}", endpoint=url, status=response.status_code)
    digest = response.headers.get("Docker-Content-Digest", "")
    if not DIGEST.match(digest):
        raise ForgeError(f"registry sent no usable Docker-Content-Digest for {image}:{reference}", endpoint=url)
    return digest
