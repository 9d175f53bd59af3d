"""One image judged on several platforms: which platforms, one subject per platform whose facts differ, and
the decision folded back to one verdict per container. Admission and the audit share it.

A container is judged on every platform that matters that its image offers (a single-platform image on its
one platform). When the platforms' facts agree, it is judged once and its messages name no platform; when
they differ, once per platform, each message naming its platform, and the worst verdict wins. An image that
offers none of the platforms is a finding of its own (`ContainerImage.no_platform`, decided by each
policy's `onNoPlatform`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

from distroguard.model import ContainerVerdict, Decision, Finding, Platform
from distroguard.model.decision import strictest
from distroguard.model.facts import ImagePlatforms
from distroguard.policy.context import ContainerImage


def platforms_for(
    architectures: tuple[str, ...], cluster: tuple[Platform, ...]
) -> tuple[tuple[Platform, ...], str]:
    """The platforms a pod's images are judged on, and how a message names them: the cluster's, or those
    of the architectures the pod is pinned to (`Workload.architectures`)."""
    if not architectures:
        return cluster, cluster_text(cluster)
    pinned = tuple(p for p in cluster if p.architecture in architectures)
    if not pinned:  # pinned to an architecture no node has (yet): that architecture, as Linux
        pinned = tuple(Platform(os="linux", architecture=a) for a in architectures)
    return pinned, _pinned_text(architectures)


@functools.lru_cache(maxsize=64)
def cluster_text(platforms: tuple[Platform, ...]) -> str:
    return f"the cluster's nodes are {', '.join(str(p) for p in platforms)}"


@functools.lru_cache(maxsize=64)
def nodes_text(platforms: tuple[Platform, ...]) -> str:
    return f"its pods' nodes are {', '.join(str(p) for p in platforms)}"


def _pinned_text(architectures: tuple[str, ...]) -> str:
    return f"the pod is pinned to kubernetes.io/arch {', '.join(architectures)}"


@functools.lru_cache(maxsize=256)
def _runs_on(platform: str, platforms: tuple[Platform, ...]) -> bool:
    """Whether an image of `platform` runs on one of `platforms`."""
    try:
        found = Platform.parse(platform)
    except ValueError:
        return False
    return any(p.matches(found) for p in platforms)


def judged(
    container: str, image: str, found: ImagePlatforms, platforms: tuple[Platform, ...], where: str
) -> list[ContainerImage]:
    """The container once per platform it is judged on: once when the platforms' facts agree (the one
    with the largest image stands for them, so a size rule sees the worst), once per platform, each named,
    when they differ; and the image offering none of `platforms` as a finding of its own."""
    facts = found.facts
    missing = ""
    if not facts or (found.single and not _runs_on(facts[0].platform, platforms)):
        offered = ", ".join(found.offered) or "no runnable platform"
        missing = f"image offers only {offered}; {where}"
        if not facts:
            return [ContainerImage(container, image, None, no_platform=missing)]
    if len(facts) == 1:
        return [ContainerImage(container, image, facts[0], no_platform=missing)]
    variants = found.distinct()
    if len(variants) == 1:
        return [ContainerImage(container, image, variants[0])]
    return [ContainerImage(container, image, item, platform=item.platform) for item in variants]


def merge_platforms(
    decision: Decision, containers: Sequence[ContainerImage], owners: Sequence[int]
) -> Decision:
    """One verdict per container (the worst of its platforms'; `owners[i]`: the index of the container
    `containers[i]` stands for), and for a container whose platforms gave the same findings, those findings
    once, without the platform in their messages."""
    verdicts: dict[int, ContainerVerdict] = {}
    for owner, verdict in zip(owners, decision.containers, strict=True):
        kept = verdicts.get(owner)
        if kept is None:
            verdicts[owner] = verdict
        else:
            worst = strictest([kept.verdict, verdict.verdict])
            verdicts[owner] = ContainerVerdict(kept.container, kept.image, worst, kept.digest)
    named: dict[str, list[str]] = {}
    for c in containers:
        if c.platform is not None:
            named.setdefault(c.container, []).append(c.platform)
    findings: list[Finding] = []
    done: set[str] = set()
    for finding in decision.findings:
        platforms = named.get(finding.container)
        if platforms is None:
            findings.append(finding)
            continue
        if finding.container in done:
            continue
        done.add(finding.container)
        own = [f for f in decision.findings if f.container == finding.container]
        answers = {
            p: sorted(_unnamed(f, p)[1:] for f in own if f.platform == p or f.platform is None)
            for p in platforms
        }
        if len({tuple(a) for a in answers.values()}) == 1:  # every platform said the same
            first = platforms[0]
            findings.extend(_unnamed(f, first)[0] for f in own if f.platform == first or f.platform is None)
        else:
            findings.extend(own)
    return Decision(decision.verdict, tuple(verdicts[i] for i in sorted(verdicts)), tuple(findings))


def _unnamed(finding: Finding, platform: str) -> tuple[Finding, str, str, str, str]:
    """The finding with its platform taken out of its message, and what compares it across platforms."""
    message = finding.message.replace(f"{platform}: ", "", 1)
    return (
        dataclasses.replace(finding, message=message),
        finding.policy,
        finding.rule,
        finding.action,
        message,
    )
