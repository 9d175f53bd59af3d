"""Admission reviews per second and latency: distroguard's production server path against a bare handler.

    python bench/admission_bench.py [--connections 300] [--seconds 10] [--requests 30000] [--cold 15]
                                    [--rounds 3] [--rate 400 ...] [--profile FILE]

Warm: a realistic 3-container Pod AdmissionReview (about 4 KB: init container, app, sidecar, with
resources, probes, env and volumes) is posted over HTTPS, 127.0.0.1 only, to

- distroguard: `AdmissionServer` (the operator's `kopf.WebhookServer` subclass) handing each decoded
  request to the `Admitter` (its `direct` handler, as `distroguard run` serves), with the logging
  `distroguard run` sets up (the records go to /dev/null, formatted all the same), its Prometheus metrics
  (each review observed), and a resolver pool whose caches were warmed by one resolution of each image;
- bare: an aiohttp handler on the same certificate that parses the body with the same JSON library
  (orjson) and answers the same response document, with no access log;
- the ceiling: the same server answering every review with one answer prepared before (each review read,
  decoded and routed, no decision): what the decision adds is the gap between it and distroguard;
- kopf's stock path, a baseline built here: kopf's own `kopf.WebhookServer` and its generic dispatch
  (`serve_admission_request`) to a `@kopf.on.validate` handler that hands the same `Admitter` a request
  rebuilt from kopf's kwargs, with kopf's and aiohttp's INFO line per request (heap settings unchanged).
  distroguard no longer serves this path; the row shows what its own path saves.
Closed loop, every connection posts again as soon as it is answered, so latency is mostly queueing
(Little's law: 300 in flight at N reviews/s wait 300/N s). Then open loop, for latency below saturation:
at 80% of the reviews/s distroguard answered in the closed loop of the same run (its one-core capacity),
offered to distroguard, the ceiling and the bare handler alike; `--rate` adds more offered rates.

The closed-loop sides (distroguard, the ceiling, the bare handler) and each open-loop rate take turns
`--rounds` times, and each side is shown by its median run (closed loop: by server CPU per review; open
loop: by p99); the closed loop's CPU per review of every round is printed too. On a shared machine one
run's figures move by more than the differences measured (the bare handler's own throughput was seen to
halve between two runs of the same command). kopf's stock path is measured once.

The ratio to the bare handler is printed twice: by measured throughput, and by server CPU per review
(the capacity of one whole core, which holds when the machine's other load takes part of the core).
`handshakes`: connections dialled again during a run (distroguard's server closes a kept-alive connection
after `MAX_CONNECTION_AGE_SECONDS`, so `--connections` of them cost that many TLS handshakes on the
server's core every 2 s, whatever the rate: a fixed cost per second, not per review).
Garbage-collector pauses are printed for each run, by generation: count, longest in wall time (what a
review in flight waits) and in CPU time (the collector's own work), and the collector's CPU in all.

All servers run in this process, on one CPU where the OS allows; the load comes from a separate process
(a plain asyncio protocol posting the prepared request: `--connections` kept-alive connections, each
dialled again when the server closes it, bounded by `--requests` and `--seconds`), pinned to the other
CPUs. CPU time and pauses are counted from the moment its connections are open. Nothing here needs
Kubernetes: the namespace labels and pull secrets that the operator reads from the API server (behind a
TTL cache, so a warm request does not call it) come from a fake lookup returning no labels and no
secrets. That is the only part of the production path replaced. The process's heap is settled as
`distroguard run` does once set up (`settle_heap`).

Cold: a one-container Pod review per image never seen before (each pushed with content of its own, so no
cache tier, base layers included, can answer it), one at a time, through the same server, from the local
registry (Debian's docker-registry on 127.0.0.1).

Not a test: figures depend on the machine; judge them by the ratios to the bare handler of the same run.
Targets: >= 90% of the bare handler's throughput on one core; p99 <= 10 ms at 80% of the measured
capacity, open loop, with no collector pause over 5 ms; cold p50 <= 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import functools
import gc
import json
import logging
import multiprocessing
import os
import platform
import ssl
import statistics
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import kopf
import orjson
from aiohttp import web
from kopf._cogs.structs import ephemera, references
from kopf._core.engines.admission import serve_admission_request
from kopf._core.engines.indexing import OperatorIndexers
from kopf._core.reactor.inventory import ResourceMemories

from distroguard.admission import AdmissionAnswer, AdmissionRequest, decode_review
from distroguard.admission.review import GroupVersionKind
from distroguard.eol import EolCatalog, bundled_snapshot
from distroguard.operator.catalogholder import CatalogHolder
from distroguard.operator.dev import certs as devcerts
from distroguard.operator.metrics import Metrics
from distroguard.operator.policystore import PolicyStore
from distroguard.operator.process import HOT_PATH_LOGGERS, configure_logging, settle_heap
from distroguard.operator.webhook.admitter import Admitter
from distroguard.operator.webhook.server import AdmissionServer, Handler
from distroguard.policyfiles import load_policies
from distroguard.registry.client import RegistrySettings
from distroguard.resolver.routing import NO_CREDENTIALS, PullCredentials, ResolverPool

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.distros import DEBIAN_12_ROOT, DISTROLESS_STATIC_ROOT, Files  # noqa: E402
from support.images import ImageBuilder, push  # noqa: E402
from support.registry_server import running_registry  # noqa: E402

POLICIES = [ROOT / "policies" / "no-musl.yaml", ROOT / "policies" / "no-eol-distro.yaml"]
NAMESPACE = "shop"
JSON_HEADERS = {"Content-Type": "application/json"}


# ------------------------------------------------------------------------------------------- the review


def pod_review(images: Sequence[str], uid: str = "bench") -> dict[str, Any]:
    """An AdmissionReview of a Pod as a Deployment's ReplicaSet creates it: init container, app, sidecar."""
    names = ["migrate", "app", "metrics-sidecar"]
    containers = []
    for name, image in zip(names, images, strict=False):
        containers.append(
            {
                "name": name,
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "args": ["--config", "/etc/app/config.yaml", "--log-level", "info"],
                "env": [
                    {"name": "APP_ENV", "value": "production"},
                    {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}},
                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                ],
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                "resources": {
                    "requests": {"cpu": "250m", "memory": "256Mi"},
                    "limits": {"cpu": "1", "memory": "512Mi"},
                },
                "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5},
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
                "volumeMounts": [
                    {"name": "config", "mountPath": "/etc/app", "readOnly": True},
                    {"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"},
                ],
                "securityContext": {
                    "runAsNonRoot": True,
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
            }
        )
    spec = {
        "initContainers": containers[:1],
        "containers": containers[1:],
        "serviceAccountName": "default",
        "restartPolicy": "Always",
        "dnsPolicy": "ClusterFirst",
        "terminationGracePeriodSeconds": 30,
        "volumes": [
            {"name": "config", "configMap": {"name": "web-config"}},
            {
                "name": "kube-api-access",
                "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]},
            },
        ],
        "tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
        ],
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "web-7d9c6b5f4-",
            "namespace": NAMESPACE,
            "labels": {"app": "web", "pod-template-hash": "7d9c6b5f4", "team": "checkout"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-08-22T12:00:00Z"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "web-7d9c6b5f4",
                    "uid": "0b8f2f3e-6a4e-4a7e-9d1c-5c7e0f0e8a11",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
    }
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": NAMESPACE,
            "operation": "CREATE",
            "userInfo": {
                "username": "system:serviceaccount:kube-system:replicaset-controller",
                "uid": "5d8e1b8a-1f0c-4a57-8d3e-2b7a6f0c9e21",
                "groups": [
                    "system:serviceaccounts",
                    "system:serviceaccounts:kube-system",
                    "system:authenticated",
                ],
            },
            "object": pod,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


