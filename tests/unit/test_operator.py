"""The operator's parts that need no cluster: the server's request edge, the policy store, routing between
resolvers, the admitter's order of cheap checks, the development webhook configuration, the settings."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import aiohttp.web
import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from distroguard.admission import AdmissionAnswer, AdmissionRequest, decode_review
from distroguard.admission.review import MAX_BODY_BYTES
from distroguard.cli.main import main
from distroguard.eol import EolCatalog, bundled_snapshot
from distroguard.errors import DeadlineExceeded
from distroguard.model import ImageFacts, Platform, ScanMode
from distroguard.model.facts import ImagePlatforms
from distroguard.operator.catalogholder import CatalogHolder
from distroguard.operator.dev import certs as devcerts
from distroguard.operator.dev.cluster import webhook_configuration
from distroguard.operator.policystore import PolicyStore
from distroguard.operator.settings import RunSettings
from distroguard.operator.webhook import server as server_edge
from distroguard.operator.webhook.admitter import Admitter
from distroguard.operator.webhook.routes import BY_ID, WEBHOOKS
from distroguard.registry.client import RegistrySettings
from distroguard.registry.credentials import Credentials, CredentialStore
from distroguard.resolver.routing import NO_CREDENTIALS, PullCredentials, ResolverPool, RoutedResolver
from support.policies import document, policy

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def review(
    *,
    uid: str = "uid-1",
    resource: str = "pods",
    kind: str = "Pod",
    group: str = "",
    operation: str = "CREATE",
    namespace: str = "shop",
    image: str = "127.0.0.1:5000/app:1",
    sub_resource: str | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": image}]}
    obj: dict[str, Any] = {"metadata": {"name": "web", "namespace": namespace}}
    obj["spec"] = spec if kind == "Pod" else {"template": {"spec": spec}}
    request: dict[str, Any] = {
        "uid": uid,
        "kind": {"group": group, "version": "v1", "kind": kind},
        "resource": {"group": group, "version": "v1", "resource": resource},
        "operation": operation,
        "namespace": namespace,
        "userInfo": {"username": "tester"},
        "object": obj,
    }
    if operation == "UPDATE":
        request["oldObject"] = obj
    if sub_resource:
        request["subResource"] = sub_resource
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


# ------------------------------------------------------------------------------------ the server's edge


def _with_resource_group(document: dict[str, Any], group: str | None) -> dict[str, Any]:
    document["request"]["resource"]["group"] = group
    return document


class FakeHandler:
    """Stands for the admitter: answers from the request the edge decoded, or raises."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.requests: list[AdmissionRequest] = []

    async def __call__(self, request: AdmissionRequest) -> AdmissionAnswer:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        return AdmissionAnswer.allow([f"seen {request.resource}"])


@pytest.fixture
async def edge() -> AsyncIterator[tuple[TestClient[Any, Any], FakeHandler]]:
    handler = FakeHandler()
    async with TestClient(TestServer(server_edge.review_app(handler))) as client:
        yield client, handler


async def test_a_drain_from_the_pod_retires_every_connection_after_its_next_answer() -> None:
    ages = server_edge.ConnectionAges(3600.0)
    app = server_edge.review_app(FakeHandler(), ages=ages)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:

        async def connection_header() -> str | None:
            response = await client.post("/pods", json=review())
            await response.read()
            return response.headers.get("Connection")

        before = [await connection_header() for _ in range(3)]
        drained = await client.get("/drain")
        assert drained.status == 200, await drained.text()
        after = [await connection_header() for _ in range(3)]
    assert before == [None, None, None]  # young connections are kept alive
    assert after == ["close", "close", "close"]  # each answer, on each new connection, closes it


@pytest.mark.parametrize(
    ("peer", "accepted"),
    [
        (("127.0.0.1", 50000), True),
        (("::1", 50000, 0, 0), True),
        (("10.244.1.7", 50000), False),
        (("fe80::1%eth0", 50000, 0, 2), False),
        (None, False),
    ],
)
def test_a_drain_counts_as_the_pods_own_only_over_loopback(
    peer: tuple[object, ...] | None, accepted: bool
) -> None:
    transport = mock.Mock()
    transport.get_extra_info.return_value = peer
    assert server_edge._from_loopback(mock.Mock(transport=transport)) is accepted


