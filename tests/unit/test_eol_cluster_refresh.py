"""The audit's refresh of the cluster's EOLCatalog against a local endoflife.date API (`support.eol_api`)
and the object's contract in memory (`support.eol_store`): changed dates, a new release, 304s with the
stored ETag and Last-Modified, 429, 500 and malformed bodies. The object is updated, or left exactly as it
was: nothing half-written. And `push` (what `eol update --kubeconfig` does): never older over newer, and no
update lost to a concurrent writer."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from distroguard.eol import bundled_snapshot
from distroguard.eol.refresh import RefreshSettings
from distroguard.eol.update import OlderCatalog
from distroguard.model.lifecycle import CatalogSnapshot, ReleaseCycle
from distroguard.operator.catalogrefresh import CatalogRefresher, EolSettings
from distroguard.operator.catalogstore import Conflict, StoredCatalog, push
from support.eol_api import EolApiServer, Reply
from support.eol_store import MemoryStore

BUNDLED = bundled_snapshot()
FEW = ("debian", "python", "alpine-linux")
PACKAGE = BUNDLED.model_copy(update={"products": tuple(p for p in BUNDLED.products if p.name in FEW)})
"""What the refresher asks for: the bundled snapshot's products (three of them, to keep it short)."""
DAY = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)


@pytest.fixture
def server() -> Iterator[EolApiServer]:
    running = EolApiServer({p.name: p for p in PACKAGE.products}).start()
    yield running
    running.stop()


class Clock:
    def __init__(self) -> None:
        self.now = DAY

    def __call__(self) -> datetime:
        return self.now


def refresher(server: EolApiServer, store: MemoryStore, clock: Clock) -> CatalogRefresher:
    fetch = RefreshSettings(base_url=server.url, deadline=10.0, backoff=0.01, max_retry_wait=1.0, attempts=2)
    return CatalogRefresher(store, EolSettings(url=server.url), bundled=PACKAGE, clock=clock, fetch=fetch)


def debian_12_ending(server: EolApiServer, end: date, when: datetime) -> None:
    debian = server.products["debian"]
    cycles = tuple(c.model_copy(update={"eol": end}) if c.cycle == "12" else c for c in debian.cycles)
    server.change(debian.model_copy(update={"cycles": cycles}), when)


def cycle_of(store: MemoryStore, product: str, name: str) -> ReleaseCycle:
    found = store.snapshot()
    assert found is not None
    return next(c for p in found.products if p.name == product for c in p.cycles if c.cycle == name)


async def test_the_first_refresh_creates_the_object_with_every_product_and_their_validators(
    server: EolApiServer,
) -> None:
    store, clock = MemoryStore(), Clock()
    assert await refresher(server, store, clock).refresh() == "changed"
    stored = store.read()
    assert stored is not None
    assert stored.snapshot is not None
    assert [p.name for p in stored.snapshot.products] == [p.name for p in PACKAGE.products]
    assert stored.snapshot.snapshot == DAY.date()
    assert stored.snapshot.source == f"endoflife.date API v1 at {server.url}"
    assert stored.status.checked == DAY
    assert stored.status.snapshot_time == datetime(2026, 11, 28, tzinfo=UTC)
    assert stored.validators_valid()
    assert set(stored.status.products) == set(FEW)
    assert all(v.etag and v.last_modified for v in stored.status.products.values())
    assert sorted(server.conditions) == sorted((name, None, None) for name in FEW)


async def test_an_unchanged_api_answers_304_to_the_stored_validators(server: EolApiServer) -> None:
    store, clock = MemoryStore(), Clock()
    refresh = refresher(server, store, clock)
    await refresh.refresh()
    first = store.read()
    assert first is not None
    server.conditions.clear()
    clock.now = DAY + timedelta(hours=2)
    assert await refresh.refresh() == "confirmed"
    assert sorted(server.answered(304)) == sorted(FEW)
    sent = {name: (tag, since) for name, tag, since in server.conditions}
    for name in FEW:
        assert sent[name] == (first.status.products[name].etag, first.status.products[name].last_modified)
    # The same day: the spec is not written again, only the check recorded.
    assert store.spec_writes == 1
    after = store.read()
    assert after is not None
    assert after.status.checked == clock.now
    assert after.status.changed == DAY
    # The next day, endoflife.date confirming the data dates it that day (one spec write, same products).
    clock.now = DAY + timedelta(days=1)
    assert await refresh.refresh() == "confirmed"
    assert first.snapshot is not None
    assert store.snapshot() == first.snapshot.model_copy(update={"snapshot": clock.now.date()})
    assert store.spec_writes == 2


