"""The in-cluster audit at scale: pods in workloads using distinct images, facts cached.

    python bench/audit_bench.py [--pods 100000] [--workloads 10000] [--images 5000] [--namespaces 100]
                                [--concurrency 48] [--facts audited|resolved] [-- more `run` arguments]

Against the local control plane (kube-apiserver and etcd from `scripts/testenv build`, on 127.0.0.1; etcd's
data lives in the control plane's temporary working directory, removed at the end):

1. the chart's CRDs and the default policies of policies/ are installed;
2. the cache: one ImageFacts object per image, as a previous audit would have left them, made by the
   audit's own functions with the same EOL catalog (`--facts resolved`: as the resolver found them,
   without the EOL dates the audit adds, so that the first audit writes each again). The images live on
   127.0.0.1:1, where nothing listens: an image the audit did not find in the ImageFacts would fail at
   once and show up as an error, so "facts cached" is checked, not assumed;
3. the workloads: ReplicaSets in `--namespaces` namespaces, each with its share of pods (owner references
   set), two containers a pod (an app image and a sidecar image). Created through the API, `--concurrency`
   requests in flight on one aiohttp session (the API server, not this client, is the limit): the time
   each kind took is printed;
4. baseline: listing every pod and workload object the way the audit does (paged, JSON), in this process:
   the part of an audit no implementation can skip;
5. `distroguard run --role audit`, as the chart runs it: the time from its start to the end of its first
   audit (every PolicyReport, the ClusterPolicyReport and the ImageFacts written), its peak RSS, the CPU
   that it, kube-apiserver and etcd used meanwhile, and its phases as it logs them; then a
   second audit with nothing changed, whose writes are counted twice: by its own log line and by the API
   server's `apiserver_request_total` (every write verb, per resource) over the time it ran;
6. etcd: the bytes of every PolicyReport and ImageFacts as etcd stores them (key and value, read through
   etcd's own range API), scaled to 10,000 objects, and etcd's in-use database size before and after.

Not a test: figures depend on the machine. Targets: <= 3 min to the final reports and <= 600 MB
RSS at 100,000 pods in 10,000 workloads with 5,000 images; the second audit writes nothing; <= 100 MB of
etcd per 10,000 reports.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import aiohttp  # noqa: E402
import orjson  # noqa: E402

from distroguard.audit.cluster import Cluster, Scope, paged  # noqa: E402
from distroguard.audit.inventory import build_inventory  # noqa: E402
from distroguard.audit.records import Seen, offer_of, records_of  # noqa: E402
from distroguard.audit.results import summarize  # noqa: E402
from distroguard.eol import EolCatalog  # noqa: E402
from distroguard.eol.store import default_cache_path, load_catalog  # noqa: E402
from distroguard.model.record import (  # noqa: E402
    FactsRecord,
    RecordEol,
    RecordLibc,
    RecordOffer,
    RecordOS,
    RecordPlatform,
    RecordReference,
    object_name,
)
from distroguard.operator.audit.inventorystore import LABELS as FACTS_LABELS  # noqa: E402
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
WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY"})
ETCD_PREFIXES = {
    "PolicyReports": "/registry/wgpolicyk8s.io/policyreports/",
    "ImageFacts": "/registry/distroguard.dev/imagefacts/",
}


def digest_of(n: int) -> str:
    return "sha256:" + f"{n:064x}"


def image_of(n: int) -> str:
    return f"127.0.0.1:1/bench/img-{n}@{digest_of(n)}"


def resolved_record(n: int, now: datetime) -> FactsRecord:
    """Image `n` as the resolver would have found it: one platform's facts, without what the audit adds."""
    os_id, version, codename, libc, libc_version, state = DISTROS[n % len(DISTROS)]
    return FactsRecord(
        digest=digest_of(n),
        mode="runtimes",  # what the default policies ask for (some judge runtimes)
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


def audited_record(n: int, now: datetime, catalog: EolCatalog) -> FactsRecord:
    """The record the audit itself writes for image `n` (the EOL catalog's dates and subject, the platforms
    it was judged on), made by the audit's own functions: a cache a previous audit left."""
    found = resolved_record(n, now)
    image = image_of(n)
    judged = tuple(summarize(image, facts, catalog, now.date()) for facts in found.facts(image))
    seen = Seen(image, judged, digest_of(n), "public", offer_of(found))
    return records_of([seen], now)[digest_of(n)]


def facts_object(n: int, now: datetime, catalog: EolCatalog | None) -> dict[str, Any]:
    """`catalog` None: the record as the resolver found it, which the audit completes and writes again."""
    record = resolved_record(n, now) if catalog is None else audited_record(n, now, catalog)
    return {
        "apiVersion": "distroguard.dev/v1alpha1",
        "kind": "ImageFacts",
        "metadata": {"name": object_name(digest_of(n)), "labels": dict(FACTS_LABELS)},
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


def pod(ns: str, name: str, owner: str, uid: str, app: int, sidecar: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": ns,
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner, "uid": uid, "controller": True}
            ],
        },
        "spec": containers(app, sidecar),
    }


