"""A throwaway registry and busybox images for the Ansible tests and molecule scenarios.

Why this exists: the Ansible content must be testable without the sandbox world (built by
another part) and without pulling anything from the internet. The registry is Debian's
``docker-registry`` bound to 127.0.0.1; images are built ``FROM scratch`` around the
static /bin/busybox, pushed, and identified by the digest the registry returns, so the
roles can pull them by digest exactly as in production.

Used by ``tests/ansible/conftest.py`` (imported) and by the molecule scenarios (run as
``python tests/ansible/ansible_world.py up|down ...``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

REGISTRY_BINARY = "/usr/bin/docker-registry"
BUSYBOX = "/bin/busybox"
HTTPD_ENTRYPOINT = ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]

# A variant is the ENTRYPOINT of the image; the served files are the same for all.
# "refuses" lets one test host reject one version (set REFUSE_VERSION in its env file),
# which is how the fleet test makes a single host of a batch fail its health check.
VARIANTS: dict[str, list[str]] = {
    "good": HTTPD_ENTRYPOINT,
    "exits": ["/bin/busybox", "false"],
    # Serves /version but answers 404 on /health (the file is removed before httpd starts).
    "broken-health": ["/bin/busybox", "sh", "-c", "rm -f /www/health; exec /bin/busybox httpd -f -p 8080 -h /www"],
    "refuses": [
        "/bin/busybox",
        "sh",
        "-c",
        'if [ "$REFUSE_VERSION" = "$(cat /www/version)" ]; then exit 3; fi; '
        "exec /bin/busybox httpd -f -p 8080 -h /www",
    ],
}


class WorldError(RuntimeError):
    """The throwaway registry or an image could not be set up."""


@dataclass(frozen=True)
class Registry:
    """A running throwaway registry we started (and therefore may stop)."""

    host: str
    port: int
    root: str
    pid: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Image:
    """A pushed image: ``name@digest`` is what the roles deploy."""

    name: str
    tag: str
    version: str
    digest: str
    variant: str


def _no_proxy_opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _registry_answers(port: int) -> bool:
    try:
        with _no_proxy_opener().open(f"http://127.0.0.1:{port}/v2/", timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_registry(root: Path, port: int, timeout_s: float = 20.0) -> Registry:
    """Start ``docker-registry`` on 127.0.0.1:port with storage under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    if _registry_answers(port):
        raise WorldError(f"port {port} already answers as a registry; run 'down' first or pick another port")
    config = root / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {root / 'storage'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n",
        encoding="utf-8",
    )
    log = open(root / "registry.log", "ab")  # noqa: SIM115 - handed to the child process
    process = subprocess.Popen(
        [REGISTRY_BINARY, "serve", str(config)],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    log.close()
    (root / "registry.pid").write_text(str(process.pid), encoding="utf-8")
    deadline = time.monotonic() + timeout_s
    while not _registry_answers(port):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_registry(root)
            raise WorldError(f"registry on 127.0.0.1:{port} did not start; see {root / 'registry.log'}")
        time.sleep(0.1)
    return Registry(host="127.0.0.1", port=port, root=str(root), pid=process.pid)


def stop_registry(root: Path, timeout_s: float = 10.0) -> None:
    """Stop the registry started with this ``root`` (only that process, found by pid file)."""
    pid_file = root / "registry.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text(encoding="utf-8"))
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists() and str(root / "registry.yml") in cmdline.read_bytes().decode(errors="replace"):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.1)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)
    pid_file.unlink()


def _docker(*args: str) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, check=False, timeout=300)
    if result.returncode != 0:
        raise WorldError(f"docker {args[0]} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def build_image(registry: Registry, repo: str, version: str, variant: str = "good") -> Image:
    """Build a busybox image serving ``/health`` and ``/version``, push it, return its digest."""
    if variant not in VARIANTS:
        raise WorldError(f"unknown variant {variant!r}; choose one of {sorted(VARIANTS)}")
    name = f"{registry.address}/{repo}"
    tag = f"v{version}"
    with tempfile.TemporaryDirectory(prefix="ansible-world-") as tmp:
        context = Path(tmp)
        shutil.copy2(BUSYBOX, context / "busybox")
        (context / "www").mkdir()
        (context / "www" / "health").write_text("ok\n", encoding="utf-8")
        (context / "www" / "version").write_text(f"{version}\n", encoding="utf-8")
        (context / "Dockerfile").write_text(
            "FROM scratch\n"
            "COPY busybox /bin/busybox\n"
            "COPY www /www\n"
            f"LABEL org.opencontainers.image.version={version}\n"
            f"ENTRYPOINT {json.dumps(VARIANTS[variant])}\n",
            encoding="utf-8",
        )
        _docker("build", "--quiet", "--tag", f"{name}:{tag}", str(context))
    _docker("push", "--quiet", f"{name}:{tag}")
    repo_digests = json.loads(_docker("image", "inspect", "--format", "{{json .RepoDigests}}", f"{name}:{tag}"))
    digests = [entry.split("@", 1)[1] for entry in repo_digests if entry.startswith(f"{name}@")]
    if not digests:
        raise WorldError(f"{name}:{tag} has no repo digest after push")
    # Drop the local copy so the roles under test really pull by digest from the registry.
    _docker("image", "rm", f"{name}:{tag}")
    return Image(name=name, tag=tag, version=version, digest=digests[0], variant=variant)


def _parse_image_spec(spec: str) -> tuple[str, str]:
    version, _, variant = spec.partition("=")
    return version, variant or "good"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a registry and push images; print JSON")
    up.add_argument("--root", type=Path, required=True)
    up.add_argument("--port", type=int, required=True)
    up.add_argument("--repo", default="test/sample")
    up.add_argument("--image", action="append", default=[], help="VERSION[=VARIANT], repeatable")
    up.add_argument("--out", type=Path, help="also write the JSON here")
    down = sub.add_parser("down", help="stop the registry started with --root")
    down.add_argument("--root", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "down":
        stop_registry(args.root)
        return 0
    registry = start_registry(args.root, args.port)
    images = {}
    for spec in args.image:
        version, variant = _parse_image_spec(spec)
        images[version] = asdict(build_image(registry, args.repo, version, variant))
    document = json.dumps({"registry": asdict(registry), "images": images}, indent=2)
    if args.out:
        args.out.write_text(document, encoding="utf-8")
    print(document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
