"""Build an app image around the host's static busybox and push it to the local registry.

No base image can be pulled here, so every image is `FROM scratch` and gets `/bin/busybox`
copied into its build context. The build runs on a temporary copy so the source tree (a
git checkout, or a tree exported from a tag) is never modified. The stand-in CI and the
sandbox tests share this one implementation.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from coordinator.errors import CoordinatorError

BUSYBOX = Path("/bin/busybox")
BUILD_TIMEOUT_S = 300.0

_PUSH_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")


class ImageBuildError(CoordinatorError):
    """`docker build` or `docker push` failed; `log` holds their combined output."""

    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(message)
        self.log = log


def _run(argv: list[str], what: str, log: list[str]) -> str:
    try:
        completed = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                   timeout=BUILD_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ImageBuildError(f"{what} did not finish within {BUILD_TIMEOUT_S:.0f}s", "\n".join(log)) from exc
    except FileNotFoundError as exc:
        raise ImageBuildError(f"{what}: `{argv[0]}` is not installed; install docker.io", "") from exc
    output = completed.stdout + completed.stderr
    log.append(f"$ {' '.join(argv)}\n{output}")
    if completed.returncode != 0:
        last = next((line for line in reversed(output.splitlines()) if line.strip()), "no output")
        raise ImageBuildError(f"{what} failed (exit {completed.returncode}): {last.strip()}", "\n".join(log))
    return output


def _repo_digest(ref: str, image: str, log: list[str]) -> str:
    """Fallback when the push output carries no digest: the RepoDigests entry for `image`."""
    output = _run(["docker", "image", "inspect", "--format", "{{range .RepoDigests}}{{println .}}{{end}}", ref],
                  "docker image inspect", log)
    for line in output.splitlines():
        name, _, digest = line.strip().partition("@")
        if name == image and digest.startswith("sha256:"):
            return digest
    raise ImageBuildError(f"no repo digest for {ref} after push; check the registry at {image.split('/')[0]}",
                          "\n".join(log))


def build_and_push(source_dir: Path, image: str, tag: str) -> str:
    """Build `source_dir` (which has a Dockerfile) as `image:tag`, push it, return "sha256:…".

    The returned digest is the manifest digest the registry stores (what a HEAD of
    `/v2/<repo>/manifests/<tag>` answers in `Docker-Content-Digest`).
    """
    source_dir = Path(source_dir)
    if not (source_dir / "Dockerfile").is_file():
        raise ImageBuildError(f"no Dockerfile in build context {source_dir}; add one or pick the app's root")
    if not BUSYBOX.is_file():
        raise ImageBuildError(f"{BUSYBOX} is missing; install busybox-static")
    ref = f"{image}:{tag}"
    log: list[str] = []
    with tempfile.TemporaryDirectory(prefix="sandbox-build-") as scratch:
        context = Path(scratch) / "context"
        shutil.copytree(source_dir, context, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        shutil.copy2(BUSYBOX, context / "busybox")
        _run(["docker", "build", "--quiet", "--tag", ref, str(context)], f"docker build of {ref}", log)
    pushed = _run(["docker", "push", ref], f"docker push of {ref}", log)
    match = _PUSH_DIGEST.search(pushed)
    return match.group(1) if match else _repo_digest(ref, image, log)
