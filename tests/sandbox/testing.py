"""Small pytest-independent helpers for tests that run sample images on the world.

Containers started here carry the default world's label (and a `sample-` name), so that
world's `reset` and `down` remove them even when a test dies half-way.
"""

from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.sandbox import sample
from tests.sandbox.docker_engine import docker, world_label
from tests.sandbox.errors import SandboxError
from tests.sandbox.imagebuild import build_and_push

HTTP_READY_TIMEOUT_S = 15.0
EXIT_TIMEOUT_S = 15.0


def variant_source(workdir: Path, variant: str) -> Path:
    """A copy of the example app turned into `variant` (no git needed)."""
    source = workdir / f"app-{variant}"
    shutil.copytree(sample.EXAMPLE, source)
    sample.make_variant(source, variant)
    return source


def build_variant(workdir: Path, variant: str, image: str, tag: str) -> str:
    """Build and push `variant` as `image:tag`; return its digest."""
    return build_and_push(variant_source(workdir, variant), image, tag)


@dataclass(frozen=True)
class Container:
    """A running sample container published on an ephemeral 127.0.0.1 port."""

    name: str
    base_url: str | None

    def remove(self) -> None:
        docker("rm", "--force", self.name, check=False)

    def wait_exit(self, timeout_s: float = EXIT_TIMEOUT_S) -> int:
        """Block (bounded) until the container stops and return its exit status."""
        return int(docker("wait", self.name, timeout_s=timeout_s).stdout.strip())

    def get(self, path: str) -> httpx.Response:
        """GET `path`, retrying only while the server is not yet accepting (bounded)."""
        if self.base_url is None:
            raise SandboxError(f"container {self.name} publishes no port")
        deadline = time.monotonic() + HTTP_READY_TIMEOUT_S
        while True:
            try:
                return httpx.get(self.base_url + path, timeout=2.0)
            except httpx.TransportError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)


def run_image(ref: str, name_hint: str, world_dir: Path | None = None) -> Container:
    """`docker run` `ref` detached with `--init` (busybox as PID 1 ignores SIGTERM), port
    8080 published on an ephemeral 127.0.0.1 port."""
    from tests.sandbox.world import DEFAULT_DIR

    name = f"sample-test-{name_hint}-{uuid.uuid4().hex[:6]}"
    docker("run", "--detach", "--init", "--name", name, "--label", world_label(world_dir or DEFAULT_DIR), "--stop-timeout", "1",
           "--publish", "127.0.0.1::8080", ref, timeout_s=60.0)
    port = docker("port", name, "8080/tcp", check=False).stdout.strip()
    base_url = None
    if port:
        base_url = "http://" + port.splitlines()[0].strip()
    return Container(name=name, base_url=base_url)
