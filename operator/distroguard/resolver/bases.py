"""The image an image is built on, named with evidence.

Two ways, strongest first:

- **The annotation.** `org.opencontainers.image.base.name` (and `.base.digest`), which buildah, podman, ko
  and the Docker Official Images set on the manifest (or as a config label). It is a claim: the named base is
  read (its manifest and config, for the same platform) and its layers' diff_ids must be the first of the
  image's own. Verified, it is evidence; a base that cannot be read leaves it unverified (said so); a base
  whose layers are not the image's first ones makes it false.
- **Known bases.** Every image resolved teaches which diff_id chain is which reference (`KnownBases`, bounded;
  seeded from the cluster's ImageFacts): an image whose layers start with a known image's whole chain is
  built on it, the longest such chain winning.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from distroguard.model.facts import BaseImage

BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"
KNOWN_LIMIT = 20_000
"""Chains remembered at most (the oldest forgotten first): one per image resolved."""


def chain_key(diff_ids: Sequence[str]) -> str:
    """One string for a chain of layers: equal chains, equal keys."""
    return hashlib.sha256("\n".join(diff_ids).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Claim:
    name: str
    digest: str | None


def claimed_base(annotations: Mapping[str, str], labels: Mapping[str, str]) -> Claim | None:
    """The base the image names for itself: the manifest's annotation, else the config's label."""
    for source in (annotations, labels):
        name = source.get(BASE_NAME, "").strip()
        if name and len(name) <= 512:
            digest = source.get(BASE_DIGEST, "").strip() or None
            return Claim(name, digest if digest and len(digest) <= 200 else None)
    return None


def judge_claim(
    claim: Claim, base_diff_ids: Sequence[str], diff_ids: Sequence[str], digest: str
) -> BaseImage:
    """The claim, against what the named base's layers really are."""
    depth = len(base_diff_ids)
    if 0 < depth <= len(diff_ids) and tuple(diff_ids[:depth]) == tuple(base_diff_ids):
        detail = f"annotation {BASE_NAME}={claim.name}: its {depth} layers are this image's first {depth}"
        return BaseImage(reference=claim.name, digest=digest, how="annotation", verified=True, detail=detail)
    detail = (
        f"annotation {BASE_NAME}={claim.name} is false: its {depth} layers are not this image's first ones"
    )
    return BaseImage(reference=claim.name, digest=digest, how="annotation", verified=False, detail=detail)


def unverified(claim: Claim, why: str) -> BaseImage:
    detail = f"annotation {BASE_NAME}={claim.name}, not verified: {why}"
    return BaseImage(
        reference=claim.name, digest=claim.digest, how="annotation", verified=None, detail=detail
    )


class KnownBases:
    """Which chain of layers is which image, learnt from every image resolved (bounded, oldest out)."""

    def __init__(self, limit: int = KNOWN_LIMIT) -> None:
        self._limit = limit
        self._chains: OrderedDict[str, tuple[str, str | None]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._chains)

    def learn(self, diff_ids: Sequence[str], reference: str, digest: str | None) -> None:
        if not diff_ids:
            return
        self.learn_key(chain_key(diff_ids), reference, digest)

    def learn_key(self, key: str, reference: str, digest: str | None) -> None:
        if key not in self._chains and len(self._chains) >= self._limit:
            self._chains.popitem(last=False)
        self._chains[key] = (reference, digest)
        self._chains.move_to_end(key)

    def entries(self) -> list[tuple[str, str, str | None]]:
        """(chain key, reference, digest) of every chain known, oldest first: what a cache file keeps."""
        return [(key, reference, digest) for key, (reference, digest) in self._chains.items()]

    def base_of(self, diff_ids: Sequence[str]) -> BaseImage | None:
        """The longest known chain that is a proper prefix of `diff_ids` (an image is not its own base)."""
        for depth in range(len(diff_ids) - 1, 0, -1):
            found = self._chains.get(chain_key(diff_ids[:depth]))
            if found is not None:
                reference, digest = found
                detail = f"its first {depth} of {len(diff_ids)} layers are those of {reference}, seen before"
                return BaseImage(reference=reference, digest=digest, how="known-base", detail=detail)
        return None
