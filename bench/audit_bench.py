"""The in-cluster audit at scale: 10,000 pods in 1,000 workloads using 500 distinct images, facts cached.

    python bench/audit_bench.py [--pods 10000] [--workloads 1000] [--images 500] [--namespaces 10]

Against the local control plane (kube-apiserver and etcd from `scripts/testenv build`, on 127.0.0.1):

1. the chart's CRDs and the default policies of policies/ are installed;
2. the cache: one ImageFacts object per image, as a previous audit would have left them (the images live
   on 127.0.0.1:1, where nothing listens: an image the audit did not find in the ImageFacts would fail at
   once and show up as an error, so "facts cached" is checked, not assumed);
3. the workloads: ReplicaSets in `--namespaces` namespaces, each with its share of pods (owner references
   set), two containers a pod (an app image and a sidecar image);
4. baseline: listing every pod and workload object the way the audit does (paged, JSON), in this process:
   the part of an audit no implementation can skip;
5. `distroguard run --role audit`, as the chart runs it: the time from its start to the end of its first
   audit (every PolicyReport, the ClusterPolicyReport and the ImageFacts written), and its peak RSS.

Not a test: figures depend on the machine. Targets: <= 60 s to the final reports, <= 300 MB RSS.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import kubernetes  # noqa: E402

from distroguard.audit.cluster import Cluster, Scope  # noqa: E402
from distroguard.audit.inventory import build_inventory  # noqa: E402
from distroguard.model.record import (  # noqa: E402
    FactsRecord,
    RecordEol,
    RecordLibc,
    RecordOffer,
    RecordOS,
    RecordPlatform,
    RecordReference,
)
from support.kube import ControlPlane, free_port, start  # noqa: E402

CHART = ROOT / "charts" / "distroguard"
# (os id, version, codename, libc, libc version, EOL state): a mix like a real cluster's.
DISTROS = [
    ("debian", "12", "bookworm", "glibc", "2.36", "extended"),
    ("debian", "13", "trixie", "glibc", "2.41", "active"),
    ("ubuntu", "24.04", "noble", "glibc", "2.39", "active"),
    ("alpine", "3.21.3", None, "musl", "1.2.5", "active"),
    ("debian", "10", "buster", "glibc", "2.28", "eol"),
]


def digest_of(n: int) -> str:
    return "sha256:" + f"{n:064x}"


def image_of(n: int) -> str:
    return f"127.0.0.1:1/bench/img-{n}@{digest_of(n)}"


def facts_object(n: int, now: datetime) -> dict[str, Any]:
    os_id, version, codename, libc, libc_version, state = DISTROS[n % len(DISTROS)]
    record = FactsRecord(
        digest=digest_of(n),
        references=(RecordReference(image=image_of(n), digest=digest_of(n), observed_at=now),),
        image=image_of(n),
        single=True,
        offers=(
            RecordOffer(
                platform="linux/amd64",
                digest=digest_of(n),
                size=1000,
                media_type="application/vnd.oci.image.manifest.v1+json",
            ),
        ),
        platforms=(
            RecordPlatform(
                platform="linux/amd64",
                manifest_digest=digest_of(n),
                os=RecordOS(id=os_id, version_id=version, codename=codename),
                libc=RecordLibc(family=libc, version=libc_version),  # type: ignore[arg-type]
                eol=RecordEol(state=state),  # type: ignore[arg-type]
            ),
        ),
        resolved_at=now,
        last_seen=now,
    )
    return {
        "apiVersion": "distroguard.dev/v1alpha1",
        "kind": "ImageFacts",
        "metadata": {"name": digest_of(n).replace(":", "-")},
        "spec": record.model_dump(mode="json", by_alias=True, exclude_none=True),
    }


def replica_set(ns: str, name: str, app: int, sidecar: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": containers(app, sidecar)},
        },
    }


def containers(app: int, sidecar: int) -> dict[str, Any]:
    return {
        "containers": [
            {"name": "app", "image": image_of(app)},
            {"name": "sidecar", "image": image_of(sidecar)},
        ]
    }


def pod(ns: str, name: str, owner: dict[str, Any], app: int, sidecar: int) -> dict[str, Any]:
    meta = owner["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": ns,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": containers(app, sidecar),
    }


def populate(kube: ControlPlane, args: argparse.Namespace) -> None:
    for path in (*sorted((CHART / "crds").glob("*.yaml")), CHART / "files" / "policyreport-crds.yaml"):
        kube.kubectl("apply", "--server-side", "-f", str(path))
    kube.kubectl("wait", "--for=condition=established", "--timeout=60s", "crd", "--all")
    kube.kubectl("apply", "-f", str(ROOT / "policies"))
    api = kubernetes.config.new_client_from_config(config_file=str(kube.kubeconfig))  # type: ignore[no-untyped-call]
    custom = kubernetes.client.CustomObjectsApi(api)
    core = kubernetes.client.CoreV1Api(api)
    apps = kubernetes.client.AppsV1Api(api)
    now = datetime.now(UTC)
    namespaces = [f"bench-{i}" for i in range(args.namespaces)]
    for ns in namespaces:
        core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda n: custom.create_cluster_custom_object(
                    "distroguard.dev", "v1alpha1", "imagefacts", facts_object(n, now)
                ),
                range(args.images),
            )
        )

        def workload(i: int) -> None:
            ns = namespaces[i % len(namespaces)]
            app, sidecar = i % args.images, (i * 7 + 3) % args.images
            owner = apps.create_namespaced_replica_set(
                ns, replica_set(ns, f"w-{i}", app, sidecar), _preload_content=False
            )
            created = json.loads(owner.data)
            for j in range(args.pods // args.workloads):
                core.create_namespaced_pod(
                    ns, pod(ns, f"w-{i}-{j}", created, app, sidecar), _preload_content=False
                )

        list(pool.map(workload, range(args.workloads)))
    print(
        f"populated: {args.images} ImageFacts, {args.workloads} ReplicaSets, {args.pods} pods "
        f"in {time.monotonic() - started:.0f} s",
        flush=True,
    )
    api.close()


def baseline(kube: ControlPlane) -> tuple[float, int]:
    """Seconds to list (and group) every pod and workload object, as the audit does first."""
    cluster = Cluster.from_kubeconfig(str(kube.kubeconfig))
    started = time.monotonic()
    inventory = build_inventory(cluster.pods(Scope(None)), cluster.owners(Scope(None)))
    seconds = time.monotonic() - started
    cluster.close()
    return seconds, len(inventory.workloads)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def lines(path: Path) -> Iterator[str]:
    yield from path.read_text(errors="replace").splitlines()


def run_audit(kube: ControlPlane, workdir: Path) -> dict[str, Any]:
    log = workdir / "audit.log"
    argv = [
        sys.executable,
        "-c",
        "from distroguard.cli.main import main; main()",
        "run",
        *("--role", "audit", "--kubeconfig", str(kube.kubeconfig), "--log-format", "plain"),
        *("--liveness", f"http://127.0.0.1:{free_port()}/healthz"),
        *("--metrics-listen", "127.0.0.1", "--metrics-port", "0"),
        *("--eol-url", ""),  # a benchmark reaches no address off this machine
    ]
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=kube.env())
    try:
        summary = None
        while summary is None:
            if process.poll() is not None:
                sys.exit(f"distroguard run exited:\n{log.read_text()[-4000:]}")
            if time.monotonic() - started > 600:
                sys.exit(f"no audit within 600 s:\n{log.read_text()[-4000:]}")
            summary = next((line for line in lines(log) if "audit completed: " in line), None)
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        rss = peak_rss_mb(process.pid)
        port = next(m.group(1) for line in lines(log) if (m := re.search(r"metrics on [\d.]+:(\d+)", line)))
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            metrics = response.read().decode()
    finally:
        process.terminate()
        process.wait(30)
    requests = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("distroguard_registry_requests_total{")
    )
    audit_seconds = float(re.search(r"in ([\d.]+) s;", summary).group(1))  # type: ignore[union-attr]
    return {
        "elapsed": elapsed,
        "audit": audit_seconds,
        "rss": rss,
        "summary": summary.split("audit completed: ", 1)[1],
        "registry_requests": requests,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--workloads", type=int, default=1_000)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--namespaces", type=int, default=10)
    args = parser.parse_args()
    kube = start(progress=lambda message: print(f"[control plane] {message}", file=sys.stderr))
    try:
        populate(kube, args)
        listed, workloads = baseline(kube)
        result = run_audit(kube, kube.workdir)
        reports = kube.kubectl_json("get", "policyreports", "-A", "-o", "json")["items"]
        ours = [
            r
            for r in reports
            if r["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by") == "distroguard"
        ]
        errors = sum(r["summary"].get("error", 0) for r in ours)
    finally:
        kube.stop()
    print()
    print(f"{'':44} {'figure':>12}   target")
    print(f"{'baseline: list and group every workload':44} {listed:>10.1f} s")
    print(f"{'distroguard: start to the final reports':44} {result['elapsed']:>10.1f} s   <= 60 s")
    print(f"{'  of which the audit itself':44} {result['audit']:>10.1f} s")
    print(f"{'distroguard: peak RSS':44} {result['rss']:>9.0f} MB   <= 300 MB")
    print(f"{'workloads listed / PolicyReports written':44} {workloads:>5} / {len(ours)}")
    print(f"{'registry requests (facts cached)':44} {result['registry_requests']:>12.0f}   0")
    print(f"{'results in error (image not known)':44} {errors:>12}   0")
    print(f"audit log: {result['summary']}")


if __name__ == "__main__":
    main()
