"""A local endoflife.date API v1 for refresh tests: recorded-shape responses on 127.0.0.1.

`api_document` writes a product as `GET /api/v1/products/{product}` returns it (the shape of the API's
OpenAPI description: ProductResponse / ProductDetails / ProductRelease, with the fields distroguard
ignores too). `EolApiServer` serves those, or scripted failures per product (404, 429, 500, junk).

Like the real API (a CDN in front of static files), a document carries an ETag (a hash of its body) and a
Last-Modified, and a request whose If-None-Match names the current ETag, or, without one, whose
If-Modified-Since is not before Last-Modified, gets 304 Not Modified with no body. `products` may be
changed while it runs (a moved date, a new release): the ETag follows.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from aiohttp import web

from distroguard.model import ProductLifecycle, ReleaseCycle
from distroguard.model.lifecycle import PhaseEnd
from support.threaded import ThreadedApp


def _phase(prefix: str, value: PhaseEnd | None, release: dict[str, Any]) -> None:
    if value is None:
        return  # the product has no such phase: the fields are absent
    release[f"is{prefix}"] = value if isinstance(value, bool) else value <= date(2026, 8, 22)
    release[f"{prefix.lower()}From"] = None if isinstance(value, bool) else value.isoformat()


def api_release(cycle: ReleaseCycle) -> dict[str, Any]:
    release: dict[str, Any] = {
        "name": cycle.cycle,
        "codename": cycle.codename,
        "label": cycle.cycle,
        "releaseDate": cycle.release_date.isoformat() if cycle.release_date else None,
        "isLts": cycle.lts is not False,
        "ltsFrom": None if isinstance(cycle.lts, bool) else cycle.lts.isoformat(),
    }
    _phase("Eoas", cycle.eoas, release)
    _phase("Eol", cycle.eol, release)
    _phase("Eoes", cycle.eoes, release)
    release["isMaintained"] = not release["isEol"]
    release["latest"] = (
        {"name": cycle.latest, "date": None, "link": None} if cycle.latest is not None else None
    )
    release["custom"] = None
    return release


def api_document(product: ProductLifecycle) -> dict[str, Any]:
    return {
        "schema_version": "1.2.1",
        "generated_at": "2026-11-28T06:00:00+00:00",
        "last_modified": "2026-11-27T18:30:00+00:00",
        "result": {
            "name": product.name,
            "label": product.label,
            "aliases": [],
            "category": product.category,
            "tags": [product.category],
            "versionCommand": None,
            "identifiers": [{"id": f"cpe:/o:{product.name}", "type": "cpe"}],
            "labels": {"eoas": None, "discontinued": None, "eol": "Security Support", "eoes": None},
            "links": {"icon": None, "html": f"https://endoflife.date/{product.name}", "releasePolicy": None},
            "releases": [api_release(c) for c in product.cycles],
        },
    }


LAST_MODIFIED = datetime(2026, 11, 27, 18, 30, tzinfo=UTC)


def _not_modified(request: web.Request, etag: str, modified: datetime) -> bool:
    """RFC 9110 13.2.2: If-None-Match decides when present; else If-Modified-Since."""
    tags = request.headers.get("If-None-Match")
    if tags is not None:
        return etag in [t.strip() for t in tags.split(",")] or tags.strip() == "*"
    since = request.headers.get("If-Modified-Since")
    if since is None:
        return False
    try:
        return modified <= parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False


@dataclass
class Reply:
    status: int = 200
    body: bytes | None = None
    """None: the product's API document."""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class EolApiServer:
    """Serves `/api/v1/products/{product}`; `script[product]` lists replies, the last one repeats."""

    products: dict[str, ProductLifecycle]
    script: dict[str, list[Reply]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    conditions: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    """(product, If-None-Match, If-Modified-Since) of every request."""
    modified: dict[str, datetime] = field(default_factory=dict)
    """Last-Modified by product (default `LAST_MODIFIED`): set it when a test changes a product."""
    validators: bool = True
    """False: no ETag nor Last-Modified (a server that does not support conditional requests)."""
    _app: ThreadedApp | None = None
    _url: str = ""

    def change(self, product: ProductLifecycle, when: datetime) -> None:
        """Serve a new version of `product`, modified at `when`."""
        self.products[product.name] = product
        self.modified[product.name] = when

    def answered(self, status: int) -> list[str]:
        """The products that got `status` (200 or 304), in request order."""
        return [name for name, code in self._answers if code == status]

    def __post_init__(self) -> None:
        self._answers: list[tuple[str, int]] = []

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["product"]
        self.requests.append(name)
        self.conditions.append(
            (name, request.headers.get("If-None-Match"), request.headers.get("If-Modified-Since"))
        )
        if name == "moved":
            raise web.HTTPMovedPermanently("/api/v1/products/debian")
        replies = self.script.get(name) or [Reply()]
        reply = replies.pop(0) if len(replies) > 1 else replies[0]
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.body is None and reply.status == 200:
            if name not in self.products:
                return web.Response(status=404, text="<html>Not Found</html>", content_type="text/html")
            body = json.dumps(api_document(self.products[name])).encode()
            if not self.validators:
                self._answers.append((name, 200))
                return web.Response(body=body, content_type="application/json")
            etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
            modified = self.modified.get(name, LAST_MODIFIED)
            headers = {"ETag": etag, "Last-Modified": format_datetime(modified, usegmt=True)}
            if _not_modified(request, etag, modified):
                self._answers.append((name, 304))
                return web.Response(status=304, headers=headers)
            self._answers.append((name, 200))
            return web.Response(body=body, content_type="application/json", headers=headers)
        return web.Response(status=reply.status, body=reply.body or b"", headers=reply.headers)

    def start(self) -> EolApiServer:
        app = web.Application()
        app.router.add_get("/api/v1/products/{product}", self._handle)
        self._app = ThreadedApp(app, name="eol-api").start()
        self._url = self._app.url
        return self

    def stop(self) -> None:
        if self._app is not None:
            self._app.stop()
            self._app = None

    @property
    def url(self) -> str:
        return self._url
