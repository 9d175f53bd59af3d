"""A namespace flooding admission with unique, unresolvable images, while another namespace's reviews go on.

    python bench/fairness_bench.py [--seconds 60] [--attack 1000] [--tarpits 20]

Admission as `distroguard run` wires it (`admit`, a resolver pool routed per namespace, the registry guard
with the test registry allowed), in this process, 127.0.0.1 only. The attacker's namespace sends `--attack`
reviews within `--seconds`, each a Pod whose image is a reference never seen before on one of `--tarpits`
registries that accept connections and never answer (each lookup holds a connection until its read
timeout). Meanwhile the victim's namespace sends a warm review (a cached image) every 20 ms and a cold one
(a new tag of a pushed image, so a registry round trip) every 500 ms, to Debian's docker-registry.

Three runs, each with fresh caches: without the attacker; with it, under the default per-namespace limits;
with it and no limits. Printed: the victim's warm p50/p99 and how many of its cold lookups were answered with
facts within the budget. Not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from distroguard.admission import admit  # noqa: E402
from distroguard.admission.review import decode_document  # noqa: E402
from distroguard.eol import EolCatalog, bundled_snapshot  # noqa: E402
from distroguard.model import Platform  # noqa: E402
from distroguard.policyfiles import load_policies  # noqa: E402
from distroguard.registry.client import RegistrySettings  # noqa: E402
from distroguard.resolver.fairness import ColdLookups, FairnessSettings  # noqa: E402
from distroguard.resolver.routing import NO_CREDENTIALS, ResolverPool, RoutedResolver  # noqa: E402
from support.distros import DEBIAN_12_ROOT  # noqa: E402
from support.images import ImageBuilder, push  # noqa: E402
from support.registry_server import running_registry  # noqa: E402
from support.reviews import container, pod_spec, review, workload  # noqa: E402

BUDGET = 3.0
CATALOG = EolCatalog(bundled_snapshot())
POLICIES = load_policies([ROOT / "policies" / "no-musl.yaml"])


class Cluster:
    def __init__(self, pool: ResolverPool, cold: ColdLookups | None) -> None:
        self.pool, self.cold = pool, cold

    async def namespace_labels(self, namespace: str) -> dict[str, str]:
        return {}

    def platforms(self) -> tuple[Platform, ...]:
        return (Platform(),)

    async def resolver(self, namespace: str | None, workload: object) -> RoutedResolver:
        routed = await self.pool.resolver(namespace or "", NO_CREDENTIALS)
        return (
            routed
            if self.cold is None or namespace is None
            else replace(routed, gate=self.cold.gate(namespace))
        )


async def tarpit() -> tuple[asyncio.Server, int, list[asyncio.StreamWriter]]:
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await reader.read()  # never answers; ends when the client gives up

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], held


async def one(cluster: Cluster, namespace: str, image: str) -> tuple[float, bool]:
    request = decode_document(review(workload("Pod", pod_spec(container("app", image))), namespace=namespace))
    started = time.perf_counter()
    answer = await admit(request, cluster, POLICIES, CATALOG, budget=BUDGET, now=datetime.now(UTC))
    return time.perf_counter() - started, not answer.unresolved


async def run(
    label: str, args: argparse.Namespace, registry: str, tags: list[str], attack: bool, limits: bool
):
    settings = RegistrySettings(registry_guard=True, registry_allow=("127.0.0.0/8",))
    pool = ResolverPool(settings, ttl=600)
    await pool.start()
    cluster = Cluster(pool, ColdLookups(FairnessSettings()) if limits else None)
    warm_image = f"{registry}/bench/app:warm"
    assert (await one(cluster, "shop", warm_image))[1]
    pits = [await tarpit() for _ in range(args.tarpits)]
    warm: list[float] = []
    cold: list[bool] = []
    attacks: list[asyncio.Task[tuple[float, bool]]] = []
    stop = time.perf_counter() + args.seconds
    tag_iter = iter(tags)

    async def victim_warm() -> None:
        while time.perf_counter() < stop:
            warm.append((await one(cluster, "shop", warm_image))[0])
            await asyncio.sleep(0.02)

    async def victim_cold() -> None:
        while time.perf_counter() < stop:
            cold.append((await one(cluster, "shop", f"{registry}/bench/app:{next(tag_iter)}"))[1])
            await asyncio.sleep(0.5)

    async def attacker() -> None:
        interval = args.seconds / args.attack
        for n in range(args.attack):
            port = pits[n % len(pits)][1]
            attacks.append(asyncio.ensure_future(one(cluster, "attacker", f"127.0.0.1:{port}/x{n}/app:{n}")))
            await asyncio.sleep(interval)

    await asyncio.gather(victim_warm(), victim_cold(), *([attacker()] if attack else []))
    await asyncio.gather(*attacks)
    await pool.abort()
    for server, _, held in pits:
        for writer in held:
            writer.close()
        server.close()
    warm.sort()
    p99 = warm[min(len(warm) - 1, int(len(warm) * 0.99))]
    print(
        f"{label:<34} warm p50 {statistics.median(warm) * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms  "
        f"({len(warm)} reviews)   cold served {sum(cold)}/{len(cold)}   attacker reviews {len(attacks)}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--attack", type=int, default=1000)
    parser.add_argument("--tarpits", type=int, default=20)
    args = parser.parse_args()
    image = ImageBuilder().layer(DEBIAN_12_ROOT).build()
    tags = [f"t{i}" for i in range(int(args.seconds * 2 * 3) + 10)]
    with running_registry() as server:
        for tag in ["warm", *tags]:
            await push(server.url, "bench/app", tag, image)
        print(f"{args.attack} attacker reviews in {args.seconds:g} s on {args.tarpits} tarpit registries")
        await run("no attacker", args, server.address, tags[: len(tags) // 3], attack=False, limits=True)
        await run("attacker, per-namespace limits", args, server.address, tags[len(tags) // 3 :], True, True)
        await run("attacker, no limits", args, server.address, tags[2 * len(tags) // 3 :], True, False)


if __name__ == "__main__":
    asyncio.run(main())
