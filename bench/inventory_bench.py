"""Webhook replicas with a full inventory: memory, start-up, and how fast the replicas share what one learnt.

    python bench/inventory_bench.py [--facts 50000] [--policies 200] [--namespaces 2000] [--shared 20]

Against the local control plane (kube-apiserver and etcd from `scripts/testenv build`, on 127.0.0.1; etcd's
data in the control plane's temporary working directory, removed at the end):

1. baseline: `distroguard run --role webhook --dev` started on the empty cluster (the chart's CRDs only):
   its time from start to its first answered review, and its RSS then;
2. the cluster is filled through the API (concurrently, timed): `--facts` ImageFacts (as the audit writes
   them), `--policies` DistroPolicies (the default ones of policies/, each copied to match a namespace of its
   own) and `--namespaces` labelled namespaces;
3. replica A is started: its time from start to its first answer, and to its first warm answer (an image
   known only from the
   ImageFacts, the last one listed; the images live on 127.0.0.1:1, where nothing listens, so an answer
   from anything but the inventory is told apart), then one review in each namespace, so that its
   namespace label cache holds every one; its RSS after that, against the baseline's; and how much of the
   inventory it answers warm (a sample of `--sample` images spread over it); then `--hot` more of them
   (`CacheSettings.facts_entries`: the hot facts tier full) and its RSS again;
4. replica B is started beside it; then, `--shared` times, a new ImageFacts object is written (as the audit
   writes what a replica resolved) and B is asked about that image every 20 ms until it answers from the
   facts: the time from the write to B's warm answer;
5. the API server's side of the sharing: the time and bytes of one LIST of every ImageFacts (what each
   replica reads at start), and the bytes one write sends to each watching replica.

Not a test: figures depend on the machine. Targets: <= 200 MB RSS and <= 10 s from start to
ready with 50,000 ImageFacts, 200 policies and 2,000 namespaces; a fact written is warm in another replica
within 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from audit_bench import CHART, Api, digest_of, facts_object, image_of  # noqa: E402
from support.kube import ControlPlane, start  # noqa: E402
from support.operator_process import OperatorProcess  # noqa: E402
from support.webhook_client import WebhookEndpoint, well_formed  # noqa: E402

MUSL = 3
"""facts_object(n) is Alpine (musl) when n % 5 == MUSL: the default no-musl policy denies it."""
PER_POLL = 0.02


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pod_review(namespace: str, image: str) -> bytes:
    uid = str(uuid.uuid4())
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "probe", "namespace": namespace},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }
    gvk = {"group": "", "version": "v1", "kind": "Pod"}
    gvr = {"group": "", "version": "v1", "resource": "pods"}
    request = {
        "uid": uid,
        "kind": gvk,
        "resource": gvr,
        "requestKind": gvk,
        "requestResource": gvr,
        "name": "probe",
        "namespace": namespace,
        "operation": "CREATE",
        "userInfo": {"username": "bench"},
        "object": pod,
        "dryRun": True,
    }
    return json.dumps(
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    ).encode()


class Replica:
    def __init__(self, kube: ControlPlane, name: str, workdir: Path) -> None:
        self.kube = kube
        self.name = name
        own = f"dg-{name}"
        kube.kubectl("create", "namespace", own, check=False)
        self.process = OperatorProcess(
            kube,
            f"distroguard-{name}",
            own,
            workdir / f"{name}.log",
            ["--role", "webhook", "--metrics-port", "0"],
        )
        self.started = 0.0
        self.endpoint: WebhookEndpoint | None = None

    def start(self) -> Replica:
        self.started = time.monotonic()
        self.process.start()
        return self

    def answer(self, namespace: str, image: str) -> dict[str, Any]:
        if self.endpoint is None:
            self.process.wait_registered(timeout=600)
            configuration = self.kube.kubectl_json(
                "get", "validatingwebhookconfiguration", self.process.webhook_name
            )
            self.endpoint = WebhookEndpoint.from_configuration(configuration)
        answer = well_formed(self.endpoint.post("pods", pod_review(namespace, image), timeout=60))
        assert answer is not None
        return answer

    def ready(self, namespace: str, image: str, *, warm: bool) -> float:
        """Seconds from start to the first answer (from the facts, when `warm`)."""
        while True:
            try:
                answer = self.answer(namespace, image)
                if not warm or denied_for_musl(answer):
                    return time.monotonic() - self.started
            except (OSError, AssertionError, RuntimeError):
                if not self.process.alive():
                    raise
            if time.monotonic() - self.started > 600:
                raise RuntimeError(f"{self.name}: not ready in 600 s:\n{self.process.log_text()[-3000:]}")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        assert self.process.popen is not None
        return self.process.popen.pid

    def stop(self) -> None:
        self.process.stop()


def denied_for_musl(answer: dict[str, Any]) -> bool:
    return not answer["allowed"] and "musl" in answer["status"]["message"]


def install(kube: ControlPlane) -> None:
    for path in (*sorted((CHART / "crds").glob("*.yaml")), CHART / "files" / "policyreport-crds.yaml"):
        kube.kubectl("apply", "--server-side", "-f", str(path))
    kube.kubectl("wait", "--for=condition=established", "--timeout=60s", "crd", "--all")
    kube.kubectl("apply", "-f", str(ROOT / "policies"))


def policy_copies(count: int, namespaces: list[str]) -> list[dict[str, Any]]:
    """`count` DistroPolicies: the default ones, each copy matching one namespace."""
    defaults = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "policies").glob("*.yaml"))]
    out = []
    for i in range(count):
        policy = json.loads(json.dumps(defaults[i % len(defaults)]))
        policy["metadata"] = {"name": f"{policy['metadata']['name']}-{i}"}
        policy["spec"].setdefault("match", {})["namespaces"] = [namespaces[i % len(namespaces)]]
        out.append(policy)
    return out


async def fill(kube: ControlPlane, args: argparse.Namespace, namespaces: list[str]) -> dict[str, float]:
    api = Api(kube, args.concurrency)
    now = datetime.now(UTC)
    took: dict[str, float] = {}
    try:
        started = time.monotonic()
        await api.each(range(args.facts), lambda n: api.post(FACTS_PATH, facts_object(n, now, None)))
        took["facts"] = time.monotonic() - started
        started = time.monotonic()
        await api.each(
            namespaces,
            lambda ns: api.post(
                "/api/v1/namespaces",
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": ns, "labels": {"team": ns[-1]}},
                },
            ),
        )
        took["namespaces"] = time.monotonic() - started
        started = time.monotonic()
        await api.each(
            policy_copies(args.policies, namespaces),
            lambda p: api.post("/apis/distroguard.dev/v1alpha1/distropolicies", p),
        )
        took["policies"] = time.monotonic() - started
    finally:
        await api.close()
    return took


FACTS_PATH = "/apis/distroguard.dev/v1alpha1/imagefacts"


async def write_facts(kube: ControlPlane, n: int) -> None:
    api = Api(kube, 1)
    try:
        await api.post(FACTS_PATH, facts_object(n, datetime.now(UTC), None))
    finally:
        await api.close()


def sharing(kube: ControlPlane, replica: Replica, args: argparse.Namespace, namespace: str) -> list[float]:
    """Seconds from writing a new ImageFacts object to `replica`'s first answer from it, each time."""
    seconds = []
    for k in range(args.shared):
        n = args.facts + 5 * k + MUSL  # new, and musl: denied once known, allowed (unresolved) before
        image = image_of(n)
        asyncio.run(write_facts(kube, n))
        written = time.monotonic()
        while not denied_for_musl(replica.answer(namespace, image)):
            if time.monotonic() - written > 60:
                raise RuntimeError(f"{digest_of(n)} not known to {replica.name} after 60 s")
            time.sleep(PER_POLL)
        seconds.append(time.monotonic() - written)
    return seconds


