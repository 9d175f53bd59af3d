"""A throwaway certificate authority and a server certificate for 127.0.0.1 / localhost."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from support import certs


@dataclass(frozen=True)
class TestPKI:
    ca_pem: Path
    cert_pem: Path
    key_pem: Path

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_pem))


def make_pki(directory: Path) -> TestPKI:
    """PEM files for a TLS registry on 127.0.0.1 and the CA that clients must trust to reach it."""
    ca = certs.new_ca("distroguard test CA")
    server = certs.issue(ca, "127.0.0.1", ip_sans=["127.0.0.1"], dns_sans=["localhost"])
    pki = TestPKI(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    certs.write_cert(pki.ca_pem, ca.cert)
    server.write(pki.cert_pem, pki.key_pem)
    return pki