class Api:
    """Many requests in flight on one aiohttp session, as the admin (the client certificate)."""

    def __init__(self, kube: ControlPlane, concurrency: int) -> None:
        self.server = kube.server
        self.concurrency = concurrency
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=kube.ssl_context(), limit=concurrency),
            trust_env=False,
            json_serialize=lambda o: orjson.dumps(o).decode(),
        )

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        for attempt in range(5):
            async with self.session.post(
                self.server + path, data=orjson.dumps(body), headers={"Content-Type": "application/json"}
            ) as response:
                data = await response.read()
                if response.status < 300:
                    created: dict[str, Any] = orjson.loads(data)
                    return created
                if response.status not in (429, 500, 503, 504) or attempt == 4:
                    raise RuntimeError(f"POST {path}: {response.status} {data[:300]!r}")
            await asyncio.sleep(0.5 * (attempt + 1))
        raise AssertionError("unreachable")

    async def each(self, items: Iterable[Any], call: Callable[[Any], Awaitable[Any]]) -> list[Any]:
        """`call` on every item, `concurrency` at a time; results in order."""
        work = list(enumerate(items))
        out: list[Any] = [None] * len(work)
        queue = iter(work)

        async def worker() -> None:
            for index, item in queue:
                out[index] = await call(item)

        await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        return out

    async def close(self) -> None:
        await self.session.close()


@dataclass
class Populated:
    facts_seconds: float
    workloads_seconds: float
    pods_seconds: float


async def create_objects(kube: ControlPlane, args: argparse.Namespace) -> Populated:
    api = Api(kube, args.concurrency)
    try:
        now = datetime.now(UTC)
        catalog = None if args.facts == "resolved" else load_catalog(default_cache_path()).catalog
        namespaces = [f"bench-{i}" for i in range(args.namespaces)]
        await api.each(
            namespaces,
            lambda ns: api.post(
                "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
            ),
        )
        started = time.monotonic()
        await api.each(
            range(args.images),
            lambda n: api.post("/apis/distroguard.dev/v1alpha1/imagefacts", facts_object(n, now, catalog)),
        )
        facts_done = time.monotonic()

        def images_of(i: int) -> tuple[int, int]:
            return i % args.images, (i * 7 + 3) % args.images

        def workload(i: int) -> Awaitable[dict[str, Any]]:
            ns = namespaces[i % len(namespaces)]
            return api.post(
                f"/apis/apps/v1/namespaces/{ns}/replicasets", replica_set(ns, f"w-{i}", *images_of(i))
            )

        owners = await api.each(range(args.workloads), workload)
        uids = [o["metadata"]["uid"] for o in owners]
        workloads_done = time.monotonic()
        per = args.pods // args.workloads

        async def one_pod(n: int) -> None:
            i, j = divmod(n, per)
            ns = namespaces[i % len(namespaces)]
            await api.post(
                f"/api/v1/namespaces/{ns}/pods", pod(ns, f"w-{i}-{j}", f"w-{i}", uids[i], *images_of(i))
            )

        await api.each(range(per * args.workloads), one_pod)
        return Populated(facts_done - started, workloads_done - facts_done, time.monotonic() - workloads_done)
    finally:
        await api.close()


