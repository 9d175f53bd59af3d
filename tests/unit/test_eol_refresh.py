"""`eol update` against a local endoflife.date API on 127.0.0.1: success, and every failure leaving the
catalog in use exactly as it was."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from distroguard.cli.eol import eol
from distroguard.eol import bundled_snapshot, load_catalog
from distroguard.eol.refresh import RefreshSettings, fetch_snapshot
from distroguard.errors import CatalogUpdateError
from support.eol_api import EolApiServer, Reply

TODAY = date(2026, 11, 28)
PRODUCTS = {p.name: p for p in bundled_snapshot().products}
FEW = ["debian", "python", "nodejs"]


@pytest.fixture
def server() -> Iterator[EolApiServer]:
    running = EolApiServer(dict(PRODUCTS)).start()
    yield running
    running.stop()


def settings(server: EolApiServer, **overrides: float) -> RefreshSettings:
    values = {"deadline": 10.0, "backoff": 0.01, "max_retry_wait": 2.0, **overrides}
    return RefreshSettings(
        base_url=server.url,
        deadline=values["deadline"],
        backoff=values["backoff"],
        max_retry_wait=values["max_retry_wait"],
    )


async def test_fetches_every_product(server: EolApiServer) -> None:
    snapshot = await fetch_snapshot(FEW, settings(server), TODAY)
    assert [p.name for p in snapshot.products] == FEW
    assert snapshot.snapshot == TODAY
    assert snapshot.source == f"endoflife.date API v1 at {server.url}"
    assert snapshot.products[0] == PRODUCTS["debian"]


async def test_an_api_root_url_works_too(server: EolApiServer) -> None:
    configured = RefreshSettings(base_url=f"{server.url}/api/v1/")
    assert configured.url("debian") == f"{server.url}/api/v1/products/debian"
    snapshot = await fetch_snapshot(["debian"], configured, TODAY)
    assert snapshot.products[0].name == "debian"


async def test_redirects_are_followed_and_the_asked_name_kept(server: EolApiServer) -> None:
    snapshot = await fetch_snapshot(["moved"], settings(server), TODAY)
    assert snapshot.products[0].name == "moved"
    assert snapshot.products[0].cycles == PRODUCTS["debian"].cycles


async def test_429_with_a_short_retry_after_is_retried(server: EolApiServer) -> None:
    server.script["python"] = [Reply(429, b"slow down", {"Retry-After": "0"}), Reply()]
    snapshot = await fetch_snapshot(FEW, settings(server), TODAY)
    assert len(snapshot.products) == 3
    assert server.requests.count("python") == 2


async def test_500_once_is_retried(server: EolApiServer) -> None:
    server.script["nodejs"] = [Reply(500, b"oops"), Reply()]
    snapshot = await fetch_snapshot(FEW, settings(server), TODAY)
    assert len(snapshot.products) == 3


FAILURES = [
    ("404", {"debian": [Reply(404, b"<html>Not Found</html>")]}, "endoflife.date has no product 'debian'"),
    (
        "429 with a long Retry-After",
        {"python": [Reply(429, b"", {"Retry-After": "120"})]},
        "answered 429 Too Many Requests (Retry-After: 120): endoflife.date is rate-limiting; try later",
    ),
    ("429 without Retry-After", {"python": [Reply(429)]}, "answered 429 Too Many Requests: "),
    ("500 every time", {"nodejs": [Reply(500, b"oops")]}, "answered HTTP 500 (after 3 attempt(s))"),
    (
        "malformed JSON",
        {"debian": [Reply(200, b'{"schema_version": "1.2.1", "result": {')]},
        "returned malformed JSON",
    ),
    (
        "unexpected document",
        {"debian": [Reply(200, json.dumps({"schema_version": "1", "result": {"name": "debian"}}).encode())]},
        "returned an unexpected document (3 problem(s); first: result.label: Field required)",
    ),
    (
        "no releases",
        {
            "debian": [
                Reply(
                    200,
                    json.dumps(
                        {
                            "schema_version": "1",
                            "result": {"name": "debian", "label": "Debian", "category": "os", "releases": []},
                        }
                    ).encode(),
                )
            ]
        },
        "lists no releases for debian",
    ),
]


@pytest.mark.parametrize(("script", "message"), [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES])
async def test_failures_raise_a_clear_error(
    server: EolApiServer, script: dict[str, list[Reply]], message: str
) -> None:
    server.script.update(script)
    started = time.monotonic()
    with pytest.raises(CatalogUpdateError) as caught:
        await fetch_snapshot(FEW, settings(server), TODAY)
    assert message in str(caught.value)
    assert server.url in str(caught.value) or "endoflife.date has no product" in str(caught.value)
    assert time.monotonic() - started < 5  # a long Retry-After fails at once, it is not waited out


async def test_the_deadline_bounds_the_whole_refresh(server: EolApiServer) -> None:
    server.script["debian"] = [Reply(delay=3.0)]
    started = time.monotonic()
    with pytest.raises(CatalogUpdateError, match=r"did not finish within its 0\.5 s deadline"):
        await fetch_snapshot(FEW, settings(server, deadline=0.5), TODAY)
    assert time.monotonic() - started < 2.5


async def test_an_unreachable_server(server: EolApiServer) -> None:
    url = server.url
    server.stop()
    closed = RefreshSettings(base_url=url, deadline=5.0, backoff=0.01)
    with pytest.raises(CatalogUpdateError, match="cannot reach"):
        await fetch_snapshot(["debian"], closed, TODAY)


# The command line: the cache is replaced atomically, or left exactly as it was.


def test_update_writes_the_cache(server: EolApiServer, tmp_path: Path) -> None:
    cache = tmp_path / "eol.json"
    result = CliRunner().invoke(eol, ["update", "--url", server.url, "--cache", str(cache)])
    assert result.exit_code == 0, result.output
    assert f"updated {cache}: {len(PRODUCTS)} products" in result.output
    loaded = load_catalog(cache)
    assert loaded.origin == "cache"
    assert {p.name for p in loaded.catalog.products} == set(PRODUCTS)


@pytest.mark.parametrize(("script", "message"), [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES])
def test_a_failed_update_keeps_the_previous_catalog(
    server: EolApiServer, tmp_path: Path, script: dict[str, list[Reply]], message: str
) -> None:
    cache = tmp_path / "eol.json"
    first = CliRunner().invoke(eol, ["update", "--url", server.url, "--cache", str(cache)])
    assert first.exit_code == 0, first.output
    before = cache.read_bytes()
    server.script.update(script)
    result = CliRunner().invoke(eol, ["update", "--url", server.url, "--cache", str(cache)])
    assert result.exit_code == 2
    assert message in result.output
    assert "the EOL catalog was not changed: still using the cache snapshot" in result.output
    assert cache.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["eol.json"]


def test_a_failed_first_update_keeps_the_bundled_snapshot(server: EolApiServer, tmp_path: Path) -> None:
    cache = tmp_path / "eol.json"
    server.script["debian"] = [Reply(404)]
    result = CliRunner().invoke(eol, ["update", "--url", server.url, "--cache", str(cache)])
    assert result.exit_code == 2
    assert "still using the bundled snapshot 2026-08-22" in result.output
    assert not cache.exists()