async def test_if_modified_since_alone_gets_a_304_too(server: EolApiServer) -> None:
    store, clock = MemoryStore(), Clock()
    refresh = refresher(server, store, clock)
    await refresh.refresh()
    assert store.body is not None
    for validators in store.body["status"]["products"].values():
        del validators["etag"]
    server.conditions.clear()
    assert await refresh.refresh() == "confirmed"
    assert all(tag is None and since for _, tag, since in server.conditions)
    assert sorted(server.answered(304)) == sorted(FEW)


async def test_a_moved_end_of_life_and_a_new_release_are_taken_the_rest_kept_by_304(
    server: EolApiServer,
) -> None:
    store, clock = MemoryStore(), Clock()
    refresh = refresher(server, store, clock)
    await refresh.refresh()
    assert cycle_of(store, "debian", "12").eol != date(2026, 9, 30)
    later = DAY + timedelta(days=3)
    debian_12_ending(server, date(2026, 9, 30), later)
    python = server.products["python"]
    new = python.cycles[0].model_copy(update={"cycle": "3.99", "latest": "3.99.0"})
    server.change(python.model_copy(update={"cycles": (new, *python.cycles)}), later)
    server.conditions.clear()
    clock.now = later
    assert await refresh.refresh() == "changed"
    assert sorted(server.answered(200)[-2:]) == ["debian", "python"]
    assert server.answered(304)[-1:] == ["alpine-linux"]
    assert cycle_of(store, "debian", "12").eol == date(2026, 9, 30)
    assert cycle_of(store, "python", "3.99").latest == "3.99.0"
    stored = store.read()
    assert stored is not None
    assert stored.snapshot is not None
    assert stored.snapshot.snapshot == later.date()
    assert stored.status.changed == later
    assert stored.validators_valid()


FAILURES = [
    ("429 with a long Retry-After", [Reply(429, b"slow down", {"Retry-After": "3600"})], "429 Too Many"),
    ("500 every time", [Reply(500, b"oops")], "answered HTTP 500"),
    ("malformed JSON", [Reply(200, b"{not json")], "malformed JSON"),
    ("an unexpected document", [Reply(200, b'{"schema_version": "1", "result": {}}')], "unexpected document"),
    ("a body too large", [Reply(200, b"[" + b" " * (5 * 1024 * 1024) + b"]")], "more than the"),
]


@pytest.mark.parametrize(("replies", "problem"), [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES])
async def test_a_failed_refresh_leaves_the_spec_exactly_as_it_was_and_says_why(
    server: EolApiServer, replies: list[Reply], problem: str
) -> None:
    store, clock = MemoryStore(), Clock()
    refresh = refresher(server, store, clock)
    await refresh.refresh()
    assert store.body is not None
    spec, generation = copy.deepcopy(store.body["spec"]), store.body["metadata"]["generation"]
    # Debian's data changed, python's answer fails: not even Debian's change may be written.
    later = DAY + timedelta(days=2)
    debian_12_ending(server, date(2026, 9, 30), later)
    server.script["python"] = replies
    clock.now = later
    assert await refresh.refresh() == "failed"
    assert store.body["spec"] == spec
    assert store.body["metadata"]["generation"] == generation
    stored = store.read()
    assert stored is not None
    assert stored.status.last_error is not None
    assert problem in stored.status.last_error
    assert stored.status.last_attempt == later
    assert stored.status.checked == DAY  # the last success
    assert stored.validators_valid()  # the validators still describe the spec kept
    # Once endoflife.date answers again, the change arrives.
    server.script.clear()
    assert await refresh.refresh() == "changed"
    assert cycle_of(store, "debian", "12").eol == date(2026, 9, 30)
    after = store.read()
    assert after is not None
    assert after.status.last_error is None


async def test_without_an_object_a_failure_writes_nothing(server: EolApiServer) -> None:
    store, clock = MemoryStore(), Clock()
    server.script["debian"] = [Reply(500, b"oops")]
    assert await refresher(server, store, clock).refresh() == "failed"
    assert store.body is None


