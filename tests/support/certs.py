"""Throw-away X.509 certificates for test servers: a CA, the leaf certificates it signs, PEM files.

Every TLS peer in the tests (the kube-apiserver control plane, the TLS docker registry, the
registry's token server) needs the same few shapes of certificate, so they are built here once:

* `new_ca` makes a self-signed certificate authority; its certificate is also what a client or the
  registry (`rootcertbundle`) trusts, and its key may sign other things (JWTs) directly;
* `issue` makes a leaf signed by a CA, for serving (`server=True`), client authentication
  (`client=True`) or both, with the IP/DNS subject alternative names that hostname checks need;
* `write_cert`, `write_private_key` and `write_public_key` put them on disk for processes that read
  files (private keys mode 0600, as kube-apiserver and etcd expect of key files).

All keys are EC P-256 and all signatures ECDSA-SHA256: quick to generate, and accepted by Go's
crypto/tls and x509 (kube-apiserver, etcd, distribution) as well as by OpenSSL (Python's `ssl`).
Certificates start being valid a little in the past so a peer whose clock runs slightly behind
still accepts them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_VALIDITY = dt.timedelta(days=7)
"""How long certificates stay valid: longer than any test session or `scripts/testenv up` shell."""

BACKDATE = dt.timedelta(minutes=5)
"""How far in the past validity starts (clock skew between the test and the server it starts)."""


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        """The private key, unencrypted PKCS#8 (what Go's `tls.LoadX509KeyPair` and OpenSSL read)."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def write(self, cert_path: Path, key_path: Path) -> None:
        """Both halves as PEM files, the key readable only by its owner."""
        write_cert(cert_path, self.cert)
        write_private_key(key_path, self.key)


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 key, the one key type used throughout the tests."""
    return ec.generate_private_key(ec.SECP256R1())


def new_ca(common_name: str, *, validity: dt.timedelta = DEFAULT_VALIDITY) -> Issued:
    """A self-signed CA that may sign leaves (path length 0) but not intermediate CAs."""
    key = new_key()
    name = _name(common_name)
    cert = (
        _builder(name, key, validity)
        .issuer_name(name)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def issue(
    ca: Issued,
    common_name: str,
    *,
    ip_sans: Sequence[str] = (),
    dns_sans: Sequence[str] = (),
    client: bool = False,
    server: bool = True,
    organizations: Sequence[str] = (),
    validity: dt.timedelta = DEFAULT_VALIDITY,
) -> Issued:
    """A leaf certificate signed by `ca`.

    Hostname verification uses only the subject alternative names, never the CN, so a serving
    certificate needs `ip_sans`/`dns_sans` for every address clients dial. `server`/`client` choose
    the extended key usages; Go refuses a certificate whose extended key usage does not match its
    role. kube-apiserver reads a client certificate's CN as the user and each O as a group, hence
    `organizations` (e.g. `["system:masters"]` for an administrator).
    """
    if isinstance(organizations, str):
        raise TypeError("organizations is a sequence of names, not one string")
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] if server else []
    usages += [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    if not usages:
        raise ValueError("a leaf certificate is for serving, client authentication or both")
    key = new_key()
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    builder = (
        _builder(x509.Name(attributes), key, validity)
        .issuer_name(ca.cert.subject)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_sans]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_sans]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def write_cert(path: Path, cert: x509.Certificate) -> Path:
    """`cert` as a PEM file (a CA bundle, a `--client-ca-file`, a `rootcertbundle`); returns `path`."""
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def write_private_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    """`key` as an unencrypted PKCS#8 PEM file created with mode 0600 (never briefly world-readable)."""
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def write_public_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    """The public half of `key` as a SubjectPublicKeyInfo PEM file (e.g. a token verification key)."""
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: x509.Name, key: ec.EllipticCurvePrivateKey, validity: dt.timedelta
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + validity)
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """ECDSA keys only sign: handshakes (every key) and, for a CA, certificates and CRLs."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )
