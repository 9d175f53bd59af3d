"""Side by side with the engine users already run: what Kyverno and distroguard each add to a Pod create
through the real API server.

    python bench/kyverno_bench.py [--sequential 300] [--clients 20] [--seconds 15] [--rounds 2]

Builds Kyverno (`scripts/testenv build --kyverno`: cached after the first run; its time printed), starts
one control plane (etcd + kube-apiserver on 127.0.0.1) and a local registry (Debian's docker-registry)
holding a Debian image and an Alpine one, then, one at a time against that API server:

- no webhook: the baseline;
- Kyverno v1.19.1, outside the cluster (`support.kyverno`), with one ClusterPolicy of one image-pattern
  validate rule (images must come from the local registry), Enforce;
- a minimal webhook (`bench/minimal_webhook.py`: aiohttp and orjson, refusing one image prefix, in a
  process of its own): what calling any webhook costs the API server, and the floor for a Python one;
- `distroguard run --dev` with `policies/no-musl.yaml` (the Debian image resolved once before measuring:
  warm, as nearly every admission in a running cluster is).

Each engine is proven to be in the path before it is measured: a Pod it must refuse is refused. Each side
sends server-side dry-run Pod creates (`dryRun=All`: admission runs in full, nothing is stored) over
kept-alive HTTPS as the API server's admin: `--sequential` creates from one client (latency p50/p99), then
`--clients` concurrent clients for `--seconds` (throughput). The sides run in `--rounds` interleaved
rounds (no webhook, the minimal webhook, Kyverno, distroguard, again), so that the machine's load touches
each alike; the table has each side's median over the rounds, the latency each engine adds at p50 over
the no-webhook baseline, and the share of the baseline's throughput each keeps.

Not a test: the figures depend on the machine, and CI does not run it. Targets: distroguard
adds <= 1 ms at p50 and keeps >= 80% of the baseline throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from distroguard.operator.dev import certs as devcerts  # noqa: E402
from support import kube, kyverno  # noqa: E402
from support.distros import ALPINE_ROOT, DEBIAN_12_ROOT  # noqa: E402
from support.images import ImageBuilder, push  # noqa: E402
from support.operator_process import OperatorProcess  # noqa: E402
from support.registry_server import running_registry  # noqa: E402
from support.review_load import admin_context  # noqa: E402

NAMESPACE = "bench"
SIDES = ("no webhook", "minimal webhook", "Kyverno", "distroguard")
WARM_UP = 20


def image_pattern_policy(registry: str) -> dict[str, Any]:
    """One ClusterPolicy, one validate rule: every container's image comes from `registry`."""
    return {
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {"name": "images-from-the-local-registry"},
        "spec": {
            "background": False,
            "rules": [
                {
                    "name": "local-registry-only",
                    "match": {"any": [{"resources": {"kinds": ["Pod"], "namespaces": [NAMESPACE]}}]},
                    "validate": {
                        "failureAction": "Enforce",
                        "message": f"images must come from {registry}",
                        "pattern": {"spec": {"containers": [{"image": f"{registry}/*"}]}},
                    },
                }
            ],
        },
    }


def pod(image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "bench-", "namespace": NAMESPACE},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


# ------------------------------------------------------------------------------------------- the load


@dataclass(frozen=True)
class Figures:
    p50_ms: float
    p99_ms: float
    per_second: float
    errors: int


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _create(session: aiohttp.ClientSession, url: str, body: bytes) -> tuple[float, bool]:
    started = time.perf_counter()
    async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
        await response.read()
        return time.perf_counter() - started, response.status == 201


async def _measure(
    plane: kube.ControlPlane, image: str, sequential: int, clients: int, seconds: float
) -> Figures:
    context = admin_context(plane)
    url = f"{plane.server}/api/v1/namespaces/{NAMESPACE}/pods?dryRun=All"
    body = json.dumps(pod(image)).encode()
    connector = aiohttp.TCPConnector(limit=clients, ssl=context)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(WARM_UP):
            await _create(session, url, body)
        latencies = []
        errors = 0
        for _ in range(sequential):
            seconds_taken, ok = await _create(session, url, body)
            latencies.append(seconds_taken)
            errors += not ok
        done = 0
        deadline = time.perf_counter() + seconds

        async def client() -> None:
            nonlocal done, errors
            while time.perf_counter() < deadline:
                _, ok = await _create(session, url, body)
                done += ok
                errors += not ok

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return Figures(
        percentile(latencies, 0.5) * 1e3, percentile(latencies, 0.99) * 1e3, done / elapsed, errors
    )


