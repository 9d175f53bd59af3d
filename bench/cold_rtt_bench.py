"""Cold admission at real distances: unseen images on unseen bases, through a proxy adding round-trip time.

    python bench/cold_rtt_bench.py [--images 9] [--rtt 0 --rtt 50]

Admission as `distroguard run` wires it (`admit`, a resolver pool, the bundled EOL catalog, the no-musl
policy), in this process, 127.0.0.1 only. Each scenario pushes `--images` images to Debian's docker-registry,
each on a bottom layer of its own (so no cache tier, base layers included, can answer it), and admits one Pod
per image, one after the other, through a counting proxy that holds every request back one round trip (the
first of each new connection one more, TCP's handshake). The proxy runs on a thread of its own, as a remote
registry would. Scenarios:

- anonymous: a single-platform image on an anonymous registry;
- bearer: the same on a registry with token auth (the token server behind a proxy of its own, as far away),
  each image in a repository of its own (a token each), the workload's pull secret naming the registry;
- index: a two-platform index (amd64, arm64) whose amd64 manifest is judged;
- annotated: an image naming its base (`org.opencontainers.image.base.name`, as buildah and the Docker
  Official Images set it), the base an image of its own, pushed beside it;
- seen-base: images naming one base, each unseen (an app layer of its own): after the first, the base's
  layers and its claim are known, and neither the base nor the bottom layer is read again (floor: the
  manifest, then the config).

Printed per scenario and round-trip time: p50 and p90 of the admission's wall time, the round trips the
admission waited for in a row (requests no two of which overlapped, median over the images) and all its
requests; beside them, from the same run, the floor (the round trips no client can skip, times the RTT:
token if any, manifest (and the platform's), then config and bottom layer side by side) and a plain aiohttp
client making exactly those requests, keeping its connections, reading the bytes and nothing more.

Not a test: figures depend on the machine; compare the rows of one run. Target: p50 <= 400 ms at 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from distroguard.admission import admit  # noqa: E402
from distroguard.admission.review import decode_document  # noqa: E402
from distroguard.eol import EolCatalog, bundled_snapshot  # noqa: E402
from distroguard.model import Platform  # noqa: E402
from distroguard.policyfiles import load_policies  # noqa: E402
from distroguard.registry.client import RegistrySettings  # noqa: E402
from distroguard.registry.credentials import Credentials, CredentialStore  # noqa: E402
from distroguard.registry.mediatypes import MANIFEST_ACCEPT  # noqa: E402
from distroguard.resolver.routing import PullCredentials, ResolverPool  # noqa: E402
from support.distros import DEBIAN_12_ROOT  # noqa: E402
from support.images import BuiltImage, BuiltIndex, ImageBuilder, build_index, push  # noqa: E402
from support.proxy import Record, ThreadedProxy, latency, sequential  # noqa: E402
from support.registry_server import TEST_PASSWORD, TEST_USER, RegistryServer, running_registry  # noqa: E402
from support.reviews import review, workload  # noqa: E402
from support.token_server import ISSUER, SERVICE, SigningKey, TokenServer  # noqa: E402

BUDGET = 10.0
CATALOG = EolCatalog(bundled_snapshot())
POLICIES = load_policies([ROOT / "policies" / "no-musl.yaml"])
BASE_NAME = "org.opencontainers.image.base.name"


# ------------------------------------------------------------------------------------------- the images


def unseen(platform: str = "linux/amd64", base: BuiltImage | None = None, name: str = "") -> BuiltImage:
    """An image on a bottom layer of its own (a Debian root with a file no other image has), an app above."""
    builder = ImageBuilder(platform=platform)
    if base is None:
        builder.layer({**DEBIAN_12_ROOT, "/etc/bench-base": uuid.uuid4().bytes})
    else:
        for layer in base.layers:
            builder.raw_layer(layer.tar)
        builder.annotate(BASE_NAME, name)
    return builder.layer({"/srv/app.py": f"print({uuid.uuid4().hex!r})\n"}).env("APP=1").build()


def base_image() -> BuiltImage:
    return ImageBuilder().layer({**DEBIAN_12_ROOT, "/etc/bench-base": uuid.uuid4().bytes}).build()


@dataclass
class Scenario:
    name: str
    registry: RegistryServer
    floor: int
    """Round trips no client can skip (token, manifests, then config and bottom layer side by side)."""
    credentials: bool = False
    reads_layer: bool = True
    """Whether the floor reads the bottom layer (not on a base seen before)."""
    images: list[tuple[str, BuiltImage | BuiltIndex]] = field(default_factory=list)
    """(repository, what was pushed there as tag 1)."""


async def prepare(scenario: Scenario, count: int, address: str) -> None:
    """Push `count` images; `address`: where the resolver reaches the registry (an annotation names it)."""
    auth = scenario.registry.push_auth
    shared = base_image()
    shared_repo = f"bench/base-{uuid.uuid4().hex[:10]}"
    if scenario.name == "seen-base":
        await push(scenario.registry.url, shared_repo, "1", shared, auth=auth)
    for _ in range(count):
        repo = f"bench/{scenario.name}-{uuid.uuid4().hex[:10]}"
        image: BuiltImage | BuiltIndex
        if scenario.name == "index":
            image = build_index([unseen("linux/amd64"), unseen("linux/arm64")])
        elif scenario.name == "annotated":
            base = base_image()
            await push(scenario.registry.url, f"{repo}-base", "1", base, auth=auth)
            image = unseen(base=base, name=f"{address}/{repo}-base:1")
        elif scenario.name == "seen-base":
            image = unseen(base=shared, name=f"{address}/{shared_repo}:1")
        else:
            image = unseen()
        await push(scenario.registry.url, repo, "1", image, auth=auth)
        scenario.images.append((repo, image))


# ------------------------------------------------------------------------------------------- the runs


@dataclass
class Run:
    seconds: list[float] = field(default_factory=list)
    in_a_row: list[int] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)


def _window(proxies: Sequence[ThreadedProxy], since: Sequence[int]) -> list[Record]:
    return [r for proxy, n in zip(proxies, since, strict=True) for r in proxy.proxy.records[n:]]


async def measured(proxies: Sequence[ThreadedProxy], one: Callable[[], Awaitable[None]], run: Run) -> None:
    since = [len(p.proxy.records) for p in proxies]
    started = time.perf_counter()
    await one()
    run.seconds.append(time.perf_counter() - started)
    records = _window(proxies, since)
    run.in_a_row.append(sequential(records))
    run.requests.append(len(records))


class Cluster:
    """Admission's view of the cluster: no labels, one platform, the workload's pull secret if any."""

    def __init__(self, pool: ResolverPool, credentials: PullCredentials) -> None:
        self.pool, self.credentials = pool, credentials

    async def namespace_labels(self, namespace: str) -> dict[str, str]:
        return {}

    def platforms(self) -> tuple[Platform, ...]:
        return (Platform(),)

    async def controller_images(self, controller: object, *, budget: float) -> None:
        return None

    async def resolver(self, namespace: str | None, workload: object) -> Any:
        return await self.pool.resolver(namespace or "", self.credentials)


async def admissions(scenario: Scenario, proxy: ThreadedProxy, proxies: Sequence[ThreadedProxy]) -> Run:
    settings = RegistrySettings(
        registry_guard=True, registry_allow=("127.0.0.0/8",), token_realm_hosts=frozenset({"127.0.0.1"})
    )
    pool = ResolverPool(settings, ttl=600)
    await pool.start()
    credentials = PullCredentials()
    if scenario.credentials:
        store = CredentialStore({proxy.address: Credentials(TEST_USER, TEST_PASSWORD)})
        credentials = PullCredentials(store, fingerprint="bench")
    run = Run()
    try:
        for repo, _ in scenario.images:
            image = f"{proxy.address}/{repo}:1"
            await measured(proxies, functools.partial(admitted, Cluster(pool, credentials), image), run)
    finally:
        await pool.close()
    return run


async def admitted(cluster: Cluster, image: str) -> None:
    """One Pod of `image` admitted, with facts."""
    document = review(workload("Pod", {"containers": [{"name": "app", "image": image}]}))
    answer = await admit(
        decode_document(document), cluster, POLICIES, CATALOG, budget=BUDGET, now=datetime.now(UTC)
    )
    if answer.unresolved or answer.decision is None:
        raise RuntimeError(f"{image}: not resolved: {answer.unresolved or answer.message}")


async def plain(
    scenario: Scenario, proxy: ThreadedProxy, proxies: Sequence[ThreadedProxy], realm: str
) -> Run:
    """The same bytes by plain aiohttp GETs in the floor's order, nothing verified, nothing scanned."""
    run = Run()
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        for repo, image in scenario.images:

            async def one(repo: str = repo, image: BuiltImage | BuiltIndex = image) -> None:
                headers = {"Accept": MANIFEST_ACCEPT}
                if scenario.credentials:
                    basic = base64.b64encode(f"{TEST_USER}:{TEST_PASSWORD}".encode()).decode()
                    query = {"service": SERVICE, "scope": f"repository:{repo}:pull"}
                    asked = {"Authorization": f"Basic {basic}"}
                    async with session.get(realm, params=query, headers=asked) as r:
                        headers["Authorization"] = f"Bearer {(await r.json())['token']}"
                base = f"http://{proxy.address}/v2/{repo}"
                async with session.get(f"{base}/manifests/1", headers=headers) as r:
                    await r.read()
                chosen = image
                if isinstance(image, BuiltIndex):
                    chosen = image.images[0]
                    async with session.get(f"{base}/manifests/{chosen.digest}", headers=headers) as r:
                        await r.read()
                assert isinstance(chosen, BuiltImage)
                blobs = [chosen.config_digest, chosen.layers[0].digest][: 2 if scenario.reads_layer else 1]

                async def blob(digest: str) -> None:
                    async with session.get(f"{base}/blobs/{digest}", headers=headers) as r:
                        await r.read()

                await asyncio.gather(*(blob(d) for d in blobs))

            await measured(proxies, one, run)
    return run