async def test_a_drain_from_elsewhere_is_refused_and_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_edge, "_from_loopback", lambda request: False)
    ages = server_edge.ConnectionAges(3600.0)
    async with TestClient(TestServer(server_edge.review_app(FakeHandler(), ages=ages))) as client:
        response = await client.get("/drain")
        assert response.status == 403
        answer = await client.post("/pods", json=review())
        await answer.read()
        assert answer.headers.get("Connection") is None
    assert not ages.draining


async def test_a_kept_alive_connection_is_retired_after_its_age() -> None:
    now = [100.0]
    ages = server_edge.ConnectionAges(2.0, clock=lambda: now[0])
    app = server_edge.review_app(FakeHandler(), ages=ages)
    async with TestClient(TestServer(app)) as client:

        async def connection_header() -> str | None:
            response = await client.post("/pods", json=review())
            await response.read()
            return response.headers.get("Connection")

        first = await connection_header()
        now[0] += 1.9
        young = await connection_header()
        now[0] += 0.1
        aged = await connection_header()
        # The client dials again: a new connection starts young.
        fresh = await connection_header()
    assert (first, young) == (None, None)  # HTTP/1.1: kept alive
    assert aged == "close"
    assert fresh is None


async def test_the_handler_answers_with_the_uid_and_its_failure_is_an_error_answer() -> None:
    seen: list[AdmissionRequest] = []

    async def handler(request: AdmissionRequest) -> AdmissionAnswer:
        seen.append(request)
        if request.uid == "uid-boom":
            raise RuntimeError("a bug of ours")
        return AdmissionAnswer.deny("no musl here", code=403)

    async with TestClient(TestServer(server_edge.review_app(handler))) as client:
        answer = await post(client, "/pods", review())
        assert answer == {
            "uid": "uid-1",
            "allowed": False,
            "status": {"code": 403, "message": "no musl here"},
        }
        assert [r.uid for r in seen] == ["uid-1"]
        # The edge still refuses what it refuses, before the handler.
        refused = await post(client, "/deployments", review(uid="uid-2"))
        assert refused["status"]["code"] == 400
        assert [r.uid for r in seen] == ["uid-1"]
        broken = await post(client, "/pods", review(uid="uid-boom"))
        assert broken["uid"] == "uid-boom"
        assert broken["status"]["code"] == 500
        assert "RuntimeError: a bug of ours" in broken["status"]["message"]


async def post(client: TestClient[Any, Any], path: str, body: bytes | dict[str, Any]) -> dict[str, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    # A file-like body: aiohttp warns about large raw bytes (they would be copied on the event loop).
    response = await client.post(path, data=io.BytesIO(data), headers={"Content-Type": "application/json"})
    assert response.status == 200
    answer: dict[str, Any] = (await response.json())["response"]
    return answer


async def test_a_known_path_reaches_the_handler_with_the_whole_decoded_request(edge: Any) -> None:
    client, handler = edge
    document = review(operation="UPDATE")
    document["request"]["object"]["metadata"]["labels"] = {"a": "b"}
    answer = await post(client, "/pods", document)
    assert answer == {"uid": "uid-1", "allowed": True, "warnings": ["seen pods"]}
    deployment = review(uid="uid-2", resource="deployments", kind="Deployment", group="apps")
    assert (await post(client, "/deployments", deployment))["allowed"] is True
    pod, apps = handler.requests
    assert (pod.resource, pod.resource_group, pod.operation) == ("pods", "", "UPDATE")
    assert pod.object == document["request"]["object"]
    assert pod.old_object == document["request"]["oldObject"]
    assert (apps.resource, apps.resource_group, apps.kind.group) == ("deployments", "apps", "apps")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/configmaps", review(resource="configmaps", kind="ConfigMap")),  # a path nobody serves
        ("/pods", review(resource="configmaps", kind="ConfigMap")),  # another kind on the pods path
        ("/deployments", review()),  # a pod on the deployments path
        ("/pods", review(sub_resource="ephemeralcontainers", operation="UPDATE")),  # has its own path
        ("/", review()),
        ("/pods", _with_resource_group(review(), "batch")),  # kind Pod, resource batch/pods
        ("/pods", _with_resource_group(review(), None)),  # a resource group that is not a string
    ],
)
async def test_a_request_on_the_wrong_path_is_refused_with_its_uid(edge: Any, path: str, body: Any) -> None:
    client, handler = edge
    answer = await post(client, path, body)
    assert answer["allowed"] is False
    assert answer["uid"] == "uid-1"
    assert answer["status"]["code"] == 400
    assert "does not check" in answer["status"]["message"]
    assert handler.requests == []