# ------------------------------------------------------------------------------- the servers under test


class NoLabels:
    """Namespace labels as a warm cache answers them (the only stand-in for the Kubernetes API)."""

    async def get(self, namespace: str) -> Mapping[str, str]:
        return {}


class NoSecrets:
    """Pull secrets as a warm cache answers them for a namespace that has none."""

    async def get(self, namespace: str, secrets: Sequence[str], service_account: str) -> PullCredentials:
        return NO_CREDENTIALS


class GcPauses:
    """How long the collector stopped this process (the servers' loop), by generation, while measuring:
    wall time (what a request in flight waits, the machine's other load included) and this thread's CPU
    time (the collector's own work)."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[tuple[float, float]]] = {0: [], 1: [], 2: []}
        self._started = (0.0, 0.0)
        gc.callbacks.append(self._observe)

    def _observe(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = (time.perf_counter(), time.thread_time())
        else:
            wall, cpu = self._started
            self.pauses[info["generation"]].append((time.perf_counter() - wall, time.thread_time() - cpu))

    def stop(self) -> GcPauses:
        gc.callbacks.remove(self._observe)
        return self

    def longest(self) -> float:
        """The longest pause of any generation, wall time, in seconds."""
        return max((wall for pauses in self.pauses.values() for wall, _ in pauses), default=0.0)

    def __str__(self) -> str:
        total = sum(cpu for pauses in self.pauses.values() for _, cpu in pauses)
        return (
            ", ".join(
                f"gen{g}: {len(p)}, max {max((w for w, _ in p), default=0) * 1000:.1f} ms"
                f" ({max((c for _, c in p), default=0) * 1000:.1f} ms CPU)"
                for g, p in self.pauses.items()
            )
            + f"; {total * 1000:.0f} ms CPU in all"
        )


@dataclass
class Served:
    url: str
    task: asyncio.Task[None]


async def _listen(server: Any, fn: Any) -> Served:
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def run() -> None:
        async for config in server(fn):
            if not ready.done():
                ready.set_result(str(config["url"]))

    task = asyncio.create_task(run())
    url = await asyncio.wait_for(ready, 10)
    return Served(f"{url.rstrip('/')}/pods", task)


def _server_options(certs: devcerts.DevCertificates) -> dict[str, Any]:
    return {
        "addr": "127.0.0.1",
        "port": free_port(),
        "host": "127.0.0.1",
        "certfile": certs.cert_file,
        "pkeyfile": certs.key_file,
        "cafile": certs.ca_file,
    }


async def serve_distroguard(admitter: Handler, certs: devcerts.DevCertificates) -> Served:
    """The operator's server answering through the admitter, as `distroguard run` serves."""

    async def unused(*_: Any, **__: Any) -> Any:
        raise AssertionError("AdmissionServer does not use kopf's dispatch")

    return await _listen(AdmissionServer(handler=admitter, **_server_options(certs)), unused)