def measure(plane: kube.ControlPlane, image: str, args: argparse.Namespace) -> Figures:
    return asyncio.run(_measure(plane, image, args.sequential, args.clients, args.seconds))


# ------------------------------------------------------------------------------------------ the sides


def dry_run(plane: kube.ControlPlane, manifest: dict[str, Any]) -> tuple[bool, str]:
    done = plane.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(manifest), check=False)
    return done.returncode == 0, done.stderr


def wait_until(check: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.5)


def wait_refused(plane: kube.ControlPlane, manifest: dict[str, Any], text: str, what: str) -> None:
    def refused() -> bool:
        admitted, message = dry_run(plane, manifest)
        return not admitted and text in message

    wait_until(refused, f"{what} refuses {manifest['spec']['containers'][0]['image']}")


def wait_admitted(plane: kube.ControlPlane, manifest: dict[str, Any], what: str) -> None:
    wait_until(lambda: dry_run(plane, manifest)[0], f"{what}: {manifest['spec']['containers'][0]['image']}")


@contextmanager
def kyverno_side(plane: kube.ControlPlane, registry: str, outside: str, workdir: Path) -> Iterator[None]:
    started = kyverno.start(plane, workdir / f"kyverno-{uuid.uuid4().hex[:6]}")
    try:
        started.wait_ready()
        policy = image_pattern_policy(registry)
        plane.kubectl("apply", "-f", "-", input=json.dumps(policy))
        plane.kubectl(
            "wait", "--for=condition=Ready", f"clusterpolicy/{policy['metadata']['name']}", "--timeout=120s",
            timeout=150,
        )  # fmt: skip
        wait_refused(plane, pod(outside), f"images must come from {registry}", "Kyverno")
        yield
    finally:
        plane.kubectl("delete", "clusterpolicies", "--all", "--ignore-not-found", check=False)
        started.stop()
    wait_admitted(plane, pod(outside), "no webhook after Kyverno")


@contextmanager
def distroguard_side(plane: kube.ControlPlane, musl: str, workdir: Path) -> Iterator[None]:
    process = OperatorProcess(
        plane,
        f"distroguard-bench-{uuid.uuid4().hex[:6]}",
        "distroguard",
        workdir / f"distroguard-{uuid.uuid4().hex[:6]}.log",
        ["--metrics-port", "0", "--policy-dir", str(ROOT / "policies" / "no-musl.yaml")],
    )
    try:
        process.start()
        process.wait_registered()
        wait_refused(plane, pod(musl), "musl", "distroguard")
        yield
    finally:
        process.stop()
    wait_admitted(plane, pod(musl), "no webhook after distroguard")


@contextmanager
def minimal_side(plane: kube.ControlPlane, outside: str, workdir: Path) -> Iterator[None]:
    """`minimal_webhook.py` in a process of its own, registered for pod creates in the bench namespace."""
    directory = workdir / f"minimal-{uuid.uuid4().hex[:6]}"
    directory.mkdir()
    certs = devcerts.generate(directory)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "minimal_webhook.py"), str(port), str(certs.cert_file),
         str(certs.key_file), outside.split("/", 1)[0]],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    name = "minimal-webhook"
    configuration = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": "minimal.bench.local",
                "clientConfig": {
                    "url": f"https://127.0.0.1:{port}/pods",
                    "caBundle": base64.b64encode(certs.ca_file.read_bytes()).decode(),
                },
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["pods"],
                    }
                ],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}},
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 10,
            }
        ],
    }
    try:
        plane.kubectl("apply", "-f", "-", input=json.dumps(configuration))
        wait_refused(plane, pod(outside), "refused by the minimal webhook", "the minimal webhook")
        yield
    finally:
        plane.kubectl("delete", "validatingwebhookconfiguration", name, "--ignore-not-found", check=False)
        process.terminate()
        process.wait(10)
    wait_admitted(plane, pod(outside), "no webhook after the minimal one")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------------------------ main


