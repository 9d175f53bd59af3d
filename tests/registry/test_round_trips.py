"""The requests a cold lookup makes, and how many it waits for one after the other: exact, per scenario.

A registry far away costs one round trip per request waited for in a row, so these counts are the cold path's
latency at real distances. Each test resolves as admission does (`resolve_platforms`, fast mode) through the
counting proxy in front of Debian's docker-registry, and fails if a request comes back or if requests that go
out side by side (an image's config and bottom layer) come to wait for each other: the `together` hook holds
the first blob requests until both are under way, so a client that sends them one after the other is seen
doing so (after the hook's timeout).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import pytest

from distroguard.model import Platform
from distroguard.model.facts import ImagePlatforms
from distroguard.registry.client import RegistryClient, RegistrySettings
from distroguard.registry.credentials import Credentials, CredentialStore
from distroguard.resolver import Resolver
from distroguard.resolver.cache import CacheSettings
from distroguard.resolver.resolver import ResolverSettings
from distroguard.resolver.routing import PullCredentials, ResolverPool
from support.distros import DEBIAN_12_ROOT
from support.images import BuiltImage, ImageBuilder, build_index, push
from support.proxy import CountingProxy, Record, sequential, together
from support.registry_server import TEST_PASSWORD, TEST_USER, RegistryServer

pytestmark = pytest.mark.registry

MakeProxy = Callable[..., Awaitable[CountingProxy]]
AMD64 = [Platform()]


def on_base(base: bytes, platform: str = "linux/amd64") -> BuiltImage:
    """An image whose bottom layer is a Debian root marked `base`, with an app layer of its own above."""
    return (
        ImageBuilder(platform=platform)
        .layer({**DEBIAN_12_ROOT, "/etc/marker": base})
        .layer({"/srv/app.py": uuid.uuid4().hex.encode()})
        .build()
    )


def unseen(platform: str = "linux/amd64") -> BuiltImage:
    return on_base(uuid.uuid4().bytes, platform)


def asked(records: list[Record]) -> list[tuple[str, str, int]]:
    """(method, path, status) of each request, sorted (requests side by side arrive in any order)."""
    return sorted((r.method, r.path, r.status) for r in records)


def judged_debian(found: ImagePlatforms) -> None:
    assert [f.os.id if f.os else None for f in found.facts] == ["debian"]


async def test_an_unseen_image_on_an_anonymous_registry(
    registry: RegistryServer, repo: str, make_proxy: MakeProxy
) -> None:
    image = unseen()
    await push(registry.url, repo, "1", image)
    proxy = await make_proxy(registry.url, hooks=[together(2)])
    async with RegistryClient() as client:
        judged_debian(await Resolver(client).resolve_platforms(f"{proxy.address}/{repo}:1", AMD64))
    v2 = f"/v2/{repo}"
    assert asked(proxy.records) == asked_for(
        ("GET", f"{v2}/manifests/1"),  # the digest comes with the bytes: no HEAD first
        ("GET", f"{v2}/blobs/{image.config_digest}"),
        ("GET", f"{v2}/blobs/{image.layers[0].digest}"),  # beside the config
    )
    assert sequential(proxy.records) == 2


async def test_an_unseen_index_goes_to_its_platform_manifest(
    registry: RegistryServer, repo: str, make_proxy: MakeProxy
) -> None:
    amd64, arm64 = unseen("linux/amd64"), unseen("linux/arm64")
    await push(registry.url, repo, "1", build_index([amd64, arm64]))
    proxy = await make_proxy(registry.url, hooks=[together(2)])
    async with RegistryClient() as client:
        judged_debian(await Resolver(client).resolve_platforms(f"{proxy.address}/{repo}:1", AMD64))
    v2 = f"/v2/{repo}"
    assert asked(proxy.records) == asked_for(
        ("GET", f"{v2}/manifests/1"),
        ("GET", f"{v2}/manifests/{amd64.digest}"),
        ("GET", f"{v2}/blobs/{amd64.config_digest}"),
        ("GET", f"{v2}/blobs/{amd64.layers[0].digest}"),
    )
    assert sequential(proxy.records) == 3


async def test_images_claiming_a_base_read_it_once(
    registry: RegistryServer, repo: str, make_proxy: MakeProxy
) -> None:
    """The base an image's annotation names is read beside the image's config and layers; the next image
    claiming it reads neither its manifest nor its config again (nor the layer they share)."""
    base = ImageBuilder().layer({**DEBIAN_12_ROOT, "/etc/marker": uuid.uuid4().bytes}).build()
    await push(registry.url, f"{repo}-base", "1", base)
    proxy = await make_proxy(registry.url, hooks=[together(2)])
    claimed = f"{proxy.address}/{repo}-base:1"
    images = []
    for name in ("a", "b"):
        builder = ImageBuilder().raw_layer(base.layers[0].tar).layer({"/srv/app.py": name.encode()})
        images.append(builder.annotate("org.opencontainers.image.base.name", claimed).build())
        await push(registry.url, f"{repo}-{name}", "1", images[-1])
    async with RegistryClient() as client:
        resolver = Resolver(client)
        found = await resolver.resolve_platforms(f"{proxy.address}/{repo}-a:1", AMD64)
        judged_debian(found)
        assert verified_base(found) == claimed
        v2, first = f"/v2/{repo}-a", images[0]
        assert asked(proxy.records) == asked_for(
            ("GET", f"{v2}/manifests/1"),
            ("GET", f"{v2}/blobs/{first.config_digest}"),
            ("GET", f"{v2}/blobs/{first.layers[0].digest}"),
            ("GET", f"/v2/{repo}-base/manifests/1"),
            ("GET", f"/v2/{repo}-base/blobs/{base.config_digest}"),
        )
        # the manifest; the config, the bottom layer and the base's manifest side by side; the base's config
        assert sequential(proxy.records) == 3

        proxy.records.clear()
        found = await resolver.resolve_platforms(f"{proxy.address}/{repo}-b:1", AMD64)
        assert verified_base(found) == claimed
        v2 = f"/v2/{repo}-b"
        assert asked(proxy.records) == asked_for(
            ("GET", f"{v2}/manifests/1"), ("GET", f"{v2}/blobs/{images[1].config_digest}")
        )


async def test_unseen_images_on_a_bearer_token_registry(
    token_registry: RegistryServer, repo: str, make_proxy: MakeProxy
) -> None:
    """The first request learns the registry's scheme from its 401; later repositories get their token
    before their first request."""
    token_server = token_registry.token_server
    assert token_server is not None
    first, second = unseen(), unseen()
    await push(token_registry.url, f"{repo}-a", "1", first, auth=token_registry.push_auth)
    await push(token_registry.url, f"{repo}-b", "1", second, auth=token_registry.push_auth)
    proxy = await make_proxy(token_registry.url, hooks=[together(2)])
    credentials = CredentialStore({proxy.address: Credentials(TEST_USER, TEST_PASSWORD)})
    async with RegistryClient(credentials=credentials) as client:
        resolver = Resolver(client)
        tokens = token_server.count()
        judged_debian(await resolver.resolve_platforms(f"{proxy.address}/{repo}-a:1", AMD64))
        assert token_server.count() - tokens == 1
        v2 = f"/v2/{repo}-a"
        assert asked(proxy.records) == asked_for(
            ("GET", f"{v2}/manifests/1", 401),
            ("GET", f"{v2}/manifests/1"),
            ("GET", f"{v2}/blobs/{first.config_digest}"),
            ("GET", f"{v2}/blobs/{first.layers[0].digest}"),
        )
        assert sequential(proxy.records) == 3  # and the token between the first two

        proxy.records.clear()
        proxy.hooks[:] = [together(2)]
        tokens = token_server.count()
        judged_debian(await resolver.resolve_platforms(f"{proxy.address}/{repo}-b:1", AMD64))
        assert token_server.count() - tokens == 1  # before the first request: no 401 any more
        v2 = f"/v2/{repo}-b"
        assert asked(proxy.records) == asked_for(
            ("GET", f"{v2}/manifests/1"),
            ("GET", f"{v2}/blobs/{second.config_digest}"),
            ("GET", f"{v2}/blobs/{second.layers[0].digest}"),
        )
        assert sequential(proxy.records) == 2


async def test_the_clients_of_a_pool_share_what_a_registrys_401_taught(
    token_registry: RegistryServer, repo: str, make_proxy: MakeProxy
) -> None:
    """Each namespace's pull secrets get a client of their own; the second one asks for its token before its
    first request, as the first one learnt to (tokens and credentials stay each client's own)."""
    token_server = token_registry.token_server
    assert token_server is not None
    images = {ns: unseen() for ns in ("shop", "blog")}
    for ns, image in images.items():
        await push(token_registry.url, f"{repo}-{ns}", "1", image, auth=token_registry.push_auth)
    proxy = await make_proxy(token_registry.url)
    store = CredentialStore({proxy.address: Credentials(TEST_USER, TEST_PASSWORD)})
    pool = ResolverPool(RegistrySettings(), ttl=60)
    await pool.start()
    try:
        unauthorized = []
        for ns in images:
            routed = await pool.resolver(ns, PullCredentials(store, fingerprint=f"secret-of-{ns}"))
            tokens = token_server.count()
            judged_debian(await routed.resolve_platforms(f"{proxy.address}/{repo}-{ns}:1", AMD64))
            assert token_server.count() - tokens == 1
            unauthorized.append(sum(r.status == 401 for r in proxy.records))
            proxy.records.clear()
        assert unauthorized == [1, 0]
    finally:
        await pool.close()


async def test_a_tag_seen_before_is_asked_by_head_and_a_seen_base_reads_no_layer(
    registry: RegistryServer, repo: str, make_proxy: MakeProxy
) -> None:
    base = uuid.uuid4().bytes
    first, second = on_base(base), on_base(base)
    await push(registry.url, f"{repo}-a", "1", first)
    await push(registry.url, f"{repo}-b", "1", second)
    proxy = await make_proxy(registry.url)
    settings = ResolverSettings(cache=CacheSettings(tag_ttl=0.0))  # every tag is asked again
    async with RegistryClient() as client:
        resolver = Resolver(client, settings)
        judged_debian(await resolver.resolve_platforms(f"{proxy.address}/{repo}-a:1", AMD64))
        assert len(proxy.records) == 3

        proxy.records.clear()
        judged_debian(await resolver.resolve_platforms(f"{proxy.address}/{repo}-a:1", AMD64))
        # The same digest: its facts are cached, and a HEAD reads no body.
        assert asked(proxy.records) == asked_for(("HEAD", f"/v2/{repo}-a/manifests/1"))

        proxy.records.clear()
        judged_debian(await resolver.resolve_platforms(f"{proxy.address}/{repo}-b:1", AMD64))
        # On a base read before: the base tier answers from the config's diff_ids, and the bottom layer,
        # read before under the same digest, is not started ahead for nothing.
        v2 = f"/v2/{repo}-b"
        assert asked(proxy.records) == asked_for(
            ("GET", f"{v2}/manifests/1"), ("GET", f"{v2}/blobs/{second.config_digest}")
        )


async def test_with_one_connection_slot_a_cold_lookup_ends_its_requests_in_a_row(
    registry: RegistryServer, repo: str, make_proxy: MakeProxy
) -> None:
    """A stream started ahead never holds a registry's last slot (at most half of them), which the config's
    request would wait for: with one slot, the requests go one after the other, and the lookup ends."""
    image = unseen()
    await push(registry.url, repo, "1", image)
    proxy = await make_proxy(registry.url)
    async with RegistryClient(RegistrySettings(concurrency=1)) as client:
        judged_debian(await Resolver(client).resolve_platforms(f"{proxy.address}/{repo}:1", AMD64))
    assert len(proxy.records) == 3
    assert sequential(proxy.records) == 3


def verified_base(found: ImagePlatforms) -> str | None:
    base = found.facts[0].base
    return base.reference if base is not None and base.verified is True else None


def asked_for(*requests: tuple[str, str] | tuple[str, str, int]) -> list[tuple[str, str, int]]:
    """`asked`'s form of the requests expected (status 200 unless given)."""
    return sorted((r[0], r[1], r[2] if len(r) == 3 else 200) for r in requests)


async def test_many_cold_lookups_on_few_slots_all_finish(
    registry: RegistryServer, repo: str, make_proxy: MakeProxy
) -> None:
    """Streams started ahead wait for readers whose own configs need a slot: with two slots and six lookups
    at once, every lookup still ends (well within its 30 s), each with its three requests."""
    images = [unseen() for _ in range(6)]
    for n, image in enumerate(images):
        await push(registry.url, f"{repo}-{n}", "1", image)
    proxy = await make_proxy(registry.url)
    async with RegistryClient(RegistrySettings(concurrency=2)) as client:
        resolver = Resolver(client, ResolverSettings(lookup_timeout=30.0))
        found = await asyncio.gather(
            *(resolver.resolve_platforms(f"{proxy.address}/{repo}-{n}:1", AMD64) for n in range(6))
        )
    for each in found:
        judged_debian(each)
    assert len(proxy.records) == 6 * 3