async def serve_kopf_stock(admitter: Admitter, certs: devcerts.DevCertificates) -> Served:
    """The baseline: kopf's own server and generic dispatch to a `@kopf.on.validate` handler that asks the
    same admitter, wired as `kopf.operator` wires them."""
    registry = kopf.OperatorRegistry()

    @kopf.on.validate("", "v1", "pods", id="pods", registry=registry)
    async def validate(**kwargs: Any) -> None:
        body, resource = kwargs["body"], kwargs["resource"]
        request = AdmissionRequest(
            uid=str(kwargs["uid"]),
            operation=kwargs["operation"],
            kind=GroupVersionKind(resource.group, resource.version, str(body.get("kind", ""))),
            resource=resource.plural,
            resource_group=resource.group,
            sub_resource=kwargs["subresource"],
            namespace=body.metadata.namespace,
            name=body.metadata.name,
            object=body,
            old_object=kwargs["old"],
            dry_run=kwargs["dryrun"],
            username=str(kwargs["userinfo"].get("username", "")),
        )
        answer = await admitter(request)
        kwargs["warnings"].extend(answer.warnings)
        if not answer.allowed:
            raise kopf.AdmissionError(answer.message, code=answer.code)

    insights = references.Insights()
    insights.webhook_resources.add(
        references.Resource(group="", version="v1", plural="pods", kind="Pod", namespaced=True)
    )
    fn = functools.partial(
        serve_admission_request,
        settings=kopf.OperatorSettings(),
        memories=ResourceMemories(),
        memobase=ephemera.Memo(),
        registry=registry,
        insights=insights,
        indices=OperatorIndexers().indices,
    )
    return await _listen(kopf.WebhookServer(**_server_options(certs)), fn)


async def stop(served: Served) -> None:
    served.task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await served.task


