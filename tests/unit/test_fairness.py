"""Each namespace's share of cold lookups: a rate with a burst, and a bound on those under way."""

from __future__ import annotations

import asyncio

import pytest

from distroguard.errors import LookupLimited
from distroguard.resolver.fairness import ColdLookups, FairnessSettings


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_namespace_is_limited_to_its_burst_then_its_rate() -> None:
    clock = Clock()
    cold = ColdLookups(FairnessSettings(rate=2.0, burst=5), clock)
    attacker = cold.gate("attacker")
    for _ in range(5):
        attacker.take()
    with pytest.raises(LookupLimited, match="namespace attacker started more than 5 image lookups"):
        attacker.take()
    # Another namespace has its own share, untouched.
    for _ in range(5):
        cold.gate("shop").take()
    clock.now = 1.0  # two more tokens
    attacker.take()
    attacker.take()
    with pytest.raises(LookupLimited):
        attacker.take()
    clock.now = 100.0  # never more than the burst
    for _ in range(5):
        attacker.take()
    with pytest.raises(LookupLimited):
        attacker.take()


async def test_a_namespace_has_at_most_its_concurrency_under_way() -> None:
    gate = ColdLookups(FairnessSettings(concurrency=2)).gate("ns")
    running = 0
    peak = 0
    release = asyncio.Event()

    async def lookup() -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1
        return 1

    tasks = [asyncio.ensure_future(gate.run(lookup)) for _ in range(6)]
    await asyncio.sleep(0.01)
    assert running == 2
    release.set()
    assert sum(await asyncio.gather(*tasks)) == 6
    assert peak == 2


@pytest.mark.parametrize("settings", [{"concurrency": 0}, {"rate": 0}, {"burst": 0}])
def test_limits_must_be_positive(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="positive"):
        FairnessSettings(**settings)  # type: ignore[arg-type]
