"""Match an image's OS (os-release) or runtime to a release cycle of an endoflife.date product.
Pure.

A version belongs to the cycle whose numbers are its longest prefix: Alpine `3.19.1` -> `3.19`,
Debian `12.5` -> `12`, Ubuntu `22.04` -> `22.04`, RHEL `9.4` -> `9`, Python `3.12.1` -> `3.12`,
Node.js `20.11.0` -> `20`. Anything that does not match is *unknown*, never supported.
"""

from __future__ import annotations

from collections.abc import Callable

from distroguard.eol.products import (
    JAVA_PRODUCTS,
    LTS_POLICIES,
    NOT_COVERED,
    OS_PRODUCTS,
    ROLLING,
    RUNTIME_PRODUCTS,
)
from distroguard.model.facts import OSRelease, Runtime
from distroguard.model.lifecycle import LifecycleMatch, ProductLifecycle, ReleaseCycle
from distroguard.model.version import is_prerelease, version_parts

ProductIndex = Callable[[str], ProductLifecycle | None]

_ROLLING_NOTE = (
    "{label} is a rolling distribution: it has no releases, so nothing reaches end of life by "
    "date; an image is as current as its last rebuild"
)


def find_cycle(product: ProductLifecycle, version: str) -> ReleaseCycle | None:
    """The cycle whose numbers are the longest prefix of `version`'s (`12` for `12` and `12.5`)."""
    parts = version_parts(version)
    if product.name in JAVA_PRODUCTS and len(parts) > 1 and parts[0] == 1:
        parts = parts[1:]  # Java 8 and older write 1.8.0_392
    best: ReleaseCycle | None = None
    best_len = 0
    for cycle in product.cycles:
        want = version_parts(cycle.cycle)
        if not want or len(want) <= best_len:
            continue
        # A version written shorter than the cycle (SLES `15` for cycle `15.0`) is padded with
        # zeros.
        have = parts + (0,) * (len(want) - len(parts))
        if have[: len(want)] == want:
            best, best_len = cycle, len(want)
    return best


def os_subject(os: OSRelease, label: str | None) -> str:
    """How messages name the OS: `Debian 12 (bookworm)`, `Distroless (Debian 12)`, `Alpine Linux
    3.19.1`."""
    if label is None:
        return os.pretty_name or " ".join(part for part in (os.id, os.version_id) if part)
    version = f" {os.version_id}" if os.version_id else ""
    if "distroless" in (os.pretty_name or "").lower():
        return f"Distroless ({label}{version})"
    codename = f" ({os.codename})" if os.codename else ""
    return f"{label}{version}{codename}"


def match_os(os: OSRelease, products: ProductIndex) -> LifecycleMatch:
    name = (os.pretty_name or "").lower()
    if os.id in ROLLING or (os.id == "opensuse" and _is_tumbleweed(os)):
        label = ROLLING.get(os.id, "openSUSE Tumbleweed")
        return LifecycleMatch(
            status="rolling",
            subject=os_subject(os, label),
            product_label=label,
            lts=None,
            lts_basis=f"{label} is rolling: it has no LTS notion",
            note=_ROLLING_NOTE.format(label=label),
        )
    product_name = OS_PRODUCTS.get(os.id)
    if os.id == "centos" and "stream" in name:
        product_name = "centos-stream"
    if product_name is None:
        covered = NOT_COVERED.get(os.id)
        note = (
            f"{covered} is not covered by endoflife.date" if covered else f"no lifecycle data for ID={os.id}"
        )
        return LifecycleMatch(status="unknown-product", subject=os_subject(os, covered), note=note)
    product = products(product_name)
    if product is None:
        return LifecycleMatch(
            status="unknown-product",
            subject=os_subject(os, None),
            product=product_name,
            note=f"the EOL catalog has no data for {product_name}",
        )
    return _match_version(product, os.version_id, os_subject(os, product.label), is_os=True)


def match_runtime(runtime: Runtime, products: ProductIndex) -> LifecycleMatch:
    subject = f"{runtime.name} {runtime.version}"
    product_name = RUNTIME_PRODUCTS.get(runtime.name.lower())
    if product_name is None:
        return LifecycleMatch(
            status="unknown-product",
            subject=subject,
            note=f"no lifecycle data for runtime {runtime.name}",
        )
    product = products(product_name)
    if product is None:
        return LifecycleMatch(
            status="unknown-product",
            subject=subject,
            product=product_name,
            note=f"the EOL catalog has no data for {product_name}",
        )
    return _match_version(product, runtime.version, f"{product.label} {runtime.version}", is_os=False)


def _match_version(
    product: ProductLifecycle, version: str | None, subject: str, *, is_os: bool
) -> LifecycleMatch:
    base = {"subject": subject, "product": product.name, "product_label": product.label}
    if not version:
        return LifecycleMatch(
            status="unknown-cycle",
            note=f"no version: {product.label} testing/development has no support lifecycle",
            **base,
        )
    if is_prerelease(version):
        return LifecycleMatch(
            status="unknown-cycle",
            note=f"{version} is a development snapshot of {product.label}: no support lifecycle",
            **base,
        )
    cycle = find_cycle(product, version)
    if cycle is None:
        return LifecycleMatch(
            status="unknown-cycle",
            note=f"{product.label} {version} is not in the EOL data: a release newer than the data, or none",
            **base,
        )
    lts, basis = _lts(product, cycle) if is_os else (None, "")
    return LifecycleMatch(status="matched", cycle=cycle, lts=lts, lts_basis=basis, **base)


def _lts(product: ProductLifecycle, cycle: ReleaseCycle) -> tuple[bool | None, str]:
    policy = LTS_POLICIES.get(product.name)
    if policy is None:
        return None, f"distroguard does not know how {product.label} releases count for requireLTS"
    if policy.notion == "flag":
        # An LTS date (LTS from a later day) still marks an LTS release.
        return cycle.lts is not False, policy.basis
    return policy.notion == "long", policy.basis


def _is_tumbleweed(os: OSRelease) -> bool:
    parts = version_parts(os.version_id or "")
    # Old Tumbleweed snapshots used ID=opensuse with a date as version (20160917); Leap used 42.x.
    return "tumbleweed" in (os.pretty_name or "").lower() or (bool(parts) and parts[0] > 1000)
