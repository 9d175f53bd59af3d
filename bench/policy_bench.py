"""Policy evaluation cost per container: a 5-rule policy side by side with the same run without policy.

    python bench/policy_bench.py [--containers 1,10] [--rounds R] [--calls C]

The policy is policies/python-base-images.yaml (denyLibc, minGlibc, support, requireLTS, runtimes); the
EOL catalog is the bundled snapshot, warm (as in a running webhook). Each case evaluates one workload of
N containers, C calls per round (a tenth of that for the violating image), for each N given. The baseline
is the same evaluation with no policy: what `evaluate` costs before any rule runs. Rounds are interleaved
(every case once, then every case again...) so that a noisy neighbour slows all cases alike, and the best
round of each case is reported, in microseconds per container. Pinned to one CPU where the OS allows.
Not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import timeit
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from distroguard.eol import EolCatalog, bundled_snapshot
from distroguard.model import DistroPolicy, ImageFacts, Libc, OSRelease, Runtime
from distroguard.policy import ContainerImage, EvaluationContext, evaluate
from distroguard.policyfiles import load_policies

POLICY = Path(__file__).resolve().parent.parent / "policies" / "python-base-images.yaml"
CONTEXT = EvaluationContext(now=datetime(2026, 8, 22, 12, tzinfo=UTC), namespace="shop", kind="Deployment")

COMPLIANT = ImageFacts(
    reference="python:3.13-slim-trixie",
    os=OSRelease(id="debian", version_id="13", codename="trixie"),
    libc=Libc(family="glibc", version="2.41"),
    runtimes=(Runtime(name="python", version="3.13.5"),),
    image_size=45_000_000,
)
VIOLATING = ImageFacts(
    reference="python:3.7-alpine",
    os=OSRelease(id="alpine", version_id="3.9.6"),
    libc=Libc(family="musl", version="1.1.20"),
    runtimes=(Runtime(name="python", version="3.7.17"),),
    image_size=30_000_000,
)


@dataclass
class Case:
    label: str
    containers: int
    run: Callable[[], object]
    calls: int
    best: float = float("inf")
    """Best round so far, in seconds per call."""

    def measure(self) -> None:
        """One round; timeit keeps the garbage collector out of the measurement."""
        self.best = min(self.best, timeit.Timer(self.run).timeit(number=self.calls) / self.calls)

    @property
    def per_container_us(self) -> float:
        return self.best / self.containers * 1e6


def cases_for(
    n: int, policy: DistroPolicy, catalog: EolCatalog, calls: int
) -> list[tuple[str, Sequence[ContainerImage], list[DistroPolicy], int]]:
    """The four cases of a workload of `n` containers: label, containers, policies, calls per round."""

    def workload(facts: ImageFacts) -> list[ContainerImage]:
        return [ContainerImage(f"c{i}", facts.reference, facts) for i in range(n)]

    compliant, violating = workload(COMPLIANT), workload(VIOLATING)
    findings = len(evaluate(violating[:1], [policy], CONTEXT, catalog).findings)
    rules = len(policy.spec.rules)
    return [
        ("baseline: compliant image, no policy", compliant, [], calls),
        (f"{rules}-rule policy, compliant image", compliant, [policy], calls),
        ("baseline: violating image, no policy", violating, [], calls),
        (f"{rules}-rule policy, violating image ({findings} findings)", violating, [policy], calls // 10),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--containers", default="1,10", help="containers per workload, comma-separated (default 1,10)"
    )
    parser.add_argument("--rounds", type=int, default=7, help="rounds per case (best is kept)")
    parser.add_argument("--calls", type=int, default=5000, help="evaluate() calls per round")
    args = parser.parse_args()
    counts = [int(n) for n in args.containers.split(",")]

    pinned = "not pinned"
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        pinned = f"pinned to CPU {cpu}"
    (policy,) = load_policies([POLICY])
    catalog = EolCatalog(bundled_snapshot())
    kinds = ", ".join(rule.kind for rule in policy.spec.rules)

    table: dict[str, dict[int, Case]] = {}
    for n in counts:
        for label, containers, policies, calls in cases_for(n, policy, catalog, args.calls):
            run = _bind(containers, policies, catalog)
            table.setdefault(label, {})[n] = Case(label, n, run, max(calls, 50))
    every = [case for row in table.values() for case in row.values()]
    for case in every:
        case.run()  # warm: the policy's plan, the catalog's memo
    for _ in range(args.rounds):
        for case in every:
            case.measure()

    print(f"policy evaluation, Python {platform.python_version()} on {platform.machine()}, {pinned}")
    print(f"policy {policy.name}: {kinds}; catalog: bundled snapshot {catalog.snapshot}")
    print(f"best of {args.rounds} interleaved rounds, µs per container")
    heads = "".join(f"{f'{n} container' + ('s' if n != 1 else ''):>16}" for n in counts)
    print(f"{'case':<52}{heads}")
    for label, row in table.items():
        print(f"{label:<52}" + "".join(f"{row[n].per_container_us:>16.2f}" for n in counts))
    base, full, *_ = table.values()
    for n in counts:
        total, over = full[n].per_container_us, full[n].per_container_us - base[n].per_container_us
        verdict = "met" if total <= 10 else "NOT met"
        print(
            f"{n} container{'s' if n != 1 else ''}: the 5 rules on a compliant image cost {over:.2f} µs per "
            f"container over the baseline; total {total:.2f} µs (target <= 10 µs: {verdict})"
        )


def _bind(
    containers: Sequence[ContainerImage], policies: Sequence[DistroPolicy], catalog: EolCatalog
) -> Callable[[], object]:
    return lambda: evaluate(containers, policies, CONTEXT, catalog)


if __name__ == "__main__":
    main()