def populate(kube: ControlPlane, args: argparse.Namespace) -> Populated:
    for path in (*sorted((CHART / "crds").glob("*.yaml")), CHART / "files" / "policyreport-crds.yaml"):
        kube.kubectl("apply", "--server-side", "-f", str(path))
    kube.kubectl("wait", "--for=condition=established", "--timeout=60s", "crd", "--all")
    kube.kubectl("apply", "-f", str(ROOT / "policies"))
    populated = asyncio.run(create_objects(kube, args))
    print(
        f"created through the API ({args.concurrency} in flight): {args.images} ImageFacts in "
        f"{populated.facts_seconds:.0f} s, {args.workloads} ReplicaSets in "
        f"{populated.workloads_seconds:.0f} s, "
        f"{args.pods} pods in {populated.pods_seconds:.0f} s "
        f"({args.pods / max(populated.pods_seconds, 1e-9):.0f} pods/s)",
        flush=True,
    )
    return populated


def our_reports(kube: ControlPlane) -> list[dict[str, Any]]:
    """Every PolicyReport distroguard wrote, listed page by page (kubectl's one JSON of them all is too slow
    at 10,000)."""
    cluster = Cluster.from_kubeconfig(str(kube.kubeconfig))
    try:
        return list(
            paged(
                cluster.custom.list_cluster_custom_object,
                "wgpolicyk8s.io",
                "v1alpha2",
                "policyreports",
                label_selector="app.kubernetes.io/managed-by=distroguard",
            )
        )
    finally:
        cluster.close()


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


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far (its children not included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_of(kube: ControlPlane, audit: int) -> dict[str, float]:
    """CPU seconds used so far by the audit, kube-apiserver and etcd: where an audit's wall time goes."""
    return {"audit": cpu_seconds(audit), **{p.name: cpu_seconds(p.pid) for p in kube.processes}}


def lines(path: Path) -> Iterator[str]:
    yield from path.read_text(errors="replace").splitlines()


def api_writes(kube: ControlPlane) -> Counter[str]:
    """Write requests the API server has served so far, by resource (its `apiserver_request_total`)."""
    status, body = kube.get("/metrics", timeout=30)
    if status != 200:
        raise RuntimeError(f"API server metrics: {status}")
    writes: Counter[str] = Counter()
    for line in body.decode().splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
        if labels.get("verb") in WRITE_VERBS:
            writes[labels.get("resource", "?")] += int(float(line.rsplit(" ", 1)[1]))
    return writes


def etcd_post(kube: ControlPlane, path: str, body: dict[str, Any]) -> dict[str, Any]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(
        kube.etcd_url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with opener.open(request, timeout=60) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def etcd_bytes(kube: ControlPlane, prefix: str) -> tuple[int, int]:
    """(objects, bytes of key and value) under `prefix`, as etcd stores them, read page by page."""

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    key, count, total = prefix.encode(), 0, 0
    while True:
        page = etcd_post(
            kube, "/v3/kv/range", {"key": b64(key), "range_end": b64(end.encode()), "limit": 500}
        )
        kvs = page.get("kvs") or []
        for kv in kvs:
            count += 1
            total += len(base64.b64decode(kv["key"])) + len(base64.b64decode(kv.get("value", "")))
        if not page.get("more") or not kvs:
            return count, total
        key = base64.b64decode(kvs[-1]["key"]) + b"\x00"


def etcd_db_in_use(kube: ControlPlane) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(kube.etcd_url + "/metrics", timeout=30) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("etcd_mvcc_db_total_size_in_use_in_bytes "):
                return int(float(line.split()[1]))
    return 0


REPORT_FIELDS = ("apiVersion", "kind", "scope", "summary", "results")
OUR_METADATA = ("name", "namespace", "labels", "annotations", "ownerReferences")
ETCD_REQUEST_LIMIT = 1_572_864
"""etcd's default --max-request-bytes (1.5 MiB): no object can be larger."""


@dataclass
class Shapes:
    """The same results as one report per workload and as one per namespace (compact JSON, what distroguard
    writes: no fields the API server adds)."""

    per_workload: int
    per_namespace: int
    largest: int
    most_results: int
    namespaces: int


def _compact(obj: Any) -> int:
    return len(orjson.dumps(obj))


def report_shapes(reports: list[dict[str, Any]]) -> Shapes:
    """One report per namespace built from the per-workload ones, at its smallest: a result that several
    workloads share word for word (same policy, rule, outcome, message and properties) is written once,
    naming each workload in its `resources`."""
    per_workload = 0
    merged: dict[str, dict[str, dict[str, Any]]] = {}
    for report in reports:
        metadata = {k: report["metadata"][k] for k in OUR_METADATA if k in report["metadata"]}
        per_workload += _compact(
            {**{k: report[k] for k in REPORT_FIELDS if k in report}, "metadata": metadata}
        )
        results = merged.setdefault(metadata["namespace"], {})
        for result in report.get("results") or ():
            said = {k: v for k, v in result.items() if k not in ("timestamp", "resources")}
            key = orjson.dumps(said, option=orjson.OPT_SORT_KEYS).decode()
            entry = results.setdefault(key, {**said, "timestamp": result.get("timestamp"), "resources": []})
            entry["resources"].append(report["scope"])
    sizes, counts = [], []
    for namespace, results in merged.items():
        listed = list(results.values())
        tally = Counter(r["result"] for r in listed)
        sizes.append(
            _compact(
                {
                    "apiVersion": "wgpolicyk8s.io/v1alpha2",
                    "kind": "PolicyReport",
                    "metadata": {
                        "name": "distroguard-namespace",
                        "namespace": namespace,
                        "labels": {"app.kubernetes.io/managed-by": "distroguard"},
                        "annotations": {"distroguard.dev/content-sha256": "0" * 64},
                    },
                    "summary": dict(tally),
                    "results": listed,
                }
            )
        )
        counts.append(len(listed))
    return Shapes(per_workload, sum(sizes), max(sizes, default=0), max(counts, default=0), len(merged))


def wait_for(log: Path, process: subprocess.Popen[bytes], count: int, started: float) -> str:
    """The `count`-th "audit completed" line of the log, once it is there."""
    while True:
        done = [line for line in lines(log) if "audit completed: " in line]
        if len(done) >= count:
            return done[count - 1]
        if process.poll() is not None:
            sys.exit(f"distroguard run exited:\n{log.read_text()[-4000:]}")
        if time.monotonic() - started > 1800:
            sys.exit(f"no audit within 1800 s:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)


AUDIT_SUMMARY = re.compile(
    r"in ([\d.]+) s; ImageFacts (\d+) written, (\d+) deleted; PolicyReports (\d+) written, (\d+) deleted; "
    r"(\d+) events"
)


def run_audit(kube: ControlPlane, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
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
        # The second audit comes by the interval, with nothing changed in between.
        *("--audit-interval", "5", "--audit-debounce", "0"),
        *args.run_args,
    ]
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=kube.env())
    try:
        cpu_before = cpu_of(kube, process.pid)
        first = wait_for(log, process, 1, started)
        elapsed = time.monotonic() - started
        cpu = {k: v - cpu_before[k] for k, v in cpu_of(kube, process.pid).items()}
        rss = peak_rss_mb(process.pid)
        print(f"first audit after {elapsed:.0f} s, peak RSS {rss:.0f} MB: {first}", flush=True)
        before = api_writes(kube)
        second = wait_for(log, process, 2, started)
        after = api_writes(kube)
        print(f"second audit: {second}; API server writes meanwhile: {dict(after - before)}", flush=True)
        rss_second = peak_rss_mb(process.pid)
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
    return {
        "elapsed": elapsed,
        "first": AUDIT_SUMMARY.search(first).groups(),  # type: ignore[union-attr]
        "second": AUDIT_SUMMARY.search(second).groups(),  # type: ignore[union-attr]
        "rss": rss,
        "cpu": cpu,
        "rss_second": rss_second,
        "summary": first.split("audit completed: ", 1)[1],
        "phases": [
            line.split("audit ", 1)[1]
            for line in lines(log)
            if "audit phases: " in line or "audit writes: " in line
        ][:4],
        "second_summary": second.split("audit completed: ", 1)[1],
        "second_api_writes": {k: v for k, v in (after - before).items() if v},
        "registry_requests": requests,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=100_000)
    parser.add_argument("--workloads", type=int, default=10_000)
    parser.add_argument("--images", type=int, default=5_000)
    parser.add_argument("--namespaces", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=48, help="creations in flight at once")
    parser.add_argument(
        "--facts",
        choices=("audited", "resolved"),
        default="audited",
        help="the cached ImageFacts as a previous audit wrote them (nothing to write again), or as the "
        "resolver found them (the audit adds the EOL dates and writes each again)",
    )
    parser.add_argument("run_args", nargs="*", help="more arguments for `distroguard run` (after --)")
    args = parser.parse_args()
    kube = start(progress=lambda message: print(f"[control plane] {message}", file=sys.stderr))
    try:
        populate(kube, args)
        listed, workloads = baseline(kube)
        db_before = etcd_db_in_use(kube)
        facts_before = etcd_bytes(kube, ETCD_PREFIXES["ImageFacts"])
        result = run_audit(kube, kube.workdir, args)
        db_after = etcd_db_in_use(kube)
        stored = {what: etcd_bytes(kube, prefix) for what, prefix in ETCD_PREFIXES.items()}
        ours = our_reports(kube)
        errors = sum(r["summary"].get("error", 0) for r in ours)
        results = sum(len(r.get("results") or ()) for r in ours)
        shapes = report_shapes(ours)
    finally:
        kube.stop()
    first, second = result["first"], result["second"]
    print()
    print(f"{'':48} {'figure':>12}   target")
    print(f"{'baseline: list and group every workload':48} {listed:>10.1f} s")
    print(f"{'distroguard: start to the final reports':48} {result['elapsed']:>10.1f} s   <= 180 s")
    print(f"{'  of which the first audit itself':48} {float(first[0]):>10.1f} s")
    print(f"{'  ratio first audit / baseline':48} {float(first[0]) / max(listed, 1e-9):>10.1f} x")
    cpu = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in result["cpu"].items())
    print(f"{'  CPU used meanwhile (2 cores: 2 s a second)':48} {cpu}")
    print(f"{'distroguard: peak RSS after the first audit':48} {result['rss']:>9.0f} MB   <= 600 MB")
    print(f"{'distroguard: peak RSS after the second':48} {result['rss_second']:>9.0f} MB")
    print(f"{'workloads listed / PolicyReports (results)':48} {workloads:>5} / {len(ours)} ({results})")
    print(f"{'first audit: ImageFacts / reports written':48} {first[1]:>5} / {first[3]}")
    print(f"{'second audit (no change): ImageFacts / reports':48} {second[1]:>5} / {second[3]}   0 / 0")
    print(f"{'  API server writes while it ran, by resource':48} {result['second_api_writes'] or 'none'}")
    print(f"{'  second audit itself':48} {float(second[0]):>10.1f} s")
    print(f"{'registry requests (facts cached)':48} {result['registry_requests']:>12.0f}   0")
    print(f"{'results in error (image not known)':48} {errors:>12}   0")
    for what, (count, size) in stored.items():
        per = size / max(count, 1) * 10_000 / 1e6
        print(
            f"{'etcd: ' + what + ' (objects, MB per 10,000)':48} {count:>6} {per:>8.1f} MB"
            + ("   <= 100 MB" if what == "PolicyReports" else "")
        )
    print(
        f"{'etcd: ImageFacts before the audit (bench-made)':48} {facts_before[0]:>6} "
        f"{facts_before[1] / max(facts_before[0], 1) * 10_000 / 1e6:>8.1f} MB"
    )
    print(
        f"{'etcd: db in use, before / after the audits':48} {db_before / 1e6:>6.0f} / {db_after / 1e6:.0f} MB"
    )
    per = 10_000 / max(len(ours), 1) / 1e6
    print(
        f"{'report shape: per workload / per namespace (compact)':48} {shapes.per_workload * per:>6.1f} / "
        f"{shapes.per_namespace * per:.1f} MB per 10,000 workloads"
    )
    print(
        f"{'  per namespace: largest object, most results':48} {shapes.largest / 1e6:>6.2f} MB, "
        f"{shapes.most_results} results (etcd's limit {ETCD_REQUEST_LIMIT / 1e6:.2f} MB; "
        f"{shapes.namespaces} namespaces)"
    )
    print(f"audit log, first:  {result['summary']}")
    for phases in result["phases"]:
        print(f"audit {phases}")
    print(f"audit log, second: {result['second_summary']}")


if __name__ == "__main__":
    main()
