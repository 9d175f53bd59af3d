"""A namespace flooding admission with unique, unresolvable images, while another namespace's reviews go on.

    python bench/fairness_bench.py [--seconds 60] [--attack 1000] [--tarpits 20]
                                   [--victim-images 5] [--victim-every 20]

Admission as `distroguard run` wires it (`admit`, a resolver pool routed per namespace, the registry guard
with the test registry allowed), in this process, 127.0.0.1 only. The attacker's namespace sends `--attack`
reviews within `--seconds`, each a Pod whose image is a reference never seen before on one of `--tarpits`
registries that accept connections and never answer. Meanwhile the victim's namespace sends a warm review (a
cached image) every 20 ms and, every `--victim-every` seconds from then on, a cold one: a Pod of
`--victim-images` containers, each a new tag of a pushed image (a rollout: one registry round trip each, at
once), to Debian's docker-registry.

What the attacker can exhaust is the one global bound of a registry client: its aiohttp connector's 100
connections, shared by every lookup of the anonymous client (the per-registry bound, 8 requests, is per
host, and the attacker has many hosts). A tarpit holds each connection until the read timeout (30 s), then
the request is retried. Once 100 are held, a lookup that needs a new connection waits for one to be freed,
past the review's budget. A lookup that finds an idle kept-alive connection to its registry takes it without
waiting (aiohttp does not count idle connections against the limit): a victim sending a new image every
second or two to a registry it keeps speaking to is not hurt at all. The victim here deploys as namespaces
do, now and then: its rollouts are 20 s apart, longer than the keep-alive of the client here (15 s, set so;
distroguard's default is 50 s), so each one opens new connections, as a first deploy from a registry, or
one after a quiet spell, does.

Three runs, each with fresh caches: without the attacker; with it, under the default per-namespace limits;
with it and no limits. Printed: the victim's warm p50/p99, its cold reviews answered with facts for every
image within the budget and its cold images answered, and the most connections the tarpits held at once.
Not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from distroguard.admission import admit  # noqa: E402
from distroguard.admission.review import decode_document  # noqa: E402
from distroguard.eol import EolCatalog, bundled_snapshot  # noqa: E402
from distroguard.policyfiles import load_policies  # noqa: E402
from distroguard.registry.client import RegistrySettings  # noqa: E402
from distroguard.resolver.fairness import ColdLookups, FairnessSettings  # noqa: E402
from distroguard.resolver.routing import ResolverPool  # noqa: E402
from support.admission import PoolCluster  # noqa: E402
from support.distros import DEBIAN_12_ROOT  # noqa: E402
from support.images import ImageBuilder, push  # noqa: E402
from support.registry_server import running_registry  # noqa: E402
from support.reviews import container, pod_spec, review, workload  # noqa: E402

BUDGET = 3.0
CATALOG = EolCatalog(bundled_snapshot())
POLICIES = load_policies([ROOT / "policies" / "no-musl.yaml"])


class Tarpits:
    """Registries that accept connections and never answer; counts the connections held at once."""

    def __init__(self) -> None:
        self.servers: list[asyncio.Server] = []
        self.ports: list[int] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.open = 0
        self.most = 0

    async def start(self, count: int) -> None:
        for _ in range(count):
            server = await asyncio.start_server(self._hold, "127.0.0.1", 0)
            self.servers.append(server)
            self.ports.append(server.sockets[0].getsockname()[1])

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        self.open += 1
        self.most = max(self.most, self.open)
        try:
            await reader.read()  # never answers; ends when the client gives up
        finally:
            self.open -= 1

    def close(self) -> None:
        for writer in self.writers:
            writer.close()
        for server in self.servers:
            server.close()


async def one(cluster: PoolCluster, namespace: str, *images: str) -> tuple[float, int]:
    """The review's time and how many of its images were answered with facts."""
    containers = [container(f"c{n}", image) for n, image in enumerate(images)]
    request = decode_document(review(workload("Pod", pod_spec(*containers)), namespace=namespace))
    started = time.perf_counter()
    answer = await admit(request, cluster, POLICIES, CATALOG, budget=BUDGET, now=datetime.now(UTC))
    return time.perf_counter() - started, len(images) - len(answer.unresolved)


