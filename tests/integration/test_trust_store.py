"""One trust store for every HTTPS client: the system's, plus a configured CA file.

A company's registry and staging URL carry certificates from the company's CA, installed in
its machines' system store. The forge client always trusted that store; the registry's
digest check and the built-in smoke test used httpx's own bundle (certifi) instead, so they
failed where the forge worked, and said "unreachable; resume when it answers" about a
certificate no amount of waiting would make trusted.

Each test runs the coordinator in a private mount view (tests/sandbox/trust_view.py) whose
/etc/ssl/certs trusts exactly a CA made for the test and whose /etc/hosts names the TLS front
(tests/sandbox/tls_front.py) that stands before a plain-HTTP service on 127.0.0.1. The machine's
own store and hosts file are never touched. The untrusted party here is the server: a
certificate from a CA nobody installed must be refused, and said so.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from coordinator.errors import ExitCode
from tests.integration.conftest import ReleaseWorld
from tests.sandbox.coordinator_config import IMAGE
from tests.sandbox.http_front import ServedInThread
from tests.sandbox.tls_front import PrivateCa, TlsFront
from tests.sandbox.trust_view import certs_dir, hosts_file, view_argv

NAME = "service.test"
DIGEST = "sha256:" + "ab" * 32


class _Service(BaseHTTPRequestHandler):
    """The app's /health and /version (1.0.0), and a registry's manifest HEAD for acme/sample:1.0.0."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = {"/health": b"ok\n", "/version": b"1.0.0\n"}.get(self.path)
        self.send_response(200 if body else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def do_HEAD(self) -> None:  # noqa: N802
        found = self.path == "/v2/acme/sample/manifests/1.0.0"
        self.send_response(200 if found else 404)
        if found:
            self.send_header("Docker-Content-Digest", DIGEST)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def service() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Service)
    with ServedInThread(server, "trust-service"):
        yield f"127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def ca(tmp_path: Path) -> PrivateCa:
    return PrivateCa.make(tmp_path / "ca", [NAME])


def plain_env(**extra: str) -> dict[str, str]:
    """This environment without SSL_CERT_FILE / SSL_CERT_DIR: a machine that sets them (this one
    does) makes OpenSSL and httpx read that file instead of the system store the test is about."""
    return {**{k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}, **extra}


def run_in_view(tmp_path: Path, trusted: list[Path], code: str) -> subprocess.CompletedProcess[str]:
    """Python `code` run with /etc/ssl/certs trusting exactly `trusted`, and NAME resolving to 127.0.0.1."""
    view = view_argv(hosts_file(tmp_path / "hosts", [NAME]), certs_dir(tmp_path / f"certs-{len(trusted)}", trusted),
                     [sys.executable, "-c", code])
    result = subprocess.run(view, capture_output=True, text=True, timeout=120, check=False, env=plain_env())
    assert "mount" not in result.stderr or result.returncode == 0, f"the private view could not be set up: {result.stderr}"
    return result


def test_the_smoke_test_trusts_an_internal_ca_in_the_system_store(tmp_path: Path, service: str, ca: PrivateCa) -> None:
    with TlsFront(service, ca) as front:
        url = f"https://{NAME}:{front.port}"
        result = run_in_view(tmp_path, [ca.ca_file], "\n".join([
            "import httpx",
            "from coordinator.stages.stage import builtin_smoke",
            f"print('smoke:', builtin_smoke({url!r}, '1.0.0'))",
            # The check can fail: httpx's own default (certifi's bundle) does not know the CA.
            "try:",
            f"    httpx.get({url!r} + '/health')",
            "    print('certifi: trusted')",
            "except httpx.ConnectError as exc:",
            "    print('certifi:', 'CERTIFICATE_VERIFY_FAILED' in str(exc) and 'refused')",
        ]))

    assert result.returncode == 0, result.stderr
    assert "smoke: None" in result.stdout, result.stdout
    assert "certifi: refused" in result.stdout, result.stdout
    assert front.seen[:1] == ["GET /health HTTP/1.1"]  # the first request of each connection (keep-alive)


def test_a_staging_url_behind_a_ca_nobody_installed_is_reported_as_untrusted_not_unreachable(
        tmp_path: Path, service: str, ca: PrivateCa) -> None:
    with TlsFront(service, ca) as front:
        url = f"https://{NAME}:{front.port}"
        result = run_in_view(tmp_path, [], f"from coordinator.stages.stage import builtin_smoke\n"
                                           f"print(builtin_smoke({url!r}, '1.0.0'))")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (f"{url}: its TLS certificate is not trusted (unable to get local issuer "
                                     "certificate); add its CA to the system trust store"), result.stdout
    assert front.seen == [] and front.refused >= 1


_RESOLVE = """
from pathlib import Path
from coordinator.errors import CoordinatorError
from coordinator.registry import resolve_digest
try:
    print('digest:', resolve_digest({image!r}, '1.0.0', ca_file={ca_file}))
except CoordinatorError as exc:
    print('exit', int(exc.exit_code), exc.message)
"""


