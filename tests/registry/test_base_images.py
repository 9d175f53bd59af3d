"""The base an image is built on, named with evidence: its annotation verified against the base's own layers
(right, false, unreachable), and bases learnt from the images resolved before it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from distroguard.eol import EolCatalog, bundled_snapshot
from distroguard.model import Decision, ImageFacts
from distroguard.model.record import FactsRecord, RecordReference, record_of
from distroguard.operator.audit.inventorystore import seed
from distroguard.policy import ContainerImage, EvaluationContext, evaluate
from distroguard.registry.client import RegistryClient
from distroguard.resolver import Resolver
from distroguard.resolver.bases import BASE_DIGEST, BASE_NAME
from support.distros import ALPINE_ROOT, DEBIAN_12_ROOT
from support.images import BuiltImage, ImageBuilder, push
from support.policies import policy
from support.registry_server import RegistryServer

APP = {"/srv/app/main.py": b"print('hello')\n"}


@pytest.fixture
async def resolver() -> AsyncIterator[Resolver]:
    async with RegistryClient() as client:
        resolver = Resolver(client)
        yield resolver
        await resolver.drain()


async def pushed(registry: RegistryServer, repo: str, tag: str, image: BuiltImage) -> str:
    await push(registry.url, repo, tag, image)
    return f"{registry.address}/{repo}:{tag}"


def app_on(base: dict[str, object], **annotations: str) -> BuiltImage:
    builder = ImageBuilder().layer(base).layer(APP)  # type: ignore[arg-type]
    for key, value in annotations.items():
        builder.annotate(key, value)
    return builder.build()


def annotated(name: str, digest: str | None = None) -> dict[str, str]:
    return {BASE_NAME: name, **({BASE_DIGEST: digest} if digest else {})}


async def test_a_true_annotation_is_verified_and_named_in_messages(
    registry: RegistryServer, repo: str, resolver: Resolver
) -> None:
    base_image = ImageBuilder().layer(DEBIAN_12_ROOT).build()
    base = await pushed(registry, repo, "base", base_image)
    app = await pushed(registry, repo, "app", app_on(DEBIAN_12_ROOT, **annotated(base, base_image.digest)))
    facts = await resolver.resolve(app)
    assert facts.base is not None
    assert (facts.base.reference, facts.base.digest, facts.base.how, facts.base.verified) == (
        base,
        base_image.digest,
        "annotation",
        True,
    )
    assert "its 1 layers are this image's first 1" in facts.base.detail
    message = _denial(app, facts)
    assert f"uses {app} (built on {base}, Debian 12 (bookworm), glibc 2.36)" in message


async def test_a_false_annotation_is_reported_false(
    registry: RegistryServer, repo: str, resolver: Resolver
) -> None:
    alpine = await pushed(registry, repo, "alpine", ImageBuilder().layer(ALPINE_ROOT).build())
    app = await pushed(registry, repo, "lying", app_on(DEBIAN_12_ROOT, **annotated(alpine)))
    facts = await resolver.resolve(app)
    assert facts.base is not None
    assert (facts.base.reference, facts.base.how, facts.base.verified) == (alpine, "annotation", False)
    assert "is false" in facts.base.detail
    decision = _decision(app, facts)
    by_rule = {f.rule: f for f in decision.findings}
    assert "built on" not in by_rule["r"].message  # a false claim names nothing
    # ...and is a finding of its own: every covering policy warns about it, none denies for it alone.
    false_claim = by_rule["falseBaseClaim"]
    assert (false_claim.action, false_claim.facts["claimedBase"]) == ("warn", alpine)
    assert false_claim.message == (
        f'container "app" uses {app} (Debian 12 (bookworm), glibc 2.36): it claims to be built on {alpine} '
        "(annotation org.opencontainers.image.base.name), but that image's layers are not its first ones; "
        "policy debian-off warns about false base claims"
    )
    verified = await resolver.resolve(
        await pushed(registry, repo, "honest", app_on(ALPINE_ROOT, **annotated(alpine)))
    )
    assert "falseBaseClaim" not in {f.rule for f in _decision("honest", verified).findings}


async def test_an_annotation_naming_an_unreachable_base_is_unverified(
    registry: RegistryServer, repo: str, resolver: Resolver
) -> None:
    nowhere = "127.0.0.1:9/library/python:3.8-slim-buster"  # nothing listens on port 9
    app = await pushed(registry, repo, "unreachable", app_on(DEBIAN_12_ROOT, **annotated(nowhere)))
    facts = await resolver.resolve(app)
    assert facts.base is not None
    assert (facts.base.reference, facts.base.verified) == (nowhere, None)
    assert facts.base.detail.startswith(f"annotation {BASE_NAME}={nowhere}, not verified: ")
    assert facts.os is not None  # the image's own facts do not depend on its base


async def test_a_base_seen_before_names_the_images_built_on_it(
    registry: RegistryServer, repo: str, resolver: Resolver
) -> None:
    base_image = ImageBuilder().layer(DEBIAN_12_ROOT).build()
    base = await pushed(registry, repo, "bookworm", base_image)
    middle_image = ImageBuilder().layer(DEBIAN_12_ROOT).layer(APP).build()
    middle = await pushed(registry, repo, "middle", middle_image)
    top = await pushed(
        registry,
        repo,
        "top",
        ImageBuilder().layer(DEBIAN_12_ROOT).layer(APP).layer({"/srv/more": b"x"}).build(),
    )
    assert (await resolver.resolve(middle)).base is None  # nothing seen yet: no base named
    await resolver.resolve(base)
    facts = await resolver.resolve(top)
    # Both are prefixes of the top image; the longest chain wins.
    assert facts.base is not None
    assert (facts.base.reference, facts.base.digest, facts.base.how) == (
        middle,
        middle_image.digest,
        "known-base",
    )
    assert facts.base.detail == f"its first 2 of 3 layers are those of {middle}, seen before"


def _decision(image: str, facts: ImageFacts) -> Decision:
    return evaluate(
        [ContainerImage("app", image, facts)],
        [policy("debian-off", {"name": "r", "denyDistros": ["debian", "alpine"]})],
        EvaluationContext(now=datetime(2026, 12, 7, tzinfo=UTC)),
        EolCatalog(bundled_snapshot()),
    )


def _denial(image: str, facts: ImageFacts) -> str:
    (finding,) = _decision(image, facts).findings
    return finding.message


async def test_the_inventory_teaches_a_new_replica_which_image_is_a_base(
    registry: RegistryServer, repo: str
) -> None:
    """One replica resolves the base; its ImageFacts object (as the audit writes it, through JSON) seeds a
    replica that never saw it, which then names the base of an image built on it."""
    base_image = ImageBuilder().layer(DEBIAN_12_ROOT).build()
    base = await pushed(registry, repo, "inventory-base", base_image)
    app = await pushed(registry, repo, "inventory-app", app_on(DEBIAN_12_ROOT))
    now = datetime.now(UTC)
    async with RegistryClient() as client:
        first = Resolver(client)
        base_facts = await first.resolve(base)
        await first.drain()
        assert base_facts.chain is not None
        record = record_of(
            base_image.digest,
            [(base_facts, None)],
            offers=(),
            single=True,
            references=(RecordReference(image=base, digest=base_image.digest, observed_at=now),),
            access="public",
            resolved_at=now,
            last_seen=now,
        )
        stored = FactsRecord.model_validate_json(record.model_dump_json(by_alias=True))
        assert stored.platforms[0].chain == base_facts.chain
        replica = Resolver(client)
        assert seed(replica, stored, now) == 1
        facts = await replica.resolve(app)
        await replica.drain()
    assert facts.base is not None
    assert (facts.base.reference, facts.base.how) == (base, "known-base")
