"""The facts API without a registry: Gatekeeper's wire shapes (from fixtures written from Gatekeeper's own
types and docs), the facts document, and every bound and refusal that is decided before a lookup; served by
a real aiohttp server, alone and beside the webhook's review path."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distroguard.admission import AdmissionAnswer, AdmissionRequest
from distroguard.eol import EolCatalog, bundled_snapshot
from distroguard.errors import (
    AuthenticationError,
    DeadlineExceeded,
    InvalidFactsRequest,
    LookupLimited,
    NotFoundError,
    RegistryAddressRefused,
    RegistryUnavailable,
    RegistryUnreachable,
    ScanLimitExceeded,
)
from distroguard.model import ImageFacts, Libc, OSRelease, Platform, Runtime
from distroguard.model.factsdoc import facts_document, served_document
from distroguard.model.provider import (
    API_VERSION,
    error_item,
    parse_provider_request,
    provider_response,
    value_item,
)
from distroguard.operator.metrics import Metrics
from distroguard.operator.settings import FactsApiSettings, Role, RunSettings
from distroguard.operator.webhook.facts import FACTS_PATH, GATEKEEPER_PATH, FactsApi, FactsLimits, status_of
from distroguard.operator.webhook.server import review_app
from distroguard.registry.client import RegistryClient, RegistrySettings
from distroguard.registry.contract import Offer
from distroguard.registry.manifest import Descriptor
from distroguard.resolver import Resolver

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gatekeeper"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def debian_facts(**changes: Any) -> ImageFacts:
    facts = ImageFacts(
        reference="registry.example/app:1",
        digest="sha256:" + "a" * 64,
        platform="linux/amd64",
        os=OSRelease(id="debian", version_id="12", codename="bookworm"),
        libc=Libc(family="glibc", version="2.36"),
        runtimes=(Runtime(name="python", version="3.12.8"),),
    )
    return facts.model_copy(update=changes)


# ------------------------------------------------------------------------------------ wire shapes


def test_a_request_as_gatekeeper_marshals_it_gives_its_distinct_keys_in_order() -> None:
    keys = parse_provider_request(fixture("provider-request.json"), max_keys=100)
    assert keys == [
        "nginx:1.27",
        "registry.example/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ]


def test_a_request_whose_empty_keys_were_left_out_asks_for_nothing() -> None:
    assert parse_provider_request(fixture("provider-request-empty.json"), max_keys=100) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"kind": "ProviderResponse"}, "kind"),
        ({"apiVersion": "externaldata.gatekeeper.sh/v1alpha1"}, "apiVersion"),
        ({"request": ["nginx"]}, "request is not an object"),
        ({"request": {"keys": "nginx"}}, "not a list"),
        ({"request": {"keys": ["nginx", 7]}}, "other than strings"),
        ({"request": {"keys": ["x" * 5000]}}, "longer than"),
    ],
)
def test_a_request_that_is_no_provider_request_is_refused(change: dict[str, Any], problem: str) -> None:
    document = {**fixture("provider-request.json"), **change}
    with pytest.raises(InvalidFactsRequest, match=problem):
        parse_provider_request(document, max_keys=100)


def test_keys_are_bounded_by_distinct_count_not_repeats() -> None:
    many = {**fixture("provider-request.json"), "request": {"keys": [f"app:{i}" for i in range(4)]}}
    assert len(parse_provider_request(many, max_keys=4)) == 4
    with pytest.raises(InvalidFactsRequest, match="more than 3 distinct keys"):
        parse_provider_request(many, max_keys=3)
    repeated = {**many, "request": {"keys": ["app:1"] * 50}}
    assert parse_provider_request(repeated, max_keys=1) == ["app:1"]


def test_the_response_has_gatekeepers_documented_shape() -> None:
    expected = fixture("provider-response.json")
    ours = provider_response(
        [value_item("nginx", "nginx:v1.2.3"), {"key": "bad-key", "error": "error message"}],
        system_error="testing system error",
    )
    assert ours == expected
    plain = provider_response([value_item("nginx", "nginx:v1.2.3")])
    assert "systemError" not in plain["response"]  # omitempty: no system error, no field
    assert plain["apiVersion"] == API_VERSION
    assert plain["response"]["idempotent"] is True


def test_an_error_item_names_its_reason_first() -> None:
    item = error_item("app:1", "deadline-exceeded", "app:1: not resolved within 3 s")
    assert item == {"key": "app:1", "error": "deadline-exceeded: app:1: not resolved within 3 s"}


# ------------------------------------------------------------------------------------ the document


def test_the_facts_document_is_inspects_json() -> None:
    facts = debian_facts()
    document = facts_document(facts)
    assert document["os"]["id"] == "debian"
    assert document["libc"] == {"family": "glibc", "version": "2.36"}
    assert document["os"]["id_like"] == []
    assert json.loads(json.dumps(document)) == document


def test_the_served_document_adds_the_lifecycle_on_the_day_asked() -> None:
    catalog = EolCatalog(bundled_snapshot())
    debian = catalog.product("debian")
    assert debian is not None
    cycle = next(c for c in debian.cycles if c.cycle == "12")
    assert isinstance(cycle.eol, date)
    before = served_document(debian_facts(), catalog, date(2024, 1, 1))
    after = served_document(debian_facts(), catalog, cycle.eol)
    assert {k: v for k, v in before.items() if k != "lifecycle"} == facts_document(debian_facts())
    assert before["lifecycle"]["os"]["cycle"] == "12"
    assert before["lifecycle"]["os"]["eol"] == cycle.eol.isoformat()
    assert before["lifecycle"]["os"]["state"] == "active"
    assert before["lifecycle"]["eol"] is False
    assert after["lifecycle"]["os"]["state"] in ("eol", "extended")
    assert after["lifecycle"]["eol"] is (after["lifecycle"]["os"]["state"] == "eol")
    assert before["lifecycle"]["snapshot"] == catalog.snapshot.isoformat()
    python = before["lifecycle"]["runtimes"][0]
    assert (python["name"], python["version"], python["cycle"]) == ("python", "3.12.8", "3.12")


def test_an_image_without_an_os_has_no_os_lifecycle() -> None:
    facts = debian_facts(os=None, libc=Libc(family="none"), runtimes=())
    lifecycle = served_document(facts, EolCatalog(bundled_snapshot()), date(2025, 1, 1))["lifecycle"]
    assert lifecycle["os"] is None
    assert lifecycle["eol"] is False
    assert lifecycle["runtimes"] == []


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (DeadlineExceeded("x"), 504),
        (NotFoundError("r.example", "x"), 404),
        (AuthenticationError("r.example", "x"), 403),
        (RegistryAddressRefused("r.example", "x"), 403),
        (ScanLimitExceeded("layers", 1), 413),
        (LookupLimited("x"), 429),
        (RegistryUnavailable("r.example", "x"), 502),
        (RegistryUnreachable("r.example", "x"), 502),
        (RuntimeError("ours"), 500),
    ],
)
def test_errors_have_their_http_status(error: BaseException, status: int) -> None:
    assert status_of(error) == status


# ------------------------------------------------------------------------------------ served


@pytest.fixture
async def api() -> tuple[FactsApi, Metrics]:
    # A client that is never entered: any lookup that reached it would fail, so every answer below is
    # decided before one (or from the cache).
    resolver = Resolver(RegistryClient(RegistrySettings(registry_guard=True)))
    metrics = Metrics(process=False)
    api = FactsApi(
        resolver,
        lambda: EolCatalog(bundled_snapshot()),
        budget=1.0,
        limits=FactsLimits(max_keys=3, max_body_bytes=4096, read_timeout=5.0),
        observer=metrics,
    )
    return api, metrics


@pytest.fixture
async def client(api: tuple[FactsApi, Metrics]) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(api[0].app())) as client:
        yield client


def request_document(*keys: Any) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "ProviderRequest", "request": {"keys": list(keys)}}


def counted(metrics: Metrics, endpoint: str, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "distroguard_facts_requests_total", {"endpoint": endpoint, "outcome": outcome}
    )
    return value or 0.0


async def test_too_many_keys_is_a_system_error_with_status_400(
    client: TestClient[Any, Any], api: tuple[FactsApi, Metrics]
) -> None:
    reply = await client.post(GATEKEEPER_PATH, json=request_document("a:1", "b:1", "c:1", "d:1"))
    assert reply.status == 400
    body = await reply.json()
    assert body["kind"] == "ProviderResponse"
    assert "more than 3 distinct keys" in body["response"]["systemError"]
    assert body["response"]["items"] == []
    assert counted(api[1], "gatekeeper", "invalid-facts-request") == 1


async def test_a_body_past_the_limit_is_refused_unread(client: TestClient[Any, Any]) -> None:
    reply = await client.post(GATEKEEPER_PATH, data=b"{" + b" " * 8192 + b"}")
    assert reply.status == 413
    assert "larger than 4096 bytes" in (await reply.json())["response"]["systemError"]

    async def trickle() -> AsyncIterator[bytes]:  # chunked: no Content-Length to refuse it by
        for _ in range(10):
            yield b" " * 1000

    reply = await client.post(GATEKEEPER_PATH, data=trickle())
    assert reply.status == 413


@pytest.mark.parametrize(
    ("body", "problem"),
    [(b"", "empty"), (b"{not json", "not valid JSON"), (b"[]", "not a JSON object"), (b'"x"', "JSON object")],
)
async def test_a_body_that_is_no_request_is_a_system_error(
    client: TestClient[Any, Any], body: bytes, problem: str
) -> None:
    reply = await client.post(GATEKEEPER_PATH, data=body, headers={"Content-Type": "application/json"})
    assert reply.status == 400
    assert problem in (await reply.json())["response"]["systemError"]


async def test_local_images_and_bad_references_are_item_errors_without_a_lookup(
    client: TestClient[Any, Any], api: tuple[FactsApi, Metrics]
) -> None:
    reply = await client.post(GATEKEEPER_PATH, json=request_document("oci:/etc", "Not/A/Valid:Reference"))
    assert reply.status == 200
    body = await reply.json()
    items = {item["key"]: item for item in body["response"]["items"]}
    assert set(items) == {"oci:/etc", "Not/A/Valid:Reference"}
    assert items["oci:/etc"]["error"].startswith("invalid-reference: ")
    assert "registry references" in items["oci:/etc"]["error"]
    assert items["Not/A/Valid:Reference"]["error"].startswith("invalid-reference: ")
    assert all("value" not in item for item in items.values())
    assert body["response"]["idempotent"] is True
    assert counted(api[1], "gatekeeper", "partial") == 1


async def test_a_warm_image_is_answered_from_the_shared_cache(
    client: TestClient[Any, Any], api: tuple[FactsApi, Metrics]
) -> None:
    facts = debian_facts()
    resolver = api[0]._resolver.anonymous
    assert facts.digest is not None
    manifest = Descriptor(MANIFEST_TYPE, facts.digest, 1000, Platform.parse(facts.platform))
    offer = Offer(facts.digest, (manifest,), single=True)
    assert resolver.remember([facts], [(facts.reference, facts.digest, 0.0)], offer) == 1
    reply = await client.post(GATEKEEPER_PATH, json=request_document(facts.reference))
    body = await reply.json()
    assert reply.status == 200, body
    [item] = body["response"]["items"]
    assert item["key"] == facts.reference
    assert "error" not in item
    assert item["value"]["libc"]["family"] == "glibc"
    assert item["value"]["lifecycle"]["os"]["cycle"] == "12"
    reply = await client.get(FACTS_PATH, params={"image": facts.reference})
    assert reply.status == 200
    document = await reply.json()
    assert document == item["value"]
    assert counted(api[1], "facts", "ok") == 1
    assert counted(api[1], "gatekeeper", "ok") == 1


@pytest.mark.parametrize(
    ("query", "status", "problem"),
    [
        ("", 400, "give one image"),
        ("?image=", 400, "give one image"),
        ("?image=a:1&image=b:1", 400, "give one image"),
        ("?image=oci:/etc", 400, "registry references"),
        ("?image=docker-archive:/etc/passwd", 400, "registry references"),
        ("?image=Not/Valid", 400, "invalid image reference"),
        ("?image=a:1&platform=linux", 400, "platform"),
        ("?image=a:1&secret=x", 400, "unknown query parameter"),
    ],
)
async def test_a_facts_request_that_cannot_be_answered_is_a_json_error(
    client: TestClient[Any, Any], query: str, status: int, problem: str
) -> None:
    reply = await client.get(FACTS_PATH + query)
    assert reply.status == status
    assert reply.content_type == "application/json"
    body = await reply.json()
    assert problem in body["error"]
    assert body["reason"] in ("invalid-facts-request", "invalid-reference")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("GET", GATEKEEPER_PATH, "POST"), ("PUT", GATEKEEPER_PATH, "POST"), ("POST", FACTS_PATH, "GET")],
)
async def test_other_methods_are_refused_with_405(
    client: TestClient[Any, Any], method: str, path: str, allowed: str
) -> None:
    reply = await client.request(method, path)
    assert reply.status == 405
    assert reply.headers["Allow"] == allowed
    assert "answers" in (await reply.json())["error"]


async def test_beside_the_webhook_the_facts_paths_are_the_apis_and_reviews_still_go_to_the_handler(
    api: tuple[FactsApi, Metrics],
) -> None:
    seen: list[AdmissionRequest] = []

    async def handler(request: AdmissionRequest) -> AdmissionAnswer:
        seen.append(request)
        return AdmissionAnswer.allow()

    async with TestClient(TestServer(review_app(handler, routes=api[0].routes()))) as client:
        reply = await client.post(GATEKEEPER_PATH, json=request_document("oci:/etc"))
        assert reply.status == 200
        assert (await reply.json())["kind"] == "ProviderResponse"
        reply = await client.post(FACTS_PATH, data=b"{}")
        assert reply.status == 405
        assert seen == []
        reply = await client.post("/pods", data=b"{not json")
        assert reply.status == 200
        assert (await reply.json())["kind"] == "AdmissionReview"


# ------------------------------------------------------------------------------------ hostile requests


async def test_a_stalled_body_is_answered_within_the_read_timeout() -> None:
    resolver = Resolver(RegistryClient(RegistrySettings(registry_guard=True)))
    api = FactsApi(
        resolver, lambda: EolCatalog(bundled_snapshot()), budget=1.0, limits=FactsLimits(read_timeout=0.5)
    )
    stalled = asyncio.Event()

    async def stall() -> AsyncIterator[bytes]:
        yield b'{"apiVersion": '
        await stalled.wait()  # never set: the client sends no more

    async with TestClient(TestServer(api.app())) as client:
        async with asyncio.timeout(30):  # a hang guard, not a timing assertion
            reply = await client.post(GATEKEEPER_PATH, data=stall())
        assert reply.status == 400
        assert "did not arrive within 0.5 s" in (await reply.json())["response"]["systemError"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        st.binary(max_size=512),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
            ),
            max_leaves=12,
        ).map(lambda value: json.dumps(value).encode()),
        st.builds(
            lambda keys: json.dumps(request_document(*keys)).encode(),
            # Keys that are no registry reference (an upper-case path, a local image), or no string: the
            # client below is never opened, so a key that reached a registry would fail the test.
            st.lists(
                st.one_of(
                    st.text(max_size=30).map(lambda text: "Bad/" + text),
                    st.text(max_size=30).map(lambda text: "oci:" + text),
                    st.integers(),
                    st.none(),
                ),
                max_size=6,
            ),
        ),
    )
)
async def test_any_body_gets_a_provider_response_never_a_failure_of_ours(
    api: tuple[FactsApi, Metrics], body: bytes
) -> None:
    async with TestClient(TestServer(api[0].app())) as client:
        reply = await client.post(GATEKEEPER_PATH, data=body, headers={"Content-Type": "application/json"})
        document = await reply.json()
    assert reply.status in (200, 400), document
    assert document["apiVersion"] == API_VERSION
    assert document["kind"] == "ProviderResponse"
    response = document["response"]
    assert response["idempotent"] is True
    if reply.status == 400:
        assert response["systemError"]
        assert response["items"] == []
    for item in response["items"]:  # only keys that never reach a registry: each is an item error
        assert isinstance(item["key"], str)
        assert "value" not in item
        assert item["error"].split(": ", 1)[0] in ("invalid-reference", "invalid-facts-request")


# ------------------------------------------------------------------------------------ settings


@pytest.mark.parametrize(
    ("facts", "role", "problem"),
    [
        (FactsApiSettings(enabled=True, client_ca=Path("ca.pem")), "webhook", "needs --facts-port"),
        (FactsApiSettings(port=9444), "webhook", "give --facts-api"),
        (FactsApiSettings(enabled=True), "audit", "served by the webhook role"),
        (FactsApiSettings(enabled=True, port=9443), "webhook", "must differ from --port"),
        (FactsApiSettings(enabled=True, max_keys=0), "webhook", "--facts-max-keys"),
        (FactsApiSettings(enabled=True, budget=0), "webhook", "--facts-budget"),
    ],
)
def test_facts_settings_that_cannot_work_are_refused_at_start(
    facts: FactsApiSettings, role: Role, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        RunSettings(dev=True, role=role, facts=facts)


def test_the_facts_budget_defaults_to_the_lookup_budget() -> None:
    assert RunSettings(dev=True, budget=2.5, facts=FactsApiSettings(enabled=True)).facts_budget == 2.5
    assert RunSettings(dev=True, facts=FactsApiSettings(enabled=True, budget=1.5)).facts_budget == 1.5
