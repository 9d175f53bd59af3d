"""distroguard as users run it, on the tests' single-node cluster: what building it costs, and what its
webhook pods add to `kubectl create`.

    python bench/cluster_bench.py [--creates 200] [--blocks 4] [--cold-build]

Builds:
- the control plane and the node parts (kubelet, kube-proxy, kube-scheduler, kube-controller-manager,
  the pause image) as `scripts/testenv build --node` makes them: with `--cold-build`, into an empty
  cache with an empty Go build cache (Go modules still come from the module cache or the proxy), which
  takes many minutes on two cores; without it, the cached build is checked and its time printed (warm);
- distroguard's image, `scripts/build-image` from the project's Dockerfile on the stand-in
  python:3.13-slim-trixie: with `--cold-build` into an empty image store (pip downloads every locked
  dependency), without it on the script's layer cache.

Latency: the chart installed as the tests install it (two webhook replicas, the audit, the default
policies), then `--creates` Deployments (replicas 0: admission and storage, no pods) of a Debian image
that the replicas have already resolved (warm), with the webhook configuration in place and without it
(deleted, then created again from its saved copy), in `--blocks` interleaved blocks so that the machine's
load touches both alike. Two clients: `kubectl create deployment` (a process per create, as a user runs
it) and a plain HTTPS POST on a kept-alive connection (the same request without kubectl's start-up). p50
and p99 of each, and the difference. Target: the webhook adds at most 5 ms at p50.

Not a test: the figures depend on the machine. Needs root (the node) and nothing else on this machine
using the node's bridge (`scripts/testenv down` first).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support import kube  # noqa: E402
from support import node as node_module  # noqa: E402
from support.manifests import deployment  # noqa: E402
from support.release import RELEASE, Release, stage  # noqa: E402
from support.review_load import admin_context  # noqa: E402

WARM_UP = 10


def build_control_plane_and_node(cold: bool) -> dict[str, float]:
    """`scripts/testenv build --node`; the seconds of each part, as the script reports them."""
    env = kube.child_env()
    with tempfile.TemporaryDirectory(prefix="distroguard-cold-build-") as scratch:
        if cold:
            env["DISTROGUARD_TESTENV_CACHE"] = str(Path(scratch) / "testenv")
            env["GOCACHE"] = str(Path(scratch) / "go-build")
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "testenv"), "build", "--node"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        total = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"scripts/testenv build --node failed:\n{done.stderr[-3000:]}")
    output = done.stdout + done.stderr
    parts = {"total": total}
    for label, pattern in (
        ("kube-apiserver + etcd", r"kube-apiserver and etcd ready in (\S+)"),
        ("kubectl + helm", r"kubectl and helm ready in (\S+)"),
        ("node parts", r"node parts ready in (\S+)"),
    ):
        found = re.search(pattern, output)
        if found:
            parts[label] = _seconds(found.group(1))
    return parts


def _seconds(text: str) -> float:
    """`1m23s` or `45s` (the script's `elapsed`) as seconds."""
    minutes, _, rest = text.rpartition("m")
    return float(minutes or 0) * 60 + float(rest.rstrip("s") or 0)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class WebhookSwitch:
    """The release's ValidatingWebhookConfiguration, removed and put back from its saved copy."""

    def __init__(self, plane: kube.ControlPlane) -> None:
        self.plane = plane
        saved = plane.kubectl_json("get", "validatingwebhookconfiguration", RELEASE)
        metadata = saved["metadata"]
        for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
            metadata.pop(key, None)
        self.saved = json.dumps(saved)

    def off(self) -> None:
        self.plane.kubectl("delete", "validatingwebhookconfiguration", RELEASE)

    def on(self) -> None:
        self.plane.kubectl("create", "-f", "-", input=self.saved)


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--creates", type=int, default=200, help="creates with and without the webhook, each")
    parser.add_argument(
        "--audit", action="store_true", help="keep the chart's audit pod (it audits every created Deployment)"
    )
    parser.add_argument("--blocks", type=int, default=4, help="interleaved blocks of each")
    parser.add_argument("--cold-build", action="store_true", help="build from empty caches (many minutes)")
    args = parser.parse_args()
    if args.creates < args.blocks or args.blocks < 1:
        parser.error("--creates must be at least --blocks, and --blocks at least 1")

    mode = "cold: empty caches" if args.cold_build else "warm: cached"
    print(f"builds ({mode})", flush=True)
    parts = build_control_plane_and_node(args.cold_build)
    for label, seconds in parts.items():
        print(f"  {label:<34} {seconds:8.1f} s", flush=True)

    node = node_module.start(progress=lambda msg: print(f"  [node] {msg}", file=sys.stderr))
    try:
        with tempfile.TemporaryDirectory(prefix="distroguard-bench-store-") as store:
            staged = stage(node, store=Path(store) if args.cold_build else None)
        print(
            f"  {'distroguard image':<34} {staged.built.seconds:8.1f} s   "
            f"({staged.built.size / 1e6:.0f} MB uncompressed)",
            flush=True,
        )
        release = Release(node, staged, namespace=f"distroguard-{uuid.uuid4().hex[:6]}")
        release.install([] if args.audit else ["audit.enabled=false"])
        measure(node, release, args.creates, args.blocks)
    finally:
        node.stop()


def measure(node: node_module.Node, release: Release, creates: int, blocks: int) -> None:
    plane = node.plane
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    plane.kubectl("create", "namespace", namespace)
    image = release.staged.debian
    context = admin_context(plane)
    host = plane.server.removeprefix("https://")
    connection = http.client.HTTPSConnection(host, context=context, timeout=60)
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"

    def kubectl_create() -> float:
        started = time.perf_counter()
        plane.kubectl(
            "create",
            "deployment",
            f"k-{uuid.uuid4().hex[:10]}",
            "-n",
            namespace,
            f"--image={image}",
            "--replicas=0",
        )
        return time.perf_counter() - started

    def api_create() -> float:
        manifest = deployment(namespace, f"a-{uuid.uuid4().hex[:10]}", image, replicas=0)
        body = json.dumps(manifest)
        started = time.perf_counter()
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        elapsed = time.perf_counter() - started
        if response.status != 201:
            raise SystemExit(f"create answered {response.status}")
        return elapsed

    before = release.admission_counts()
    for _ in range(WARM_UP):  # the image resolved on both replicas, connections open
        kubectl_create()
        api_create()
    switch = WebhookSwitch(plane)
    samples: dict[tuple[str, str], list[float]] = {
        (client, side): [] for client in ("kubectl", "api") for side in ("without", "with")
    }
    per_block = creates // blocks
    for _ in range(blocks):
        for side in ("without", "with"):
            if side == "without":
                switch.off()
            else:
                switch.on()
            time.sleep(2)  # the API server's view of webhook configurations follows a watch
            for _ in range(per_block):
                samples[("kubectl", side)].append(kubectl_create())
                samples[("api", side)].append(api_create())
    answered = sum((release.admission_counts() - before).values())
    connection.close()
    plane.kubectl("delete", "namespace", namespace, "--wait=false")

    print(
        f"\ncreate deployment, replicas 0, warm image: {per_block * blocks} each, {blocks} interleaved blocks"
    )
    print(f"  {'client':<52} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    clients = (("kubectl", "kubectl create (a process per create)"), ("api", "HTTPS POST (kept-alive)"))
    for client, label in clients:
        rows = {}
        for side in ("without", "with"):
            values = samples[(client, side)]
            rows[side] = (percentile(values, 0.5), percentile(values, 0.99), statistics.fmean(values))
            p50, p99, mean = (v * 1e3 for v in rows[side])
            print(f"  {label + ', ' + side + ' the webhook':<52} {p50:8.1f} {p99:8.1f} {mean:8.1f}")
        added = [(w - o) * 1e3 for w, o in zip(rows["with"], rows["without"], strict=True)]
        print(f"  {label + ', added':<52} {added[0]:8.1f} {added[1]:8.1f} {added[2]:8.1f}")
    through = WARM_UP * 2 + per_block * blocks * 2
    print(
        f"\nreviews the replicas answered: {answered} (Deployments created while the webhook was on: "
        f"{through}; the ReplicaSets the controller makes of them are reviewed too)"
    )
    print(f"machine: {os.cpu_count()} cores; target: added p50 <= 5 ms")


if __name__ == "__main__":
    main()
