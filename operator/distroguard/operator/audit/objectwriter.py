"""Creating and replacing custom objects with a compact body encoded once: the audit's many writes.

The `kubernetes` client's generated calls validate their arguments, walk the body to sanitize it, encode it
with the standard `json` module and hand back the stored object for the caller to decode again. At
thousands of reports an audit, that is a large share of the audit's own CPU, on a node whose CPU the API
server needs for the same writes. Here the body is encoded by `orjson` (compact, no indentation) and sent
through the same client's connection pool, with its credentials (a bearer token is read from its
configuration on every request, so that a refreshed service-account token is used). Errors are the
client's `ApiException`, with the status, as callers expect from the generated calls.

Many writes in flight from one client can meet the API server's priority and fairness limits: a 429 (the
request was queued out, not handled) is sent again after the server's Retry-After, as client-go does.

Blocking calls: run them in worker threads; one writer serves many threads at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import kubernetes
import orjson

WRITERS = 64
"""Writes in flight at once, in each store that writes through a writer (reports, ImageFacts). The API
server handles requests in parallel and each write waits mostly on it (a few ms of its CPU, then etcd's
commit): the rate grows with the writes in flight well past 16."""
RETRIES = 10
"""Times a write refused with 429 is sent again."""
MAX_RETRY_AFTER = 10.0
"""Seconds waited at most before sending it again, whatever Retry-After says."""


@dataclass(frozen=True, slots=True)
class Resource:
    """A custom resource's collection: `namespace` None for a cluster-scoped kind."""

    group: str
    version: str
    plural: str
    namespace: str | None = None

    def path(self, name: str | None = None) -> str:
        where = "" if self.namespace is None else f"/namespaces/{quote(self.namespace, safe='')}"
        tail = "" if name is None else f"/{quote(name, safe='')}"
        return f"/apis/{self.group}/{self.version}{where}/{self.plural}{tail}"


class ObjectWriter:
    def __init__(self, api: Any, sleep: Callable[[float], None] = time.sleep) -> None:
        """`api`: a `kubernetes.client.ApiClient` (its configuration and connection pool are used)."""
        self._api = api
        self._sleep = sleep

    def create(self, resource: Resource, body: Any) -> bytes:
        """POST `body`; the stored object's JSON."""
        return self._send("POST", resource.path(), body)

    def replace(self, resource: Resource, name: str, body: Any) -> bytes:
        """PUT `body` over the object `name` (its `metadata.resourceVersion`, when set, must still be the
        stored one); the stored object's JSON."""
        return self._send("PUT", resource.path(name), body)

    def _headers(self) -> dict[str, str]:
        headers = {
            **self._api.default_headers,
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        for auth in self._api.configuration.auth_settings().values():
            if auth.get("in") == "header" and auth.get("value"):
                headers[auth["key"]] = auth["value"]
        return headers

    def _send(self, method: str, path: str, body: Any) -> bytes:
        encoded = orjson.dumps(body)
        for attempt in range(RETRIES + 1):
            response = self._api.rest_client.pool_manager.request(
                method,
                self._api.configuration.host + path,
                body=encoded,
                headers=self._headers(),
                preload_content=True,
            )
            if response.status == 429 and attempt < RETRIES:
                self._sleep(_retry_after(response.headers.get("Retry-After")))
                continue
            if not 200 <= response.status < 300:
                raise kubernetes.client.ApiException(http_resp=response)
            break
        data: bytes = response.data
        return data


def _retry_after(header: str | None) -> float:
    """Seconds to wait: the header's whole seconds (client-go's reading), 1 when absent or unreadable."""
    try:
        seconds = float(int(header or "1"))
    except ValueError:
        seconds = 1.0
    return min(max(seconds, 1.0), MAX_RETRY_AFTER)