@pytest.mark.parametrize("where", ["system store", "image.registry_ca_file"])
def test_the_registry_check_trusts_the_system_store_and_adds_registry_ca_file(
        tmp_path: Path, service: str, ca: PrivateCa, where: str) -> None:
    with TlsFront(service, ca) as front:
        image = f"{NAME}:{front.port}/acme/sample"
        in_store = where == "system store"
        # The view's store is empty in the second case: the configured file adds to it, alone.
        result = run_in_view(tmp_path, [ca.ca_file] if in_store else [],
                             _RESOLVE.format(image=image, ca_file="None" if in_store else f"Path({str(ca.ca_file)!r})"))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"digest: {DIGEST}", result.stdout
    assert front.seen == ["HEAD /v2/acme/sample/manifests/1.0.0 HTTP/1.1"]


def test_a_registry_behind_an_untrusted_ca_exits_2_naming_the_fix_not_unreachable(
        tmp_path: Path, service: str, ca: PrivateCa) -> None:
    with TlsFront(service, ca) as front:
        image = f"{NAME}:{front.port}/acme/sample"
        result = run_in_view(tmp_path, [], _RESOLVE.format(image=image, ca_file="None"))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"exit 2 registry {NAME}:{front.port}'s TLS certificate is not trusted (unable to get local issuer "
        "certificate): add its CA to the system trust store or name it in image.registry_ca_file"), result.stdout
    assert "resume" not in result.stdout
    assert front.seen == []


def test_a_registry_ca_file_that_does_not_load_exits_2_naming_the_setting(tmp_path: Path) -> None:
    missing, garbage = tmp_path / "missing.pem", tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    for path, reason in ((missing, "No such file or directory"), (garbage, "")):
        result = run_in_view(tmp_path, [], _RESOLVE.format(image=f"{NAME}:443/acme/sample",
                                                           ca_file=f"Path({str(path)!r})"))
        assert result.returncode == 0, result.stderr
        line = result.stdout.strip()
        assert line.startswith(f"exit 2 image.registry_ca_file: {path} cannot be loaded ("), line
        assert reason in line and line.endswith("point it at a PEM file of CA certificates"), line


@pytest.mark.world
@pytest.mark.parametrize("trusted", [True, False], ids=["ca in the system store", "ca nobody installed"])
def test_plan_checks_the_real_registry_over_https_as_the_system_store_says(
        release_world: ReleaseWorld, tmp_path: Path, trusted: bool) -> None:
    """Through the CLI: the world's registry (Debian's docker-registry) behind HTTPS with the test CA."""
    ca = PrivateCa.make(tmp_path / "ca", [NAME])
    with TlsFront(IMAGE.split("/", 1)[0], ca) as front:
        registry = f"{NAME}:{front.port}"
        release_world.rewrite_config(image={"name": f"{registry}/{IMAGE.split('/', 1)[1]}"})
        (tmp_path / "no-docker-config").mkdir()
        argv = [sys.executable, "-m", "coordinator", "-c", str(release_world.config), "plan", "1.0.0"]
        result = subprocess.run(
            view_argv(hosts_file(tmp_path / "hosts", [NAME]), certs_dir(tmp_path / "certs", [ca.ca_file] if trusted else []),
                      argv),
            capture_output=True, text=True, timeout=600, check=False, stdin=subprocess.DEVNULL,
            env=plain_env(COORDINATOR_OPERATOR="release-manager", DOCKER_CONFIG=str(tmp_path / "no-docker-config")))

    output = result.stdout + result.stderr
    if trusted:
        assert result.returncode != ExitCode.USAGE and "not trusted" not in output, output
        assert any(line.startswith("HEAD /v2/acme/sample/manifests/") for line in front.seen), front.seen
    else:
        assert result.returncode == ExitCode.USAGE, output
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert errors == [f"error: registry {registry}'s TLS certificate is not trusted (unable to get local issuer "
                          "certificate): add its CA to the system trust store or name it in image.registry_ca_file"], output
        assert front.seen == [] and front.refused >= 1


@pytest.mark.world
def test_plan_with_a_registry_ca_file_that_does_not_load_exits_2_naming_the_setting(
        release_world: ReleaseWorld, tmp_path: Path) -> None:
    missing = tmp_path / "internal-ca.pem"
    release_world.rewrite_config(image={"name": IMAGE, "registry_ca_file": str(missing)})
    (tmp_path / "no-docker-config").mkdir()

    result = release_world.coordinator("plan", "1.0.0", env={"DOCKER_CONFIG": str(tmp_path / "no-docker-config")})

    assert result.returncode == ExitCode.USAGE, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: image.registry_ca_file: {missing} cannot be loaded (No such file or directory): "
                      "point it at a PEM file of CA certificates"], result.stderr
