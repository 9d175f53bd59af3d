"""Gatekeeper's external data provider protocol (`externaldata.gatekeeper.sh/v1beta1`), as its own types
say (open-policy-agent/frameworks, `constraint/pkg/externaldata`: `ProviderRequest`, `ProviderResponse`,
`Item`; every field `omitempty`):

    request   {"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest",
               "request": {"keys": ["nginx:1.27", ...]}}
    response  {"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderResponse",
               "response": {"idempotent": true,
                            "items": [{"key": "nginx:1.27", "value": {...facts...}},
                                      {"key": "bad", "error": "invalid-reference: ..."}],
                            "systemError": "..."}}

Gatekeeper hands Rego `responses` ([key, value] of items without an error), `errors` ([key, error]),
`status_code` and `system_error`; it caches each item by (provider, key), errors included. A key is
answered once however often it is asked; a request that cannot be answered at all has `systemError` and no
items.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NotRequired, TypedDict

from distroguard.errors import InvalidFactsRequest

API_VERSION = "externaldata.gatekeeper.sh/v1beta1"
REQUEST_KIND = "ProviderRequest"
RESPONSE_KIND = "ProviderResponse"
MAX_KEY_LENGTH = 4096
"""A key longer than this is no image reference (a reference's name is at most 255 characters, its tag
128, its digest ~100): refused as a whole request, before any lookup."""


class ProviderItem(TypedDict):
    key: str
    value: NotRequired[Any]
    error: NotRequired[str]


class ProviderResult(TypedDict):
    idempotent: bool
    items: list[ProviderItem]
    systemError: NotRequired[str]


class ProviderResponseWire(TypedDict):
    apiVersion: str
    kind: str
    response: ProviderResult


def parse_provider_request(document: Any, *, max_keys: int) -> list[str]:
    """The distinct keys of a ProviderRequest, in their order; InvalidFactsRequest when the document is no
    ProviderRequest (another kind or apiVersion, no `request`, keys that are not strings) or asks for more
    than `max_keys` distinct keys. An absent or empty `keys` is no error (Gatekeeper omits an empty list)."""
    if not isinstance(document, dict):
        raise InvalidFactsRequest("the body is not a JSON object")
    api_version = document.get("apiVersion")
    if api_version != API_VERSION:
        raise InvalidFactsRequest(f"apiVersion {api_version!r} is not {API_VERSION}")
    kind = document.get("kind")
    if kind != REQUEST_KIND:
        raise InvalidFactsRequest(f"kind {kind!r} is not {REQUEST_KIND}")
    request = document.get("request", {})
    if not isinstance(request, dict):
        raise InvalidFactsRequest("request is not an object")
    keys = request.get("keys") or []
    if not isinstance(keys, list):
        raise InvalidFactsRequest("request.keys is not a list")
    distinct: dict[str, None] = {}
    for key in keys:
        if not isinstance(key, str):
            raise InvalidFactsRequest("request.keys holds something other than strings")
        if len(key) > MAX_KEY_LENGTH:
            raise InvalidFactsRequest(f"a key is longer than {MAX_KEY_LENGTH} characters")
        distinct[key] = None
        if len(distinct) > max_keys:
            raise InvalidFactsRequest(f"more than {max_keys} distinct keys in one request")
    return list(distinct)


def value_item(key: str, value: Any) -> ProviderItem:
    return {"key": key, "value": value}


def error_item(key: str, reason: str, message: str) -> ProviderItem:
    """An item answered with an error: `reason: message`, so that Rego can test the reason with
    `startswith` (`deadline-exceeded`, `not-found`, `unauthorized`...; see `distroguard.errors`)."""
    return {"key": key, "error": f"{reason}: {message}"}


def provider_response(
    items: Sequence[ProviderItem] = (), system_error: str | None = None
) -> ProviderResponseWire:
    """The ProviderResponse; `idempotent` is always true: the same key asks for the same image, and
    answering it twice changes nothing (Gatekeeper requires it for mutation)."""
    result: ProviderResult = {"idempotent": True, "items": list(items)}
    if system_error is not None:
        result["systemError"] = system_error
    return {"apiVersion": API_VERSION, "kind": RESPONSE_KIND, "response": result}
