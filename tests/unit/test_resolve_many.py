"""`resolve_many`, the routing of an image to the credentials it needs, and the one test for a local image:
what admission, the in-cluster audit, the CLI audit and the image commands share."""

from __future__ import annotations

import asyncio

import pytest

from distroguard.audit.resolve import Lookup, lookup_for
from distroguard.errors import DeadlineExceeded, InvalidReference
from distroguard.model import ImageFacts, Platform, ScanMode
from distroguard.model.reference import is_local_image
from distroguard.registry import archive, layout
from distroguard.registry.credentials import Credentials, CredentialStore
from distroguard.resolver.many import Outcome, resolve_many
from distroguard.resolver.routing import RoutedResolver, credentials_registry, uses_credentials
from support.lifecycles import facts

MIRROR = "127.0.0.1:5001"
MIRRORS = {"docker.io": f"{MIRROR}/hub-proxy"}


class Scripted:
    """A resolver whose cache holds `cached`, whose lookups wait `delay` s and fail for `failing`."""

    def __init__(
        self,
        cached: dict[str, ImageFacts] | None = None,
        failing: frozenset[str] = frozenset(),
        delay: float = 0.0,
    ) -> None:
        self.known = cached or {}
        self.failing = failing
        self.delay = delay
        self.resolved: list[tuple[str, float | None]] = []
        self.running = 0
        self.most_running = 0

    async def resolve(
        self,
        image: str,
        platform: Platform | None = None,
        mode: ScanMode = "fast",
        budget: float | None = None,
    ) -> ImageFacts:
        self.resolved.append((image, budget))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            if budget is not None and self.delay > budget:
                await asyncio.sleep(budget)
                raise DeadlineExceeded(f"{image}: not resolved within {budget:g} s")
            await asyncio.sleep(self.delay)
        finally:
            self.running -= 1
        if image in self.failing:
            raise InvalidReference(image, "scripted failure")
        return facts("debian", "12").model_copy(update={"reference": image})

    def cached(
        self, image: str, platform: Platform | None = None, mode: ScanMode = "fast"
    ) -> ImageFacts | None:
        return self.known.get(image)


async def test_the_cache_answers_first_and_makes_no_task() -> None:
    warm = facts("debian", "12")
    resolver = Scripted({"warm:1": warm})
    done: list[str] = []
    outcomes = await resolve_many(
        {"cold:1": ("cold:1", resolver), "warm:1": ("warm:1", resolver)},
        on_done=lambda key, _: done.append(key),
    )
    assert list(outcomes) == ["cold:1", "warm:1"]  # the order asked, whatever the order of completion
    assert outcomes["warm:1"] is warm
    assert resolver.resolved == [("cold:1", None)]
    assert done == ["warm:1", "cold:1"]


async def test_each_lookup_ends_in_facts_or_its_error() -> None:
    resolver = Scripted(failing=frozenset({"bad:1"}))
    outcomes = await resolve_many({key: (key, resolver) for key in ("good:1", "bad:1")})
    assert isinstance(outcomes["good:1"], ImageFacts)
    assert isinstance(outcomes["bad:1"], InvalidReference)


async def test_concurrency_is_bounded_and_the_budget_reaches_every_lookup() -> None:
    resolver = Scripted(delay=0.01)
    images = [f"app-{i}:1" for i in range(12)]
    outcomes = await resolve_many({i: (i, resolver) for i in images}, concurrency=3, budget=5.0)
    assert all(isinstance(o, ImageFacts) for o in outcomes.values())
    assert resolver.most_running == 3
    assert {budget for _, budget in resolver.resolved} == {5.0}
    unbounded = Scripted(delay=0.01)
    await resolve_many({i: (i, unbounded) for i in images})
    assert unbounded.most_running == len(images)


async def test_a_lookup_past_its_budget_is_a_deadline_not_an_exception() -> None:
    slow = Scripted(delay=10.0)
    outcomes: dict[str, Outcome] = await resolve_many({"slow:1": ("slow:1", slow)}, budget=0.01)
    assert isinstance(outcomes["slow:1"], DeadlineExceeded)