async def run(
    label: str, args: argparse.Namespace, registry: str, tags: list[str], attack: bool, limits: bool
):
    settings = RegistrySettings(registry_guard=True, registry_allow=("127.0.0.0/8",), keepalive=15.0)
    pool = ResolverPool(settings, ttl=600)
    await pool.start()
    cluster = PoolCluster(pool, ColdLookups(FairnessSettings()) if limits else None)
    warm_image = f"{registry}/bench/app:warm"
    assert (await one(cluster, "shop", warm_image))[1]
    pits = Tarpits()
    await pits.start(args.tarpits)
    warm: list[float] = []
    cold: list[int] = []
    attacks: list[asyncio.Task[tuple[float, int]]] = []
    stop = time.perf_counter() + args.seconds
    tag_iter = iter(tags)

    async def victim_warm() -> None:
        while time.perf_counter() < stop:
            warm.append((await one(cluster, "shop", warm_image))[0])
            await asyncio.sleep(0.02)

    async def victim_cold() -> None:
        """At every `victim_every` seconds from the start up to the end, however long each review took."""
        start = stop - args.seconds
        for k in range(1, int(args.seconds // args.victim_every) + 1):
            await asyncio.sleep(max(0.0, start + k * args.victim_every - time.perf_counter()))
            images = [f"{registry}/bench/app:{next(tag_iter)}" for _ in range(args.victim_images)]
            cold.append((await one(cluster, "shop", *images))[1])

    async def attacker() -> None:
        interval = args.seconds / args.attack
        for n in range(args.attack):
            port = pits.ports[n % len(pits.ports)]
            attacks.append(asyncio.ensure_future(one(cluster, "attacker", f"127.0.0.1:{port}/x{n}/app:{n}")))
            await asyncio.sleep(interval)

    await asyncio.gather(victim_warm(), victim_cold(), *([attacker()] if attack else []))
    await asyncio.gather(*attacks)
    await pool.abort()
    pits.close()
    warm.sort()
    p99 = warm[min(len(warm) - 1, int(len(warm) * 0.99))]
    whole = sum(1 for served in cold if served == args.victim_images)
    print(
        f"{label:<32} {statistics.median(warm) * 1000:6.1f} {p99 * 1000:7.1f} {len(warm):6d}   "
        f"{whole:4d}/{len(cold):<4d} {sum(cold):5d}/{len(cold) * args.victim_images:<5d} "
        f"{len(attacks):6d} {pits.most:5d}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--attack", type=int, default=1000)
    parser.add_argument("--tarpits", type=int, default=20)
    parser.add_argument("--victim-images", type=int, default=5)
    parser.add_argument("--victim-every", type=float, default=20.0)
    args = parser.parse_args()
    image = ImageBuilder().layer(DEBIAN_12_ROOT).build()
    per_run = int(args.seconds // args.victim_every + 1) * args.victim_images
    tags = [f"t{i}" for i in range(3 * per_run)]
    with running_registry() as server:
        await push(server.url, "bench/app", "warm", image)
        for start in range(0, len(tags), 20):
            await asyncio.gather(
                *(push(server.url, "bench/app", tag, image) for tag in tags[start : start + 20])
            )
        print(
            f"{args.attack} attacker reviews in {args.seconds:g} s on {args.tarpits} tarpit registries; "
            f"victim: a warm review every 20 ms, a cold one of {args.victim_images} new images every "
            f"{args.victim_every:g} s, "
            f"budget {BUDGET:g} s"
        )
        print(
            f"{'':32} {'warm p50':>6} {'p99 ms':>7} {'warm':>6}   {'cold reviews':>9} {'cold images':>11} "
            f"{'attack':>6} {'held':>5}"
        )
        await run("no attacker", args, server.address, tags[:per_run], attack=False, limits=True)
        await run(
            "attacker, per-namespace limits", args, server.address, tags[per_run : 2 * per_run], True, True
        )
        await run("attacker, no limits", args, server.address, tags[2 * per_run :], True, False)


if __name__ == "__main__":
    asyncio.run(main())
