"""coordinator/tls.py: one trust store (the system's, plus a CA file), built once per CA file."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest

from coordinator.tls import CaFileError, trust_context, untrusted_certificate
from tests.sandbox.tls_front import PrivateCa


def test_a_ca_file_is_added_to_the_system_store_not_put_in_its_place(tmp_path: Path) -> None:
    ca = PrivateCa.make(tmp_path / "ca", ["service.test"])
    system = trust_context(None).cert_store_stats()["x509_ca"]

    added = trust_context(ca.ca_file)

    subjects = [dict(part[0] for part in cert["subject"]) for cert in added.get_ca_certs()]
    assert {"commonName": "coordinator test CA"} in subjects
    assert added.cert_store_stats()["x509_ca"] == system + 1
    assert added.verify_mode == ssl.CERT_REQUIRED and added.check_hostname


def test_one_context_per_ca_file_for_the_whole_process(tmp_path: Path) -> None:
    ca = PrivateCa.make(tmp_path / "ca", ["service.test"])
    assert trust_context(None) is trust_context(None)
    assert trust_context(ca.ca_file) is trust_context(ca.ca_file)
    assert trust_context(ca.ca_file) is not trust_context(None)


def test_the_smoke_test_shares_the_system_store_s_context_with_the_forge(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache keys on the arguments as passed: a bare trust_context() would load the store again."""
    from coordinator.forge._http import _ssl_context
    from coordinator.stages import stage

    verified_with: list[object] = []

    def client(**kwargs: object) -> httpx.Client:
        verified_with.append(kwargs["verify"])
        raise httpx.ConnectError("no network in a unit test")

    monkeypatch.setattr(stage.httpx, "Client", client)
    stage.builtin_smoke("https://service.test", "1.0.0")

    assert len(verified_with) == 1 and verified_with[0] is _ssl_context(None)


@pytest.mark.parametrize("content", [None, "not a certificate\n"], ids=["missing", "not pem"])
def test_a_ca_file_that_does_not_load_names_the_file_and_the_fix(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_text(content)
    with pytest.raises(CaFileError, match=rf"^{path} cannot be loaded \(.+\): point it at a PEM file of CA certificates$"):
        trust_context(path)
    with pytest.raises(CaFileError):  # a refusal is not kept: the next client is refused too
        trust_context(path)


def test_only_a_refused_certificate_counts_as_untrusted() -> None:
    verify_failed = ssl.SSLCertVerificationError(1, "certificate verify failed")
    verify_failed.verify_message = "unable to get local issuer certificate"
    wrapped = httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED]")
    wrapped.__cause__ = verify_failed

    assert untrusted_certificate(wrapped) == "unable to get local issuer certificate"
    assert untrusted_certificate(httpx.ConnectError("[Errno 111] Connection refused")) is None
    assert untrusted_certificate(httpx.ReadTimeout("timed out")) is None
