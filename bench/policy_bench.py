"""Policy evaluation cost per container: a 5-rule policy side by side with the same run without policy.

    python bench/policy_bench.py [--containers N] [--rounds R]

The policy is policies/python-base-images.yaml (denyLibc, minGlibc, support, requireLTS, runtimes); the
EOL catalog is the bundled snapshot, warm (as in a running webhook). Each case evaluates one workload of
N containers R times and reports the best round, in microseconds per container. The baseline is the same
evaluation with no policy: what `evaluate` costs before any rule runs. Pinned to one CPU where the OS allows.
Not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import timeit
from collections.abc import Sequence
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


def per_container_us(
    containers: Sequence[ContainerImage],
    policies: Sequence[DistroPolicy],
    catalog: EolCatalog,
    rounds: int,
    calls: int,
) -> float:
    """Best round, in µs per container. timeit keeps the garbage collector out of the measurement."""
    timer = timeit.Timer(lambda: evaluate(containers, policies, CONTEXT, catalog))
    best = min(timer.repeat(repeat=rounds, number=calls))
    return best / calls / len(containers) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=10, help="containers per workload")
    parser.add_argument("--rounds", type=int, default=7, help="rounds per case (best is kept)")
    parser.add_argument("--calls", type=int, default=5000, help="evaluate() calls per round")
    args = parser.parse_args()

    pinned = "not pinned"
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        pinned = f"pinned to CPU {cpu}"
    (policy,) = load_policies([POLICY])
    catalog = EolCatalog(bundled_snapshot())
    kinds = ", ".join(rule.kind for rule in policy.spec.rules)
    n = args.containers

    def workload(facts: ImageFacts) -> list[ContainerImage]:
        return [ContainerImage(f"c{i}", facts.reference, facts) for i in range(n)]

    compliant, violating = workload(COMPLIANT), workload(VIOLATING)
    findings = len(evaluate(violating[:1], [policy], CONTEXT, catalog).findings)
    calls = args.calls
    cases = [
        ("baseline: same containers, no policy", compliant, [], calls),
        (f"{len(policy.spec.rules)}-rule policy, compliant image", compliant, [policy], calls),
        ("baseline: violating image, no policy", violating, [], calls),
        (
            f"{len(policy.spec.rules)}-rule policy, violating image ({findings} findings)",
            violating,
            [policy],
            calls // 10,
        ),
    ]
    print(f"policy evaluation, Python {platform.python_version()} on {platform.machine()}, {pinned}")
    print(f"policy {policy.name}: {kinds}; catalog: bundled snapshot {catalog.snapshot}")
    print(f"{n} containers per workload, best of {args.rounds} rounds")
    print(f"{'case':<58}{'µs / container':>16}")
    results = []
    for label, containers, policies, count in cases:
        value = per_container_us(containers, policies, catalog, args.rounds, max(count, 50))
        results.append(value)
        print(f"{label:<58}{value:>16.2f}")
    print(
        f"the 5 rules on a compliant image cost {results[1] - results[0]:.2f} µs per container over the "
        f"baseline; total {results[1]:.2f} µs (target <= 10 µs)"
    )


if __name__ == "__main__":
    main()
