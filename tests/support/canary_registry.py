"""A stand-in registry on 127.0.0.1 that puts one canary string in everything a registry controls.

Each repository is a scenario: a well-formed Debian image whose config, manifest, index and headers carry
the canary in every field distroguard does not need (`good`), and repositories that fail in each way a
registry can make a lookup fail, each failure carrying the canary in its body, headers, redirect target,
challenge or token response. Whatever distroguard prints, answers or exports about these images must not
contain the canary (in any letter case: host names are lowercased on the way).

    with CanaryRegistry() as canary:
        canary.ref("good")            # 127.0.0.1:PORT/good:1
        canary.scenarios              # every repository
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from distroguard.registry import mediatypes as mt
from support.distros import DEBIAN_12_ROOT
from support.images import BuiltImage, ImageBuilder, canonical_json, sha256
from support.threaded import ThreadedApp

CANARY = "Canary-7Q3z-AKIASECRET"
"""Mixed case on purpose: a test looks for it case-insensitively (host names come back lowercased)."""
HOST_CANARY = CANARY.lower()


def leaks(texts: list[str]) -> list[str]:
    """Each text holding the canary (in any case), cut around it."""
    found = []
    for text in texts:
        at = text.lower().find(HOST_CANARY)
        if at >= 0:
            found.append(text[max(0, at - 150) : at + 60])
    return found


def _image() -> BuiltImage:
    """Debian 12, with the canary in every config field the scan does not read as a fact."""
    return (
        ImageBuilder()
        .layer(DEBIAN_12_ROOT)
        .label("org.opencontainers.image.description", CANARY)
        .label(CANARY, CANARY)
        .env(f"{CANARY.upper().replace('-', '_')}={CANARY}", f"HOME=/{CANARY}")
        .annotate("org.opencontainers.image.source", CANARY)
        .annotate(CANARY, CANARY)
        .config_fields(author=CANARY, comment=CANARY, container=CANARY, os_version=CANARY)
        .build()
    )


IMAGE = _image()


def _index(entries: list[dict[str, Any]]) -> bytes:
    return canonical_json({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries})


def _manifest(**changes: Any) -> bytes:
    document = json.loads(IMAGE.manifest)
    document.update(changes)
    return canonical_json(document)


class CanaryRegistry:
    """The stand-in, serving in a thread of its own (usable from any event loop, and from the CLI)."""

    def __init__(self) -> None:
        self._app = ThreadedApp(self._application(), name="canary-registry")
        self.requests: list[str] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._app.port}"

    def ref(self, scenario: str) -> str:
        return f"{self.address}/{scenario}:1"

    def start(self) -> CanaryRegistry:
        self._app.start()
        self._build()
        return self

    def stop(self) -> None:
        self._app.stop()

    def __enter__(self) -> CanaryRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------------ scenarios

    def _build(self) -> None:
        canary_platform = {"os": CANARY, "architecture": CANARY, "variant": CANARY}
        odd = _manifest(annotations={CANARY: CANARY, "x": CANARY})
        good_index = _index(
            [
                {**json.loads(json.dumps(IMAGE.descriptor())), "annotations": {CANARY: CANARY}},
                {
                    "mediaType": mt.OCI_MANIFEST,
                    "digest": sha256(odd),
                    "size": len(odd),
                    "platform": canary_platform,
                },
                {
                    "mediaType": mt.OCI_MANIFEST,
                    "digest": sha256(odd),
                    "size": len(odd),
                    "platform": {"os": "linux", "architecture": CANARY},
                },
            ]
        )
        only_canary = _index(
            [
                {
                    "mediaType": mt.OCI_MANIFEST,
                    "digest": sha256(odd),
                    "size": len(odd),
                    "platform": canary_platform,
                }
            ]
        )
        self.manifests: dict[str, tuple[str, bytes]] = {
            "good": (mt.OCI_INDEX, good_index),
            "single": (mt.OCI_MANIFEST, IMAGE.manifest),
            "media-type": (mt.OCI_MANIFEST, _manifest(mediaType=CANARY)),
            "content-type": (CANARY, _manifest(mediaType=CANARY)),
            "schema": (mt.OCI_MANIFEST, _manifest(schemaVersion=CANARY)),
            "config-digest": (
                mt.OCI_MANIFEST,
                _manifest(config={"mediaType": mt.OCI_CONFIG, "digest": CANARY, "size": 10}),
            ),
            "config-size": (
                mt.OCI_MANIFEST,
                _manifest(config={"mediaType": CANARY, "digest": IMAGE.config_digest, "size": CANARY}),
            ),
            "layer-type": (
                mt.OCI_MANIFEST,
                _manifest(layers=[{**IMAGE.layers[0].descriptor(), "mediaType": CANARY}]),
            ),
            "annotations": (mt.OCI_MANIFEST, _manifest(annotations={CANARY: 1})),
            "platforms": (mt.OCI_INDEX, only_canary),
            "not-json": (mt.OCI_MANIFEST, CANARY.encode()),
            "range": (mt.OCI_MANIFEST, IMAGE.manifest),
        }
        self.blobs = IMAGE.blobs
        self.scenarios = [
            *self.manifests,
            "not-found",
            "denied",
            "unavailable",
            "teapot",
            "redirect-scheme",
            "redirect-garbage",
            "redirect-http",
            "redirect-loop",
            "challenge-scheme",
            "challenge-realm",
            "challenge-realm-http",
            "token-not-json",
            "token-no-token",
            "token-refused",
            "token-status",
        ]

    # ------------------------------------------------------------------------------ serving

    def _application(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/v2/{name}/{kind}/{reference}", self._handle)
        app.router.add_route("*", "/token/{scenario}", self._token)
        app.router.add_route("*", "/{tail:.*}", self._other)
        return app

    def _headers(self, **more: str) -> dict[str, str]:
        return {"X-Canary": CANARY, "Warning": f'199 - "{CANARY}"', "Server": CANARY, **more}

    def _error(self, status: int, reason: str = CANARY, **headers: str) -> web.Response:
        body = {
            "errors": [{"code": CANARY, "message": CANARY, "detail": {CANARY: CANARY}}, {"code": "DENIED"}]
        }
        return web.Response(
            status=status,
            reason=reason,
            body=json.dumps(body).encode(),
            content_type="application/json",
            headers=self._headers(**headers),
        )

    async def _other(self, request: web.Request) -> web.Response:
        return self._error(404)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        name, kind, reference = (request.match_info[k] for k in ("name", "kind", "reference"))
        self.requests.append(f"{request.method} {request.path}")
        challenge: Callable[[str], web.Response] = lambda value: self._error(  # noqa: E731
            401, **{"WWW-Authenticate": value}
        )
        token = request.headers.get("Authorization", "")
        match name:
            case "not-found":
                return self._error(404)
            case "denied":
                return self._error(403)
            case "unavailable":
                return self._error(503, **{"Retry-After": CANARY})
            case "teapot":
                return self._error(418)
            case "redirect-scheme":
                return web.Response(status=307, headers=self._headers(Location=f"{HOST_CANARY}://{CANARY}/x"))
            case "redirect-garbage":
                return web.Response(status=307, headers=self._headers(Location=f"http://[{CANARY}/x"))
            case "redirect-http":
                return web.Response(
                    status=307, headers=self._headers(Location=f"http://{HOST_CANARY}.example:1/{CANARY}")
                )
            case "redirect-loop":
                return web.Response(status=302, headers=self._headers(Location=f"{request.path}?{CANARY}"))
            case "challenge-scheme":
                return challenge(f'{CANARY} realm="{CANARY}", Other{CANARY} x=1')
            case "challenge-realm":
                return challenge(f'Bearer realm="https://{HOST_CANARY}.svc/token",service="{CANARY}"')
            case "challenge-realm-http":
                return challenge(f'Bearer realm="http://{HOST_CANARY}.example/token",service="{CANARY}"')
            case "token-not-json" | "token-no-token" | "token-refused" | "token-status":
                if token.startswith("Bearer "):
                    return self._error(403)
                realm = f"http://{self.address}/token/{name}?{CANARY}={CANARY}"
                return challenge(
                    f'Bearer realm="{realm}",service="{CANARY}",scope="repository:{CANARY}:pull"'
                )
        if kind == "manifests":
            return self._manifest(name, reference, request.method)
        if kind == "blobs":
            return await self._blob(name, reference, request)
        return self._error(404)

    def _manifest(self, name: str, reference: str, method: str) -> web.Response:
        found = self.manifests.get(name)
        if found is None:
            return self._error(404)
        media_type, body = found
        if reference.startswith("sha256:"):  # the good index's entries: its image, or the odd manifest
            if reference == IMAGE.digest:
                media_type, body = IMAGE.media_type, IMAGE.manifest
            elif reference != sha256(body):
                media_type, body = mt.OCI_MANIFEST, _manifest(annotations={CANARY: CANARY, "x": CANARY})
        headers = self._headers(**{"Content-Type": media_type})
        # A digest header that is no digest: the client must hash the body itself, and say nothing of it.
        headers["Docker-Content-Digest"] = CANARY
        return web.Response(body=None if method == "HEAD" else body, headers=headers)

    async def _blob(self, name: str, digest: str, request: web.Request) -> web.StreamResponse:
        body = self.blobs.get(digest)
        if body is None:
            return self._error(404)
        if name == "range":
            return web.Response(status=206, body=body, headers=self._headers(**{"Content-Range": CANARY}))
        return web.Response(body=body, headers=self._headers(**{"Content-Type": CANARY}))

    async def _token(self, request: web.Request) -> web.Response:
        scenario = request.match_info["scenario"]
        headers = self._headers()
        match scenario:
            case "token-not-json":
                return web.Response(text=CANARY, headers=headers)
            case "token-no-token":
                return web.json_response(
                    {"token": None, CANARY: CANARY, "expires_in": CANARY}, headers=headers
                )
            case "token-refused":
                return web.Response(status=403, reason=CANARY, text=CANARY, headers=headers)
            case _:
                return web.Response(status=418, reason=CANARY, text=CANARY, headers=headers)


@contextmanager
def canary_registry() -> Iterator[CanaryRegistry]:
    with CanaryRegistry() as server:
        yield server