async def serve_bare(answer: bytes, certs: devcerts.DevCertificates) -> tuple[str, web.AppRunner]:
    """The least an aiohttp server can do: read, parse, answer the same bytes."""

    async def handle(request: web.Request) -> web.Response:
        orjson.loads(await request.read())
        return web.Response(body=answer, content_type="application/json")

    app = web.Application()
    app.router.add_post("/pods", handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs.cert_file, certs.key_file)
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    return f"https://127.0.0.1:{port}/pods", runner


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------------- the load (child)


@dataclass
class Load:
    url: str
    cafile: str
    body: bytes
    connections: int
    requests: int
    seconds: float
    rate: float | None = None
    """Reviews per second offered in all (open loop, paced per connection); None: as fast as answered."""


def run_load(load: Load, results: Any, clock: Any) -> None:
    """In a child process: `connections` workers posting until `requests` are done or `seconds` pass;
    `clock` is set when the measured period starts (the connections are open)."""
    with contextlib.suppress(AttributeError, OSError):
        others = set(range(os.cpu_count() or 1)) - {0}  # the servers have CPU 0
        if others:
            os.sched_setaffinity(0, others)
    results.put(asyncio.run(_load(load, clock)))


async def _load(load: Load, clock: Any) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=load.cafile)
    target = urllib.parse.urlsplit(load.url)
    host, port = target.hostname or "127.0.0.1", target.port or 443
    request = (
        f"POST {target.path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(load.body)}\r\n\r\n"
    ).encode() + load.body
    clients = [Client(host, port, context, request) for _ in range(load.connections)]
    latencies: list[float] = []
    failures = 0
    left = [load.requests]
    # Open every connection (TLS handshakes) before the clock starts.
    await asyncio.gather(*(client.post() for client in clients))
    deadline = time.perf_counter() + load.seconds

    async def worker(index: int) -> None:
        nonlocal failures
        sent = 0
        client = clients[index]
        while left[0] > 0 and time.perf_counter() < deadline:
            left[0] -= 1
            if load.rate:  # this connection's next slot in the schedule
                slot = begin + (sent * load.connections + index) / load.rate
                await asyncio.sleep(max(0.0, slot - time.perf_counter()))
                sent += 1
            started = time.perf_counter()
            ok = await client.post()
            latencies.append(time.perf_counter() - started)
            failures += not ok

    clock.set()
    dialled = sum(client.dials for client in clients)
    begin = started = time.perf_counter()
    await asyncio.gather(*(worker(index) for index in range(load.connections)))
    elapsed = time.perf_counter() - started
    for client in clients:
        client.close()
    return {
        "latencies": latencies,
        "elapsed": elapsed,
        "failures": failures,
        "dials": sum(client.dials for client in clients) - dialled,
    }