async def test_keys_that_share_an_image_are_looked_up_each_with_their_own_resolver() -> None:
    mine, theirs = Scripted(), Scripted()
    outcomes = await resolve_many({("a", "x:1"): ("x:1", mine), ("b", "x:1"): ("x:1", theirs)})
    assert len(outcomes) == 2
    assert mine.resolved == theirs.resolved == [("x:1", None)]


async def test_a_bug_is_not_taken_for_an_outcome() -> None:
    class Broken(Scripted):
        async def resolve(self, image: str, *args: object, **kwargs: object) -> ImageFacts:
            raise KeyError("bug")

    with pytest.raises(KeyError):
        await resolve_many({"x:1": ("x:1", Broken())})


# --------------------------------------------------------------------------------------------- routing


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("python:3.12", MIRROR),  # Docker Hub, mirrored: the mirror's host, without the prefix
        ("index.docker.io/library/python:3.12", MIRROR),
        ("quay.io/a/b:1", "quay.io"),
        ("127.0.0.1:5002/app:1", "127.0.0.1:5002"),
        ("oci:/images/app", None),
        ("docker-archive:/images/app.tar", None),
        ("Bad Ref", None),
    ],
)
def test_the_registry_whose_credentials_a_lookup_sends(image: str, registry: str | None) -> None:
    assert credentials_registry(image, MIRRORS) == registry


def test_without_mirrors_an_image_goes_with_its_own_registrys_credentials() -> None:
    assert credentials_registry("python:3.12") == "docker.io"
    store = CredentialStore({"https://index.docker.io/v1/": Credentials("u", "p")})
    assert uses_credentials("python:3.12", store)
    assert not uses_credentials("python:3.12", store, MIRRORS)  # the mirror's are needed, not the source's


def test_the_audit_and_admission_route_a_mirrored_image_to_the_mirror_hosts_secret() -> None:
    store = CredentialStore({MIRROR: Credentials("u", "p")})
    # The CLI audit: the lookup carries the namespace's secret only for what it serves.
    assert lookup_for("python:3.12", store, "f1", MIRRORS) == Lookup("python:3.12", "f1")
    assert lookup_for("python:3.12", store, "f1") == Lookup("python:3.12")
    assert lookup_for("quay.io/a/b:1", store, "f1", MIRRORS) == Lookup("quay.io/a/b:1")
    assert lookup_for("python:3.12", store, "", MIRRORS) == Lookup("python:3.12")
    # Admission and the in-cluster audit: the credentialed resolver for the same images.
    own, anonymous = Scripted(), Scripted()
    routed = RoutedResolver(anonymous, own, frozenset(store.registries), MIRRORS)  # type: ignore[arg-type]
    assert routed.target("python:3.12") is own
    assert routed.target("quay.io/a/b:1") is anonymous


async def test_a_routed_batch_sends_each_image_to_its_target() -> None:
    own, anonymous = Scripted(), Scripted()
    routed = RoutedResolver(anonymous, own, frozenset({MIRROR}), MIRRORS)  # type: ignore[arg-type]
    outcomes = await routed.resolve_many(["python:3.12", "quay.io/a/b:1", "python:3.12"], budget=1.0)
    assert list(outcomes) == ["python:3.12", "quay.io/a/b:1"]
    assert own.resolved == [("python:3.12", 1.0)]
    assert anonymous.resolved == [("quay.io/a/b:1", 1.0)]


# --------------------------------------------------------------------------------------- local images


@pytest.mark.parametrize(
    ("image", "local"),
    [
        ("oci:/images/app", True),
        ("oci:relative:tag", True),
        ("docker-archive:/images/app.tar", True),
        ("python:3.12", False),
        ("localhost:5000/oci:1", False),
        ("registry.example.com/docker-archive/app:1", False),
    ],
)
def test_a_local_image_is_one_the_sources_read_from_disk(image: str, local: bool) -> None:
    assert is_local_image(image) is local
    # The registry layer's own prefixes (what `open_source` reads from disk) agree.
    assert image.startswith((layout.PREFIX, archive.PREFIX)) is local