async def test_a_malformed_review_is_refused_not_an_http_error(edge: Any) -> None:
    client, handler = edge
    assert (await post(client, "/pods", b"{not json"))["status"]["code"] == 400
    no_object = review()
    del no_object["request"]["object"]
    answer = await post(client, "/pods", no_object)
    assert answer["uid"] == "uid-1"
    assert "object" in answer["status"]["message"]
    assert handler.requests == []


async def test_a_body_past_the_limit_is_refused_before_it_is_read(edge: Any) -> None:
    client, _ = edge
    huge = b'{"pad": "' + b"x" * (MAX_BODY_BYTES + 10) + b'"}'
    answer = await post(client, "/pods", huge)
    assert answer["allowed"] is False
    assert "larger than" in answer["status"]["message"]


async def test_a_streamed_body_past_the_limit_is_refused(edge: Any) -> None:
    client, _ = edge

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"pad": "'
        for _ in range(MAX_BODY_BYTES // (1024 * 1024) + 1):
            yield b"x" * 1024 * 1024
        yield b'"}'

    response = await client.post("/pods", data=chunks())  # chunked: no Content-Length to go by
    answer = (await response.json())["response"]
    assert answer["allowed"] is False
    assert "larger than" in answer["status"]["message"]


async def test_a_body_above_aiohttp_default_limit_is_accepted(edge: Any) -> None:
    client, _ = edge
    body = review()
    body["request"]["object"]["metadata"]["annotations"] = {"big": "x" * (2 * 1024 * 1024)}
    assert (await post(client, "/pods", body))["allowed"] is True


async def test_an_exception_in_the_handler_is_an_error_answer_with_the_uid_and_a_stack_trace(
    edge: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client, handler = edge
    handler.error = KeyError("boom")
    with caplog.at_level(logging.ERROR, logger="distroguard.operator.webhook.server"):
        answer = await post(client, "/pods", review(uid="uid-9"))
    assert answer["allowed"] is False
    assert answer["uid"] == "uid-9"
    assert answer["status"]["code"] == 500
    assert "distroguard internal error: KeyError" in answer["status"]["message"]
    assert any(record.exc_info for record in caplog.records)


# ----------------------------------------------------------------------------------------- the admitter


class FakeLabels:
    def __init__(self, labels: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.labels = labels or {}
        self.asked: list[str] = []

    async def get(self, namespace: str) -> Mapping[str, str]:
        self.asked.append(namespace)
        return self.labels.get(namespace, {})


class FakeSecrets:
    def __init__(self, credentials: PullCredentials = NO_CREDENTIALS) -> None:
        self.credentials = credentials
        self.asked: list[tuple[str, tuple[str, ...], str]] = []

    async def get(self, namespace: str, secrets: Any, service_account: str) -> PullCredentials:
        self.asked.append((namespace, tuple(secrets), service_account))
        return self.credentials


class FakeResolver:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.asked: list[str] = []

    async def resolve(
        self,
        image: str,
        platform: Platform | None = None,
        mode: ScanMode = "fast",
        budget: float | None = None,
    ) -> ImageFacts:
        self.asked.append(image)
        raise self.error or DeadlineExceeded(f"{image}: not resolved within 0.5 s")

    def cached(
        self, image: str, platform: Platform | None = None, mode: ScanMode = "fast"
    ) -> ImageFacts | None:
        return None

    async def resolve_platforms(
        self,
        image: str,
        platforms: Sequence[Platform] | None = None,
        mode: ScanMode = "fast",
        budget: float | None = None,
    ) -> ImagePlatforms:
        self.asked.append(image)
        raise self.error or DeadlineExceeded(f"{image}: not resolved within 0.5 s")

    def cached_platforms(
        self, image: str, platforms: Sequence[Platform] | None = None, mode: ScanMode = "fast"
    ) -> ImagePlatforms | None:
        return None


class FakePool:
    def __init__(self) -> None:
        self.anonymous = FakeResolver()
        self.public = RoutedResolver(self.anonymous)  # type: ignore[arg-type]

    async def resolver(self, namespace: str, credentials: PullCredentials) -> RoutedResolver:
        return self.public


class Observed:
    def __init__(self) -> None:
        self.verdicts: list[str] = []
        self.unresolved: list[dict[str, int]] = []

    def observe_admission(self, verdict: str, seconds: float, decision: Any, unresolved: Any) -> None:
        self.verdicts.append(verdict)
        self.unresolved.append(dict(unresolved))


def admitter(
    labels: FakeLabels, secrets: FakeSecrets, store: PolicyStore | None = None
) -> tuple[Admitter, Observed]:
    observed = Observed()
    made = Admitter(
        policies=store or PolicyStore([policy("no-musl", {"name": "no-musl", "denyLibc": ["musl"]})]),
        pool=FakePool(),  # type: ignore[arg-type]
        namespaces=labels,  # type: ignore[arg-type]
        secrets=secrets,  # type: ignore[arg-type]
        catalog=CatalogHolder(EolCatalog(bundled_snapshot())),
        budget=0.5,
        own_namespace="distroguard",
        observer=observed,
        clock=lambda: NOW,
    )
    return made, observed


@pytest.mark.parametrize(
    "body",
    [
        review(operation="DELETE"),
        review(namespace="kube-system"),
        review(namespace="distroguard"),
        review(operation="UPDATE"),  # no image changed
        review(resource="pods", sub_resource="status", operation="UPDATE"),
    ],
)
async def test_requests_needing_no_check_read_nothing_from_the_cluster(body: dict[str, Any]) -> None:
    labels, secrets = FakeLabels(), FakeSecrets()
    made, observed = admitter(labels, secrets)
    answer = await made(decode_review(body))
    assert answer.allowed
    assert labels.asked == []
    assert secrets.asked == []
    assert observed.verdicts == ["allow"]


async def test_an_opted_out_namespace_is_allowed_after_its_labels_are_read() -> None:
    labels = FakeLabels({"shop": {"distroguard.dev/ignore": "true"}})
    secrets = FakeSecrets()
    made, _ = admitter(labels, secrets)
    odd = review()
    odd["request"]["object"]["spec"]["containers"] = "not a list"
    assert (await made(decode_review(odd))).allowed
    assert labels.asked == ["shop"]
    assert secrets.asked == []


async def test_an_unresolved_image_follows_on_unresolved_and_reads_the_pull_secrets() -> None:
    labels, secrets = FakeLabels(), FakeSecrets()
    strict = PolicyStore([policy("strict", {"name": "no-musl", "denyLibc": ["musl"]}, onUnresolved="deny")])
    made, observed = admitter(labels, secrets, strict)
    answer = await made(decode_review(review()))
    assert not answer.allowed
    assert "could not be inspected" in answer.message
    assert secrets.asked == [("shop", (), "default")]
    assert observed.verdicts == ["deny"]
    assert observed.unresolved == [{"deadline-exceeded": 1}]


async def test_a_failure_of_ours_is_an_error_answer_logged_with_a_stack_trace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(FakeLabels):
        async def get(self, namespace: str) -> Mapping[str, str]:
            raise RuntimeError("API server unreachable")

    made, observed = admitter(Broken(), FakeSecrets())
    with caplog.at_level(logging.ERROR, logger="distroguard.operator.webhook.admitter"):
        answer = await made(decode_review(review(uid="uid-7")))
    assert not answer.allowed
    assert answer.code == 500
    assert "RuntimeError: API server unreachable (request uid-7)" in answer.message
    assert any(record.exc_info for record in caplog.records)
    assert observed.verdicts == ["error"]


# ----------------------------------------------------------------------------------- routed resolution


class Recording(FakeResolver):
    pass


async def test_images_on_a_credentialed_registry_go_to_the_namespace_resolver_only() -> None:
    own, anonymous = Recording(), Recording()
    routed = RoutedResolver(anonymous, own, frozenset({"127.0.0.1:5001"}))  # type: ignore[arg-type]
    for image in ("127.0.0.1:5001/private/app:1", "127.0.0.1:5002/public/app:1", "python:3.12", "Bad Ref"):
        with pytest.raises(TimeoutError):
            await routed.resolve(image)
    assert own.asked == ["127.0.0.1:5001/private/app:1"]
    assert anonymous.asked == ["127.0.0.1:5002/public/app:1", "python:3.12", "Bad Ref"]


async def test_an_image_on_a_mirrored_registry_goes_with_the_mirror_hosts_credentials() -> None:
    own, anonymous = Recording(), Recording()
    mirrors = {"docker.io": "127.0.0.1:5001/hub-proxy"}
    routed = RoutedResolver(anonymous, own, frozenset({"127.0.0.1:5001"}), mirrors)  # type: ignore[arg-type]
    for image in ("python:3.12", "docker.io/library/python:3.12", "quay.io/a/b:1"):
        with pytest.raises(TimeoutError):
            await routed.resolve(image)
    # The mirror is where the bytes come from: its credentials, never Docker Hub's, are the ones that count.
    assert own.asked == ["python:3.12", "docker.io/library/python:3.12"]
    assert anonymous.asked == ["quay.io/a/b:1"]
    assert routed.target("quay.io/a/b:1") is anonymous


async def test_the_pool_keeps_one_resolver_per_namespace_and_secrets_and_closes_them() -> None:
    tracked: list[Any] = []

    class Tracker:
        def track_cache(self, cache: Any) -> None:
            tracked.append(cache)

        def untrack_cache(self, cache: Any) -> None:
            tracked.remove(cache)

    pool = ResolverPool(RegistrySettings(), ttl=60, tracker=Tracker())
    await pool.start()
    store = CredentialStore({"127.0.0.1:5001": Credentials("user", "secret")})
    credentials = PullCredentials(store, "f1")
    assert await pool.resolver("a", NO_CREDENTIALS) is pool.public
    assert pool.public.target("127.0.0.1:5001/private/app:1") is pool.anonymous
    first, again = await pool.resolver("a", credentials), await pool.resolver("a", credentials)
    other_namespace = await pool.resolver("b", credentials)
    rotated = await pool.resolver("a", PullCredentials(store, "f2"))
    assert isinstance(first, RoutedResolver)
    assert isinstance(again, RoutedResolver)
    assert isinstance(other_namespace, RoutedResolver)
    assert isinstance(rotated, RoutedResolver)
    assert first.own is again.own
    assert first.anonymous is pool.anonymous
    assert first.registries == frozenset({"127.0.0.1:5001"})
    assert len({id(first.own), id(other_namespace.own), id(rotated.own)}) == 3
    assert len(tracked) == 4
    await pool.close()
    assert tracked == []


# -------------------------------------------------------------------------------------- the policy store


def test_policies_from_events_apply_and_invalid_ones_are_ignored(caplog: pytest.LogCaptureFixture) -> None:
    files = [policy("shared", {"name": "no-musl", "denyLibc": ["musl"]}, action="warn")]
    store = PolicyStore(files)
    assert [p.spec.action for p in store.current()] == ["warn"]

    cluster = document("shared", {"name": "no-musl", "denyLibc": ["musl"]}, action="deny")
    cluster["metadata"]["uid"] = "abc"
    cluster["status"] = {"observedGeneration": 1}
    store.observe(None, cluster)
    assert [p.spec.action for p in store.current()] == ["deny"]  # the cluster's wins over the file's
    snapshot = store.current()

    store.observe("ADDED", document("other", {"name": "no-alpine", "denyDistros": ["alpine"]}))
    assert [p.name for p in store.current()] == ["other", "shared"]
    assert [p.name for p in snapshot] == ["shared"]  # a snapshot in use does not change

    with caplog.at_level(logging.ERROR, logger="distroguard.operator.policystore"):
        store.observe("MODIFIED", document("other", {"name": "bad", "allowDistros": [{"bogus": 1}]}))
    assert [p.name for p in store.current()] == ["shared"]
    assert "ignored until it is fixed" in caplog.text

    store.observe("DELETED", cluster)
    assert [p.spec.action for p in store.current()] == ["warn"]  # back to the file's
    store.observe("ADDED", {"metadata": {}})  # nameless: nothing to key it by
    assert len(store.current()) == 1


# ----------------------------------------------------------------------------- configuration, settings


def test_the_dev_webhook_configuration_covers_every_path_and_skips_protected_namespaces() -> None:
    body = webhook_configuration("dg", "https://127.0.0.1:9443", b"CA", timeout=7, own_namespace="dg-system")
    assert [w["clientConfig"]["url"] for w in body["webhooks"]] == [
        f"https://127.0.0.1:9443/{w.id}" for w in WEBHOOKS
    ]
    for webhook in body["webhooks"]:
        assert webhook["timeoutSeconds"] == 7
        assert webhook["failurePolicy"] == "Fail"
        assert webhook["sideEffects"] == "None"
        expressions = {e["key"]: e for e in webhook["namespaceSelector"]["matchExpressions"]}
        assert expressions["kubernetes.io/metadata.name"]["values"] == ["dg-system", "kube-system"]
        assert expressions["distroguard.dev/ignore"] == {
            "key": "distroguard.dev/ignore",
            "operator": "NotIn",
            "values": ["true"],
        }
    ephemeral = next(w for w in body["webhooks"] if w["name"].startswith("ephemeralcontainers."))
    assert ephemeral["rules"][0]["resources"] == ["pods/ephemeralcontainers"]
    assert ephemeral["rules"][0]["operations"] == ["UPDATE"]


def test_handler_ids_are_lower_case_paths() -> None:
    assert len(BY_ID) == len(WEBHOOKS)
    for webhook_id in BY_ID:
        assert webhook_id == webhook_id.lower()
        assert webhook_id.isalpha()


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"budget": 10.0, "timeout": 10, "dev": True}, "below the webhook timeout"),
        ({"timeout": 31, "dev": True}, "between 1 and 30"),
        ({"budget": 0.0, "dev": True}, "positive"),
        ({"failure_ttl": 0.0, "dev": True}, "failure TTL must be positive"),
        ({}, "certificate and key are required"),
        ({"dev": True, "key_file": "k.pem"}, "both a certificate file and a key file"),
    ],
)
def test_settings_refuse_what_cannot_work(kwargs: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        RunSettings(**kwargs)


async def test_distroguard_drain_drains_the_local_tls_server_and_waits(tmp_path: Path) -> None:
    """The chart's preStop hook against a real TLS listener on loopback: the server drains, and the command
    still waits its seconds (and exits 0) when no server answers."""
    certs = devcerts.generate(tmp_path)
    ages = server_edge.ConnectionAges(3600.0)
    runner = aiohttp.web.AppRunner(server_edge.review_app(FakeHandler(), ages=ages), handle_signals=False)
    await runner.setup()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs.cert_file, certs.key_file)
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        drained = await asyncio.to_thread(
            CliRunner().invoke, main, ["drain", f"--port={port}", "--seconds=0"]
        )
        assert drained.exit_code == 0, drained.output
        assert "draining" in drained.output
        assert ages.draining
    finally:
        await runner.cleanup()

    started = time.monotonic()
    refused = await asyncio.to_thread(CliRunner().invoke, main, ["drain", f"--port={port}", "--seconds=0.3"])
    assert refused.exit_code == 0
    assert "could not ask the webhook server" in refused.output
    assert time.monotonic() - started >= 0.3