# ------------------------------------------------------------------------------------------------- main


def _ms(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def bench(args: argparse.Namespace) -> None:
    signer = SigningKey.generate()
    token_server = TokenServer(signer, users={TEST_USER: TEST_PASSWORD}).start()
    token_proxy = ThreadedProxy(token_server.realm.removesuffix("/token")).start()

    def token_auth(server: RegistryServer) -> dict[str, Any]:
        bundle = signer.write_cert(server.root / "token-signer.pem")
        realm = f"http://{token_proxy.address}/token"
        token = {"realm": realm, "service": SERVICE, "issuer": ISSUER, "rootcertbundle": str(bundle)}
        return {"token": token}

    with (
        running_registry() as anonymous,
        running_registry(
            prepare=token_auth,
            kind="token",
            username=TEST_USER,
            password=TEST_PASSWORD,
            token_server=token_server,
        ) as bearer,
    ):
        scenarios = [
            Scenario("anonymous", anonymous, floor=2),
            Scenario("bearer", bearer, floor=3, credentials=True),
            Scenario("index", anonymous, floor=3),
            Scenario("annotated", anonymous, floor=3),
            Scenario("seen-base", anonymous, floor=2, reads_layer=False),
        ]
        scenarios = [s for s in scenarios if not args.only or s.name in args.only]
        print(
            f"{'scenario':<11}{'RTT':>5}  {'client':<12}{'p50 ms':>8}{'p90 ms':>8}{'in a row':>9}"
            f"{'requests':>9}"
        )
        for rtt_ms in args.rtt:
            for scenario in scenarios:
                proxy = ThreadedProxy(scenario.registry.url).start()
                hooks = [latency(rtt_ms / 1000)] if rtt_ms else []
                proxy.proxy.hooks[:] = hooks
                token_proxy.proxy.hooks[:] = [latency(rtt_ms / 1000)] if rtt_ms else []
                proxies = [proxy, token_proxy]
                for kind in ("distroguard", "plain"):
                    await prepare(scenario, args.images, proxy.address)
                    if kind == "distroguard":
                        run = await admissions(scenario, proxy, proxies)
                    else:
                        run = await plain(scenario, proxy, proxies, f"http://{token_proxy.address}/token")
                    scenario.images.clear()
                    print(
                        f"{scenario.name:<11}{rtt_ms:>5}  {kind:<12}{_ms(run.seconds, 0.5):>8.0f}"
                        f"{_ms(run.seconds, 0.9):>8.0f}{statistics.median(run.in_a_row):>9.0f}"
                        f"{statistics.median(run.requests):>9.0f}"
                    )
                floor = scenario.floor * rtt_ms
                print(
                    f"{scenario.name:<11}{rtt_ms:>5}  {'floor':<12}{floor:>8.0f}{floor:>8.0f}"
                    f"{scenario.floor:>9}"
                )
                proxy.close()
    token_proxy.close()
    token_server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=9)
    parser.add_argument("--rtt", type=float, action="append", default=[], help="ms; repeatable")
    parser.add_argument("--only", action="append", default=[], help="a scenario's name; repeatable")
    args = parser.parse_args()
    args.rtt = [int(r) for r in args.rtt] or [0, 50]
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
