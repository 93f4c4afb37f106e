"""The OCI registry: Debian's `docker-registry` (distribution 2.x), plain HTTP on 127.0.0.1.

Docker treats registries on 127.0.0.0/8 as insecure by default, so no TLS and no daemon
configuration are needed to push to it.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.sandbox.procs import Started, spawn, wait_until

START_TIMEOUT_S = 20.0


def write_config(path: Path, storage: Path, address: str) -> Path:
    storage.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: \"{storage}\"\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: {address}\n"
        "  headers:\n    X-Content-Type-Options: [nosniff]\n",
        encoding="utf-8",
    )
    return path


def answers(address: str) -> bool:
    """The registry API root answers 200 (it needs no auth here)."""
    try:
        return httpx.get(f"http://{address}/v2/", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def start(config: Path, address: str, log: Path) -> Started:
    proc = spawn(["docker-registry", "serve", str(config)], log, marker="docker-registry")
    wait_until(lambda: answers(address), f"registry on {address}", START_TIMEOUT_S, proc)
    return proc


def manifest_digest(address: str, repository: str, reference: str) -> str | None:
    """The registry's own digest for `repository:reference`, or None when it has no such manifest."""
    accept = ", ".join([
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ])
    response = httpx.head(f"http://{address}/v2/{repository}/manifests/{reference}", headers={"Accept": accept},
                          timeout=5.0)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.headers.get("Docker-Content-Digest")
