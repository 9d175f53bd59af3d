"""How much of an image the policies in force need read: fast mode stops at the layers that decide the OS
and the C library; a policy that judges runtimes needs the layers above too, where `apt-get install
python3` or a copied Go binary lands, unless the image's config announces its runtime."""

from __future__ import annotations

from collections.abc import Iterable

from distroguard.model import DistroPolicy, ScanMode


def judges_runtimes(policy: DistroPolicy) -> bool:
    """Whether the policy has a runtimes rule, or covers (or leaves out) images by their runtimes."""
    spec = policy.spec
    return bool(spec.match.runtimes or spec.exclude.runtimes) or any(
        r.runtimes is not None for r in spec.rules
    )


def scan_mode(policies: Iterable[DistroPolicy], mode: ScanMode = "fast") -> ScanMode:
    """`runtimes` for fast mode when some policy judges runtimes; any other mode as given."""
    if mode == "fast" and any(judges_runtimes(policy) for policy in policies):
        return "runtimes"
    return mode
