"""The CLI's deferred CA loading: a context made under `deferred_ca()` reads no bundle until its first
connection, then verifies exactly as an ordinary one (a real TLS handshake on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from distroguard.cli.deferredca import deferred_ca, owes_ca, settle
from distroguard.operator.dev import certs as devcerts


def _ca_count(context: ssl.SSLContext) -> int:
    return context.cert_store_stats()["x509_ca"]


def test_a_context_made_inside_reads_no_bundle_until_settled() -> None:
    with deferred_ca():
        context = ssl.create_default_context()
    assert owes_ca(context)
    assert _ca_count(context) == 0
    settle(context)
    assert not owes_ca(context)
    assert _ca_count(context) == _ca_count(ssl.create_default_context())


def test_the_ssl_module_is_left_as_it_was() -> None:
    before = dict(vars(ssl.SSLContext))
    with deferred_ca():
        assert vars(ssl.SSLContext) != before
    assert dict(vars(ssl.SSLContext)) == before
    outside = ssl.create_default_context()
    assert not owes_ca(outside)
    assert "wrap_bio" not in vars(outside)


def test_the_ssl_module_is_restored_when_the_import_fails() -> None:
    before = dict(vars(ssl.SSLContext))
    with pytest.raises(ImportError), deferred_ca():
        raise ImportError("a command's module failed to import")
    assert dict(vars(ssl.SSLContext)) == before


def test_an_unverified_context_defers_too_and_stays_unverified() -> None:
    with deferred_ca():
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_default_verify_paths()
    assert owes_ca(context)
    settle(context)
    assert context.verify_mode == ssl.CERT_NONE


async def _handshake(context: ssl.SSLContext, certs: devcerts.DevCertificates) -> None:
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(certs.cert_file, certs.key_file)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"ok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=served)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="127.0.0.1"), 10
        )
        assert await asyncio.wait_for(reader.read(), 10) == b"ok"
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


def test_the_first_connection_loads_the_bundle_and_verifies_against_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bundle is read at the handshake, from where it is then (SSL_CERT_FILE here): a server the
    bundle vouches for is accepted, and one it does not is refused."""
    (tmp_path / "trusted").mkdir()
    (tmp_path / "stranger").mkdir()
    trusted = devcerts.generate(tmp_path / "trusted")
    stranger = devcerts.generate(tmp_path / "stranger")
    monkeypatch.setenv("SSL_CERT_FILE", str(trusted.ca_file))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with deferred_ca():
        context = ssl.create_default_context()
        refusing = ssl.create_default_context()
    assert owes_ca(context)
    assert owes_ca(refusing)

    asyncio.run(_handshake(context, trusted))
    assert not owes_ca(context)
    assert _ca_count(context) == 1

    with pytest.raises(ssl.SSLCertVerificationError):
        asyncio.run(_handshake(refusing, stranger))
    assert not owes_ca(refusing)