class Client(asyncio.Protocol):
    """One kept-alive HTTPS connection posting the same prepared request, dialled again when the server
    closes it (`Connection: close`, as distroguard's server retires a connection past its age). A plain
    protocol, not an HTTP client library: the load generator has one core, and must out-run a server
    that has one too. An answer counts as good when its status is 200 and it carries `"allowed"`."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext, request: bytes) -> None:
        self.host, self.port, self.context, self.request = host, port, context, request
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.answer: asyncio.Future[bool] | None = None
        self.expected: int | None = None  # the whole answer's length, once its headers are in
        self.closing = False
        self.ok = False
        self.dials = 0

    async def post(self) -> bool:
        try:
            if self.transport is None or self.transport.is_closing():
                self.transport, _ = await asyncio.get_running_loop().create_connection(
                    lambda: self, self.host, self.port, ssl=self.context, server_hostname=self.host
                )
            self.answer = asyncio.get_running_loop().create_future()
            self.transport.write(self.request)
            return await self.answer
        except (OSError, ssl.SSLError):
            self.transport = None
            return False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.dials += 1
        self.buffer.clear()
        self.expected = None
        self.closing = False

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.expected is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            length = int(head.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            self.expected = end + 4 + length
            self.closing = b"connection: close" in head
            self.ok = head.startswith(b"http/1.1 200")
        if len(self.buffer) < self.expected:
            return
        ok = self.ok and b'"allowed"' in self.buffer[: self.expected]
        del self.buffer[: self.expected]
        self.expected = None
        if self.closing and self.transport is not None:
            self.transport.close()
        if self.answer is not None and not self.answer.done():
            self.answer.set_result(ok)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.answer is not None and not self.answer.done():
            self.answer.set_result(False)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def measure(load: Load) -> tuple[dict[str, float], GcPauses]:
    """The load's figures, from the moment its connections are open (their handshakes are not counted:
    the retired connections' are), with the server process's CPU time and the collector's pauses meanwhile."""
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    clock = ctx.Event()
    child = ctx.Process(target=run_load, args=(load, results, clock))
    child.start()
    if not clock.wait(timeout=120):
        raise RuntimeError("the load generator did not start")
    cpu = time.process_time()
    pauses = GcPauses()
    try:
        outcome = results.get(timeout=load.seconds + 120)
    finally:
        pauses.stop()
    cpu = time.process_time() - cpu  # this process: the servers' event loop (the load is the child's)
    child.join(30)
    latencies = sorted(outcome["latencies"])
    n = len(latencies)
    return {
        "requests": n,
        "failures": outcome["failures"],
        "handshakes": outcome["dials"],
        "rps": n / outcome["elapsed"],
        "p50": latencies[n // 2] * 1000,
        "p99": latencies[min(n - 1, int(n * 0.99))] * 1000,
        "cpu": cpu / max(outcome["elapsed"], 1e-9),
        "cpu_us": cpu / max(n, 1) * 1e6,
    }, pauses


@contextlib.contextmanager
def stock_logging() -> Iterator[None]:
    """kopf's and aiohttp's INFO line per request, as a stock kopf operator writes them."""
    levels = {name: logging.getLogger(name).level for name in HOT_PATH_LOGGERS}
    for name in HOT_PATH_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


# ------------------------------------------------------------------------------------------- the images


async def pushed(registry_url: str, address: str, root: Files) -> str:
    repo = f"bench/{uuid.uuid4().hex[:10]}"
    await push(registry_url, repo, "1", ImageBuilder().layer(root).build())
    return f"{address}/{repo}:1"


async def cold_latencies(url: str, cafile: Path, images: Sequence[str]) -> list[float]:
    context = ssl.create_default_context(cafile=str(cafile))
    timings = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        for index, image in enumerate(images):
            body = json.dumps(pod_review([image], uid=f"cold-{index}")).encode()
            started = time.perf_counter()
            async with session.post(url, data=body, headers=JSON_HEADERS) as response:
                document = json.loads(await response.read())
            timings.append(time.perf_counter() - started)
            if document["response"].get("status", {}).get("code", 403) != 403:
                raise RuntimeError(f"unexpected cold answer: {document}")
    return timings


# ------------------------------------------------------------------------------------------------- main


async def bench(args: argparse.Namespace, registry_url: str, address: str, workdir: Path) -> None:
    images = [
        await pushed(registry_url, address, {**DEBIAN_12_ROOT, "/usr/bin/migrate": b"#!/bin/sh\n"}),  # init
        await pushed(registry_url, address, DEBIAN_12_ROOT),  # app
        await pushed(registry_url, address, DISTROLESS_STATIC_ROOT),  # sidecar
    ]
    cold_images = [
        await pushed(registry_url, address, {**DEBIAN_12_ROOT, f"/etc/bench-{i}": uuid.uuid4().bytes})
        for i in range(args.cold)
    ]
    certs = devcerts.generate(workdir)
    policies = PolicyStore(load_policies(POLICIES))
    pool = ResolverPool(RegistrySettings(), ttl=600)
    await pool.start()
    catalog = EolCatalog(bundled_snapshot())
    admitter = Admitter(
        policies=policies,
        pool=pool,
        namespaces=NoLabels(),  # type: ignore[arg-type]
        secrets=NoSecrets(),  # type: ignore[arg-type]
        catalog=CatalogHolder(catalog),
        budget=3.0,
        observer=Metrics(process=False),  # each review counted in the series `distroguard run` exports
    )
    for image in images:  # warm the caches
        await pool.anonymous.resolve(image)
    served = await serve_distroguard(admitter, certs)
    stock_served = await serve_kopf_stock(admitter, certs)
    # The ceiling: the same server answering every review with one answer prepared before (each review
    # read, decoded and routed as ever; no decision): what any decision behind this server adds to.
    prepared = await admitter(decode_review(json.dumps(pod_review(images)).encode()))

    async def constant(request: AdmissionRequest) -> AdmissionAnswer:
        return prepared

    ceiling_served = await serve_distroguard(constant, certs)

    review = pod_review(images)
    body = json.dumps(review).encode()
    # The bare handler answers exactly what distroguard answers.
    context = ssl.create_default_context(cafile=str(certs.ca_file))
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session,
        session.post(served.url, data=body, headers=JSON_HEADERS) as response,
    ):
        answer = await response.read()
    status = json.loads(answer)["response"].get("status", {})
    if status.get("code", 403) != 403:
        raise RuntimeError(f"distroguard did not answer the review: {status}")
    bare_url, bare_runner = await serve_bare(answer, certs)

    settle_heap()  # as `distroguard run` does once set up

    def load(url: str, rate: float | None = None) -> Load:
        return Load(url, str(certs.ca_file), body, args.connections, args.requests, args.seconds, rate)

    async def measured(load: Load) -> Row:
        return Row(*await asyncio.to_thread(measure, load))

    # The servers compete for the CPU with nothing of ours: the load generator is another process. The
    # sides take turns, --rounds times, and each is represented by its median run (by server CPU per
    # review): a shared machine's load moves between runs by more than the differences measured.
    profiler = cProfile.Profile() if args.profile else None
    closed: dict[str, list[Row]] = {"distroguard": [], "ceiling": [], "bare": []}
    for round_number in range(args.rounds):
        if profiler is not None and round_number == 0:
            profiler.enable()
        closed["distroguard"].append(await measured(load(served.url)))
        if profiler is not None and round_number == 0:
            profiler.disable()
            profiler.dump_stats(args.profile)
        closed["ceiling"].append(await measured(load(ceiling_served.url)))
        closed["bare"].append(await measured(load(bare_url)))
    distroguard, ceiling, bare = (median_row(closed[side], "cpu_us") for side in closed)
    # The baseline: kopf's stock server and dispatch to a @kopf.on.validate handler asking the same admitter.
    with stock_logging():
        stock = await measured(load(stock_served.url))
    # Open loop below saturation: 80% of what distroguard's server answered in the closed loop above, the
    # same offered rate to the ceiling and the bare handler; then each --rate. Each side's median by p99.
    capacity = distroguard.figures["rps"]
    at_80 = round(capacity * 0.8)
    paced: dict[int, tuple[Row, Row, Row]] = {}
    for rate in [at_80, *args.rate]:
        runs: tuple[list[Row], list[Row], list[Row]] = ([], [], [])
        for _ in range(args.rounds):
            for url, kept in zip((served.url, ceiling_served.url, bare_url), runs, strict=True):
                kept.append(await measured(load(url, rate)))
        ours_paced, ceiling_paced, bare_paced = (median_row(kept, "p99") for kept in runs)
        paced[rate] = (ours_paced, ceiling_paced, bare_paced)
    cold = await cold_latencies(served.url, certs.ca_file, cold_images)

    await stop(served)
    await stop(stock_served)
    await stop(ceiling_served)
    await bare_runner.cleanup()
    await pool.close()

    decoded = json.loads(answer)["response"]
    print(
        f"python {platform.python_version()}, aiohttp {aiohttp.__version__}, kopf {kopf.__version__}, "
        f"{os.cpu_count()} CPUs, server pinned to {sorted(os.sched_getaffinity(0))}, "
        f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())} at the end"
    )
    print(
        f"review: {len(body)} bytes, 3 containers; answer: allowed={decoded['allowed']}, "
        f"{len(decoded.get('warnings', []))} warnings, {len(answer)} bytes"
    )
    print(f"load: {args.connections} connections, up to {args.requests} requests or {args.seconds:g} s\n")
    header = (
        f"{'path':<28}{'reviews/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'requests':>10}{'failed':>8}"
        f"{'CPU':>6}{'CPU µs/review':>15}{'handshakes':>12}"
    )
    print(header)
    rows = (
        ("distroguard (kopf, warm)", distroguard),
        ("kopf's stock path", stock),
        ("our server, one answer", ceiling),
        ("bare aiohttp + json", bare),
    )
    for name, row in rows:
        print(row.line(name))
    print(
        f"\nserver CPU µs per review in each of the {args.rounds} closed-loop rounds (the median above): "
        + "; ".join(
            f"{side} " + ", ".join(f"{r.figures['cpu_us']:.0f}" for r in runs)
            for side, runs in closed.items()
        )
    )
    ours, theirs = distroguard.figures, bare.figures
    print(
        f"\nratio distroguard / bare: {ours['rps'] / theirs['rps']:.0%} of the bare throughput; "
        f"{theirs['cpu_us'] / ours['cpu_us']:.0%} by server CPU per review (one-core capacity "
        f"{1e6 / ours['cpu_us']:,.0f} against {1e6 / theirs['cpu_us']:,.0f} reviews/s)"
    )
    top = ceiling.figures
    print(
        f"the ceiling, our server answering one prepared answer: {theirs['cpu_us'] / top['cpu_us']:.0%} of "
        f"the bare handler by server CPU per review; the decision costs "
        f"{ours['cpu_us'] - top['cpu_us']:.0f} µs per review on top of it"
    )
    for rate, (ours_paced, ceiling_paced, bare_paced) in paced.items():
        share = (
            f", 80% of distroguard's {capacity:,.0f} reviews/s above" if rate == round(capacity * 0.8) else ""
        )
        print(f"\nat {rate:g} reviews/s offered over {args.connections} connections (open loop{share}):")
        print(ours_paced.line("distroguard (kopf, warm)"))
        print(ceiling_paced.line("our server, one answer"))
        print(bare_paced.line("bare aiohttp + json"))
    print("\ngarbage collections in this process during each run (a pause stops every request in flight):")
    for name, row in (
        *rows,
        *(
            (f"{label} at {rate:g}/s", row)
            for rate, pair in paced.items()
            for label, row in zip(("distroguard", "ceiling", "bare"), pair, strict=True)
        ),
    ):
        print(f"  {name:<30}{row.pauses}")
    print(
        f"\ncold admission, unseen image from the local registry ({len(cold)} images, one at a time): "
        f"p50 {statistics.median(cold) * 1000:.0f} ms, max {max(cold) * 1000:.0f} ms"
    )


