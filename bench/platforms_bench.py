"""What judging an image on a second platform costs admission, cold and warm, against one platform.

    python bench/platforms_bench.py [--cold 10] [--warm 4000] [--rounds 5]

The cluster's platforms are linux/amd64 and linux/arm64 throughout (`Admitter.nodes`), and a policy
denies musl, so that every review is judged to the end. Three images, each an OCI index built by the tests'
`support.multiarch` (a Python image: a distribution's files, a python binary, PYTHON_VERSION) and pushed
to the local registry (Debian's docker-registry on 127.0.0.1):

- 1 platform: Debian on linux/amd64 alone (admitted; the baseline of "2 platforms, same");
- 2 platforms, same: Debian on linux/amd64 and linux/arm64 (facts agree: judged once, messages short);
- 1 platform, musl: Alpine on linux/arm64 alone (denied; the baseline of "2 platforms, mixed");
- 2 platforms, mixed: Debian on linux/amd64, Alpine on linux/arm64 (facts differ: one subject per
  platform, each message naming its platform, the worst verdict winning: denied).

Cold: one-container Pod reviews, one at a time, each of an image never seen before (every platform's
layers made unique, so no cache tier, the base-layer one included, can answer); the wall time of each
review, and the registry bytes it read (index, manifests, configs, base layers): "per extra platform" is
the 2-platform figure less the 1-platform one.

Warm: the same review answered again and again from the caches (the decision memo included, as replicas
and retries send identical reviews), through `Admitter` (the operator's admission entry point, after the
HTTP server has decoded the request: the server's own cost is the same whatever the image). CPU time per
review, `time.process_time` over `--warm` reviews; the kinds take turns for `--rounds` rounds and each
figure is the median round, so that load on a shared machine touches them alike.

Nothing here needs Kubernetes: namespace labels and pull secrets come from lookups answering none, as a warm
cache does. Not a test: figures depend on the machine. Target: warm CPU per review at most 10% more per
extra platform.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from distroguard.admission.review import decode_review
from distroguard.eol import EolCatalog, bundled_snapshot
from distroguard.model import Platform
from distroguard.operator.catalogholder import CatalogHolder
from distroguard.operator.policystore import PolicyStore
from distroguard.operator.webhook.admitter import Admitter
from distroguard.policyfiles import load_policies
from distroguard.registry.client import RegistrySettings
from distroguard.registry.meter import RegistryStats
from distroguard.resolver.routing import NO_CREDENTIALS, PullCredentials, ResolverPool

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support import multiarch  # noqa: E402
from support.distros import ALPINE_ROOT, DEBIAN_12_ROOT  # noqa: E402
from support.images import BuiltIndex, build_index, push  # noqa: E402
from support.registry_server import running_registry  # noqa: E402

POLICY = ROOT / "policies" / "no-musl.yaml"
CLUSTER = (Platform.parse("linux/amd64"), Platform.parse("linux/arm64"))


def unique(root: Mapping[str, Any]) -> dict[str, Any]:
    """`root` with a file of its own in the base layer: no base-layer cache entry can answer for it."""
    return {**root, f"etc/bench-{uuid.uuid4().hex}": uuid.uuid4().bytes}


def one_platform() -> BuiltIndex:
    return build_index([multiarch.python_on(unique(DEBIAN_12_ROOT), "linux/amd64")])


def one_platform_musl() -> BuiltIndex:
    return build_index([multiarch.python_on(unique(ALPINE_ROOT), "linux/arm64")])


def two_same() -> BuiltIndex:
    return build_index(
        [
            multiarch.python_on(unique(DEBIAN_12_ROOT), "linux/amd64"),
            multiarch.python_on(unique(DEBIAN_12_ROOT), "linux/arm64"),
        ]
    )


def two_mixed() -> BuiltIndex:
    return build_index(
        [
            multiarch.python_on(unique(DEBIAN_12_ROOT), "linux/amd64"),
            multiarch.python_on(unique(ALPINE_ROOT), "linux/arm64"),
        ]
    )


KINDS: dict[str, Callable[[], BuiltIndex]] = {
    "1 platform": one_platform,
    "2 platforms, same": two_same,
    "1 platform, musl": one_platform_musl,
    "2 platforms, mixed": two_mixed,
}
BASELINE = {"2 platforms, same": "1 platform", "2 platforms, mixed": "1 platform, musl"}
"""What each 2-platform image is set beside: a 1-platform image with the same verdict (a denial's answer
costs more to make than an admission's, whatever the platforms)."""


def review(image: str, uid: str) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "web-7d4b9c-x2k4p", "namespace": "shop", "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            "dryRun": False,
        },
    }


