"""A staging URL behind HTTPS, through the CLI: trusted by the system store, or refused and named.

The staging app is the world's real one (sample-staging on 127.0.0.1:45080), behind the TLS
front of tests/sandbox/tls_front.py with a CA made for the test. `release` runs in a private
mount view (tests/sandbox/trust_view.py) whose /etc/ssl/certs trusts that CA or nothing, and
whose /etc/hosts names the front. The untrusted party is the server: a certificate from a CA
nobody installed must fail the smoke test, and the operator must be told that, not "unreachable".
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from coordinator.errors import ExitCode
from tests.drills.conftest import configure, escalations, one_line_error, push_variant, release_to_production
from tests.drills.test_deploy_drills import PROD, assert_free, events_of
from tests.integration.conftest import ReleaseWorld, running_digest
from tests.integration.test_trust_store import NAME, plain_env
from tests.sandbox.coordinator_config import STAGING_URL
from tests.sandbox.tls_front import PrivateCa, TlsFront
from tests.sandbox.trust_view import certs_dir, hosts_file, view_argv

pytestmark = pytest.mark.world


def release_in_view(rw: ReleaseWorld, tmp_path: Path, trusted: list[Path], version: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "coordinator", "-c", str(rw.config), "release", version]
    completed = subprocess.run(
        view_argv(hosts_file(tmp_path / "hosts", [NAME]), certs_dir(tmp_path / "certs", trusted), argv),
        capture_output=True, text=True, timeout=900, check=False, stdin=subprocess.DEVNULL,
        env=plain_env(COORDINATOR_OPERATOR="release-manager"))
    rw.outputs.append(completed.stdout + completed.stderr)
    return completed


@pytest.mark.parametrize("trusted", [True, False], ids=["ca in the system store", "ca nobody installed"])
def test_the_staging_smoke_over_https_trusts_the_system_store_and_names_a_refused_certificate(
        release_world: ReleaseWorld, tmp_path: Path, trusted: bool) -> None:
    rw = release_world
    configure(rw)
    release_to_production(rw, "1.0.0")
    production_before = running_digest(PROD)
    ca = PrivateCa.make(tmp_path / "ca", [NAME])
    push_variant(rw, "good", "1.1.0")

    with TlsFront(STAGING_URL.removeprefix("http://"), ca) as front:
        url = f"https://{NAME}:{front.port}"
        configure(rw, staging={"url": url})
        result = release_in_view(rw, tmp_path, [ca.ca_file] if trusted else [], "1.1.0")

    if trusted:
        assert result.returncode == ExitCode.AWAITING_APPROVAL, result.stdout + result.stderr
        assert front.seen[:1] == ["GET /health HTTP/1.1"], front.seen
        assert ("stage.deployed", "staging", "passed") in events_of(rw, "1.1.0")
        return
    assert result.returncode == ExitCode.DEPLOY_FAILED, result.stdout + result.stderr
    assert one_line_error(result) == (
        f"error: smoke test on staging failed: {url}: its TLS certificate is not trusted (unable to get local "
        "issuer certificate); add its CA to the system trust store; production untouched")
    assert escalations(rw) == []  # production untouched: nothing to page about
    assert_free(rw, "staging")
    # The staging lock is given back before the failure is recorded; the record names the smoke.
    assert events_of(rw, "1.1.0")[4:] == [("lock.acquired", "staging", "acquired"), ("lock.released", "staging", "released"),
                                          ("stage.failed", "staging", "smoke_failed")]
    assert front.seen == [] and front.refused >= 1
    assert running_digest(PROD) == production_before