def median_row(rows: list[Row], figure: str) -> Row:
    """The run whose `figure` is the median of the runs (the upper one of an even count)."""
    return sorted(rows, key=lambda row: row.figures[figure])[len(rows) // 2]


@dataclass
class Row:
    """One measured run: the load's figures and the collector's pauses meanwhile."""

    figures: dict[str, float]
    pauses: GcPauses

    def line(self, name: str) -> str:
        row = self.figures
        return (
            f"{name:<28}{row['rps']:>10.0f}{row['p50']:>9.1f}{row['p99']:>9.1f}"
            f"{row['requests']:>10.0f}{row['failures']:>8.0f}{row['cpu']:>6.0%}{row['cpu_us']:>15.0f}"
            f"{row['handshakes']:>12.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--requests", type=int, default=30_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--cold", type=int, default=15)
    parser.add_argument(
        "--rounds", type=int, default=3, help="runs of each side, taking turns; each side's median is shown"
    )
    parser.add_argument(
        "--rate",
        type=float,
        action="append",
        default=[],
        help="also measure at this offered rate, reviews/s over the same connections (repeatable)",
    )
    parser.add_argument("--profile", metavar="FILE", help="cProfile the distroguard run into FILE")
    args = parser.parse_args()
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    # distroguard run's logging, with the records formatted and thrown away instead of printed.
    configure_logging("json", verbose=False)
    devnull = open(os.devnull, "w")  # noqa: SIM115 - for the whole run
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(devnull)
    with running_registry() as registry, tempfile.TemporaryDirectory(prefix="admission-bench-") as workdir:
        asyncio.run(bench(args, registry.url, registry.address, Path(workdir)))


if __name__ == "__main__":
    main()