def build_kyverno() -> float:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "testenv"), "build", "--kyverno"], check=False, text=True
    )
    if done.returncode != 0:
        raise SystemExit("scripts/testenv build --kyverno failed")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sequential", type=int, default=300, help="creates from one client, per side per round"
    )
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients for the throughput")
    parser.add_argument(
        "--seconds", type=float, default=15.0, help="seconds of concurrent load per side per round"
    )
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of the sides")
    parser.add_argument(
        "--without-kyverno", action="store_true", help="no Kyverno side (no build): checks the rest quickly"
    )
    args = parser.parse_args()
    sides = [side for side in SIDES if not (args.without_kyverno and side == "Kyverno")]

    if not args.without_kyverno:
        print(
            f"build: scripts/testenv build --kyverno took {build_kyverno():.1f} s (cached after the first)",
            flush=True,
        )
    results: dict[str, list[Figures]] = {side: [] for side in sides}
    plane = kube.start(progress=lambda msg: print(f"  [testenv] {msg}", file=sys.stderr))
    try:
        with running_registry() as registry, tempfile.TemporaryDirectory(prefix="kyverno-bench-") as tmp:
            debian = f"{registry.address}/bench/debian:12"
            alpine = f"{registry.address}/bench/alpine:3"
            asyncio.run(
                push(registry.url, "bench/debian", "12", ImageBuilder().layer(DEBIAN_12_ROOT).build())
            )
            asyncio.run(push(registry.url, "bench/alpine", "3", ImageBuilder().layer(ALPINE_ROOT).build()))
            outside = "registry.invalid/app:1"  # refused by Kyverno's pattern; never pulled nor looked up
            plane.kubectl("create", "namespace", NAMESPACE)
            plane.kubectl("create", "namespace", "distroguard")
            workdir = Path(tmp)
            for round_number in range(1, args.rounds + 1):
                for side in sides:
                    print(f"round {round_number}: {side}", flush=True)
                    if side == "no webhook":
                        figures = measure(plane, debian, args)
                    elif side == "minimal webhook":
                        with minimal_side(plane, outside, workdir):
                            figures = measure(plane, debian, args)
                    elif side == "Kyverno":
                        with kyverno_side(plane, registry.address, outside, workdir):
                            figures = measure(plane, debian, args)
                    else:
                        with distroguard_side(plane, alpine, workdir):
                            figures = measure(plane, debian, args)
                    print(f"  {figures}", flush=True)
                    results[side].append(figures)
    finally:
        plane.stop()
    report(results, args)


def report(results: dict[str, list[Figures]], args: argparse.Namespace) -> None:
    def median(side: str, field: str) -> float:
        return float(statistics.median(float(getattr(f, field)) for f in results[side]))

    base_p50 = median("no webhook", "p50_ms")
    base_rate = median("no webhook", "per_second")
    print(
        f"\ndry-run Pod creates through kube-apiserver {kube.KUBE_VERSION}: {args.sequential} sequential "
        f"(latency), then {args.clients} clients for {args.seconds:.0f} s (throughput); median of "
        f"{args.rounds} interleaved rounds"
    )
    print(
        f"  {'side':<34} {'p50 ms':>7} {'p99 ms':>7} {'added p50':>10} {'creates/s':>10} {'kept':>6} "
        f"{'errors':>7}"
    )
    for side in results:
        p50, p99, rate = median(side, "p50_ms"), median(side, "p99_ms"), median(side, "per_second")
        errors = sum(f.errors for f in results[side])
        label = {
            "minimal webhook": "minimal webhook (aiohttp, orjson)",
            "Kyverno": f"Kyverno {kyverno.KYVERNO_VERSION}, 1 pattern rule",
            "distroguard": "distroguard run --dev, no-musl",
        }.get(side, side)
        added = "" if side == "no webhook" else f"{p50 - base_p50:+.2f}"
        kept = "" if side == "no webhook" else f"{rate / base_rate:.0%}"
        print(f"  {label:<34} {p50:7.2f} {p99:7.2f} {added:>10} {rate:10.0f} {kept:>6} {errors:7d}")
    print(
        f"machine: {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}; "
        "targets: distroguard adds <= 1 ms at p50 and keeps >= 80% of the baseline throughput"
    )


if __name__ == "__main__":
    main()