class NoLabels:
    async def get(self, namespace: str) -> Mapping[str, str]:
        return {}


class NoSecrets:
    async def get(self, namespace: str, secrets: Sequence[str], service_account: str) -> PullCredentials:
        return NO_CREDENTIALS


async def pushed(registry_url: str, address: str, index: BuiltIndex) -> str:
    repo = f"bench/platforms-{uuid.uuid4().hex[:12]}"
    await push(registry_url, repo, "1", index)
    return f"{address}/{repo}:1"


async def bench(args: argparse.Namespace, registry_url: str, address: str) -> None:
    stats = RegistryStats()
    pool = ResolverPool(RegistrySettings(), ttl=600, stats=stats)
    await pool.start()
    admitter = Admitter(
        policies=PolicyStore(load_policies([POLICY])),
        pool=pool,
        namespaces=NoLabels(),  # type: ignore[arg-type]
        secrets=NoSecrets(),  # type: ignore[arg-type]
        catalog=CatalogHolder(EolCatalog(bundled_snapshot())),
        budget=30.0,
        nodes=lambda: CLUSTER,
    )
    cold: dict[str, list[tuple[float, int]]] = {kind: [] for kind in KINDS}
    verdicts: dict[str, str] = {}
    for _ in range(args.cold):  # the kinds take turns
        for kind, build in KINDS.items():
            image = await pushed(registry_url, address, build())
            request = decode_review(review(image, uuid.uuid4().hex))
            before = sum(stats.received.values())
            started = time.perf_counter()
            answer = await admitter(request)
            cold[kind].append((time.perf_counter() - started, sum(stats.received.values()) - before))
            verdicts[kind] = _said(answer)
    warm_images = {kind: await pushed(registry_url, address, build()) for kind, build in KINDS.items()}
    requests = {kind: decode_review(review(image, "warm")) for kind, image in warm_images.items()}
    for request in requests.values():
        await admitter(request)  # into the caches
    rounds: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for _ in range(args.rounds):
        for kind, request in requests.items():
            started = time.process_time()
            for _ in range(args.warm):
                await admitter(request)
            rounds[kind].append((time.process_time() - started) / args.warm)
    await pool.close()
    report(args, cold, rounds, verdicts)


def _said(answer: Any) -> str:
    if answer.allowed:
        return "allowed"
    return "denied: " + answer.message.replace("\n", " | ")[:150]


def report(
    args: argparse.Namespace,
    cold: Mapping[str, list[tuple[float, int]]],
    rounds: Mapping[str, list[float]],
    verdicts: Mapping[str, str],
) -> None:
    print(f"python {platform.python_version()} on {platform.machine()}, {len(CLUSTER)} cluster platforms")
    print(f"cold: {args.cold} reviews of each kind; warm: {args.rounds} rounds of {args.warm} reviews")
    header = (
        f"{'image':<20} {'cold p50 ms':>11} {'bytes read p50':>15} {'warm CPU µs':>12} "
        f"{'warm vs 1 platform':>19}"
    )
    print(header)
    print("-" * len(header))
    for kind in KINDS:
        wall = statistics.median(t for t, _ in cold[kind]) * 1000
        read = statistics.median(b for _, b in cold[kind])
        warm = statistics.median(rounds[kind])
        base = BASELINE.get(kind)
        delta = f"{(warm / statistics.median(rounds[base]) - 1) * 100:+.1f}%" if base else "baseline"
        print(f"{kind:<20} {wall:>11.1f} {read:>15,.0f} {warm * 1e6:>12.1f} {delta:>19}")
    print()
    for kind, base in BASELINE.items():
        first = statistics.median(b for _, b in cold[base])
        extra = statistics.median(b for _, b in cold[kind]) - first
        print(f"{kind}: {extra:,.0f} bytes read for the extra platform ({extra / first:.2f}x {base})")
    print()
    for kind, said in verdicts.items():
        print(f"{kind}: {said}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", type=int, default=10, help="cold reviews of each kind")
    parser.add_argument("--warm", type=int, default=4000, help="warm reviews of each kind per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with running_registry() as registry:
        asyncio.run(bench(args, registry.url, registry.address))


if __name__ == "__main__":
    main()