async def test_validators_of_another_writers_spec_are_not_used(server: EolApiServer) -> None:
    """`eol update --kubeconfig --from FILE` replaced the spec: the stored validators describe the refresher's
    last spec, not this one, so every product is fetched in full (a 304 would keep the file's data)."""
    store, clock = MemoryStore(), Clock()
    refresh = refresher(server, store, clock)
    await refresh.refresh()
    pushed = PACKAGE.model_copy(update={"snapshot": DAY.date(), "source": "a file"})
    push(store, lambda _: pushed)
    stored = store.read()
    assert stored is not None
    assert not stored.validators_valid()
    server.conditions.clear()
    assert await refresh.refresh() in ("changed", "confirmed")
    assert all(tag is None and since is None for _, tag, since in server.conditions)
    assert sorted(server.answered(200)[-3:]) == sorted(FEW)


async def test_a_concurrent_writer_is_never_overwritten_blindly(server: EolApiServer) -> None:
    store, clock = MemoryStore(), Clock()
    refresh = refresher(server, store, clock)
    await refresh.refresh()
    later = DAY + timedelta(days=1)
    clock.now = later
    debian_12_ending(server, date(2026, 9, 30), later)
    other = PACKAGE.model_copy(update={"snapshot": later.date(), "source": "another writer"})
    store.before_write = lambda: push(store, lambda _: other)
    assert await refresh.refresh() == "changed"
    # The refresher saw the conflict, read the other writer's object and refreshed again on top of it.
    stored = store.read()
    assert stored is not None
    assert stored.snapshot is not None
    assert stored.snapshot.source == f"endoflife.date API v1 at {server.url}"
    assert cycle_of(store, "debian", "12").eol == date(2026, 9, 30)
    assert store.spec_writes == 3  # ours, the other writer's, ours again


def test_push_never_replaces_newer_data_with_older() -> None:
    store = MemoryStore()
    newer = PACKAGE.model_copy(update={"snapshot": date(2026, 12, 1)})
    older = PACKAGE.model_copy(update={"snapshot": date(2026, 11, 1), "source": "old file"})
    assert push(store, lambda _: newer).replaced is None
    with pytest.raises(OlderCatalog, match="older than the cluster's EOLCatalog"):
        push(store, lambda _: older)
    assert store.snapshot() == newer
    assert store.spec_writes == 1


def test_push_decides_again_on_what_another_writer_stored() -> None:
    store = MemoryStore()
    push(store, lambda _: PACKAGE.model_copy(update={"snapshot": date(2026, 11, 1)}))
    mine = PACKAGE.model_copy(update={"snapshot": date(2026, 11, 10), "source": "mine"})
    theirs = PACKAGE.model_copy(update={"snapshot": date(2026, 11, 20), "source": "theirs"})
    seen: list[CatalogSnapshot | None] = []

    def decide(stored: StoredCatalog | None) -> CatalogSnapshot:
        seen.append(stored.snapshot if stored else None)
        return mine

    store.before_write = lambda: push(store, lambda _: theirs)
    with pytest.raises(OlderCatalog):
        push(store, decide)
    assert [s.source if s else None for s in seen] == [PACKAGE.source, "theirs"]
    assert store.snapshot() == theirs


def test_a_writer_that_keeps_conflicting_gives_up() -> None:
    store = MemoryStore()
    push(store, lambda _: PACKAGE)

    class Busy(MemoryStore):
        def write_spec(self, snapshot: CatalogSnapshot, expected: StoredCatalog | None) -> StoredCatalog:
            raise Conflict("again")

    busy = Busy()
    busy.body = store.body
    with pytest.raises(Conflict):
        push(busy, lambda _: PACKAGE, attempts=3)


async def test_the_next_refresh_is_due_an_interval_after_the_last_check_sooner_after_a_failure(
    server: EolApiServer,
) -> None:
    store, clock = MemoryStore(), Clock()
    refresh = refresher(server, store, clock)
    assert refresh._wait() == 0.0  # no object: at once
    await refresh.refresh()
    clock.now = DAY + timedelta(hours=1)
    assert refresh._wait() == pytest.approx(23 * 3600)  # counted from the check stored: a restart waits too
    server.script["python"] = [Reply(500, b"oops")]
    assert await refresh.refresh() == "failed"
    assert refresh._wait() == pytest.approx(refresh.settings.retry)
