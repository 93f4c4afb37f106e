"""HTTPS in front of a loopback HTTP service, with a certificate from a CA made for the test.

The world's registry (Debian's docker-registry) and the sample app speak plain HTTP on
loopback. A private registry or a staging URL in a company speaks HTTPS with a certificate
from the company's own CA. This front terminates TLS on 127.0.0.1 with a server certificate
for the names the test gives (e.g. `registry.test`, resolved to 127.0.0.1 in a private mount
view, see trust_view.py) and passes the bytes on to the real service unchanged.

`PrivateCa` makes the CA and the server certificate (RSA 2048, valid for a day) with the
`cryptography` package that ansible-core already brings. `seen` keeps the first request line
of every connection whose handshake completed, so a test knows the client trusted the front
and what it asked; `refused` counts handshakes the client broke off.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import socketserver
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.sandbox.http_front import ServedInThread

_IO_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class PrivateCa:
    """A CA's certificate (PEM file) and a server certificate and key it signed (PEM files)."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    @classmethod
    def make(cls, directory: Path, names: list[str]) -> PrivateCa:
        """A new CA under `directory`, and a certificate for `names` (DNS names; 127.0.0.1 is always in)."""
        directory.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "coordinator test CA")])
        ca_cert = (
            x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in names]
        alt_names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
        cert = (
            x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        paths = cls(ca_file=directory / "ca.pem", cert_file=directory / "server.pem", key_file=directory / "server.key")
        paths.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        paths.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        paths.key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
        paths.key_file.chmod(0o600)
        return paths


class TlsFront(ServedInThread):
    """TLS on 127.0.0.1 (an ephemeral port) in front of `upstream` (host:port, plain HTTP); a context manager."""

    def __init__(self, upstream: str, ca: PrivateCa) -> None:
        host, port = upstream.rsplit(":", 1)
        self._upstream = (host, int(port))
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(str(ca.cert_file), str(ca.key_file))
        self.seen: list[str] = []
        self.refused = 0
        self._lock = threading.Lock()
        front = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                front._serve(self.request)

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self.port = int(server.server_address[1])
        super().__init__(server, "tls-front")

    def _serve(self, raw: socket.socket) -> None:
        raw.settimeout(_IO_TIMEOUT_S)
        try:
            client = self._context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            with self._lock:
                self.refused += 1  # the client did not trust us (or hung up)
            return
        with client, socket.create_connection(self._upstream, timeout=_IO_TIMEOUT_S) as upstream:
            first = True
            pump = threading.Thread(target=_copy, args=(upstream, client), daemon=True)
            pump.start()
            while data := _recv(client):
                if first:
                    with self._lock:
                        self.seen.append(data.split(b"\r\n", 1)[0].decode("latin-1"))
                    first = False
                upstream.sendall(data)
            upstream.shutdown(socket.SHUT_WR)
            pump.join(timeout=_IO_TIMEOUT_S)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except (OSError, ssl.SSLError):
        return b""


def _copy(source: socket.socket, target: socket.socket) -> None:
    while data := _recv(source):
        try:
            target.sendall(data)
        except (OSError, ssl.SSLError):
            return