def list_cost(kube: ControlPlane) -> tuple[float, int]:
    """(seconds, bytes) of one unpaged LIST of every ImageFacts, as admin."""
    started = time.monotonic()
    status, body = kube.get(FACTS_PATH, timeout=300)
    assert status == 200, body[:300]
    return time.monotonic() - started, len(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=int, default=50_000)
    parser.add_argument("--policies", type=int, default=200)
    parser.add_argument("--namespaces", type=int, default=2_000)
    parser.add_argument("--shared", type=int, default=20, help="new facts timed from one replica to another")
    parser.add_argument("--concurrency", type=int, default=48)
    parser.add_argument("--sample", type=int, default=200, help="inventory images asked of replica A")
    parser.add_argument(
        "--hot", type=int, default=10_000, help="more inventory images asked of A (the hot tier's size)"
    )
    args = parser.parse_args()
    namespaces = [f"team-{i}" for i in range(args.namespaces)]
    kube = start(progress=lambda message: print(f"[control plane] {message}", file=sys.stderr))
    replicas: list[Replica] = []
    try:
        install(kube)
        # In the inventory once it is filled, and the last listed (the list is in name order: by digest).
        known = image_of(max(n for n in range(args.facts) if n % 5 == MUSL))
        empty = Replica(kube, "empty", kube.workdir).start()
        replicas.append(empty)
        empty_ready = empty.ready("default", known, warm=False)
        empty_rss = rss_mb(empty.pid)
        empty.stop()
        took = asyncio.run(fill(kube, args, namespaces))
        print(
            f"created through the API ({args.concurrency} in flight): {args.facts} ImageFacts in "
            f"{took['facts']:.0f} s, {args.namespaces} namespaces in {took['namespaces']:.0f} s, "
            f"{args.policies} policies in {took['policies']:.0f} s",
            flush=True,
        )
        a = Replica(kube, "a", kube.workdir).start()
        replicas.append(a)
        a_serving = a.ready(namespaces[0], known, warm=False)
        a_ready = a.ready(namespaces[0], known, warm=True)
        a_rss_ready = rss_mb(a.pid)
        started = time.monotonic()
        for ns in namespaces:
            a.answer(ns, known)
        labels_seconds = time.monotonic() - started
        a_rss = rss_mb(a.pid)
        a_peak = rss_mb(a.pid, "VmHWM")
        step = max(1, args.facts // args.sample)
        sample = [n for n in range(MUSL, args.facts, 5)][:: max(1, step // 5)]
        warm = sum(denied_for_musl(a.answer(namespaces[0], image_of(n))) for n in sample)
        hot = [n for n in range(args.facts) if n % 5 != MUSL][: args.hot]
        started = time.monotonic()
        for n in hot:
            a.answer(namespaces[0], image_of(n))
        hot_seconds = time.monotonic() - started
        a_rss_hot = rss_mb(a.pid)
        read = re.search(r"(\d+) ImageFacts read into the cache in ([\d.]+) s", a.process.log_text())
        b = Replica(kube, "b", kube.workdir).start()
        replicas.append(b)
        b_ready = b.ready(namespaces[1], known, warm=True)
        shared = sharing(kube, b, args, namespaces[1])
        listed, listed_bytes = list_cost(kube)
        one = len(json.dumps(facts_object(0, datetime.now(UTC), None)))
    finally:
        for replica in replicas:
            replica.stop()
        kube.stop()
    print()
    print(f"{'':56} {'figure':>10}   target")
    print(f"{'baseline: empty replica, start to first answer':56} {empty_ready:>8.1f} s")
    print(f"{'baseline: empty replica RSS':56} {empty_rss:>7.0f} MB")
    print(f"{'replica A: start to its first answer (serving)':56} {a_serving:>8.1f} s   <= 10 s")
    print(f"{'replica A: start to the last listed image answered warm':56} {a_ready:>8.1f} s")
    print(f"{'replica A: RSS when ready':56} {a_rss_ready:>7.0f} MB")
    print(
        f"{f'replica A: RSS with {args.namespaces} namespaces labels cached':56} {a_rss:>7.0f} MB   <= 200 MB"
    )
    print(f"{'replica A: RSS over the empty replica':56} {a_rss - empty_rss:>7.0f} MB")
    print(f"{'replica A: peak RSS':56} {a_peak:>7.0f} MB")
    print(f"{'replica A: one review per namespace, all':56} {labels_seconds:>8.1f} s")
    print(f"{'replica A: inventory images answered warm (sample)':56} {warm:>5} / {len(sample)}")
    if read is not None:
        print(f"{f'replica A: its log: {read[1]} ImageFacts read in':56} {float(read[2]):>8.1f} s")
    print(f"{f'replica A: {len(hot)} more inventory images asked, all':56} {hot_seconds:>8.1f} s")
    print(f"{'replica A: RSS then (hot facts tier full)':56} {a_rss_hot:>7.0f} MB")
    print(f"{'replica A: RSS then over the empty replica':56} {a_rss_hot - empty_rss:>7.0f} MB")
    print(f"{'replica B: start to first warm answer':56} {b_ready:>8.1f} s")
    print(
        f"{'written ImageFacts to warm in B: median / max':56} {statistics.median(shared):>8.2f} s / "
        f"{max(shared):.2f} s   <= 2 s"
    )
    print(f"{'API server: one LIST of every ImageFacts':56} {listed:>8.1f} s, {listed_bytes / 1e6:.0f} MB")
    print(f"{'API server: one ImageFacts event to each watcher':56} {one:>8} bytes")


if __name__ == "__main__":
    main()
