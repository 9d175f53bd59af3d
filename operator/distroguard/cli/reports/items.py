"""`Checked` items from what `check` and `audit` judged."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from distroguard.cli.reports import Checked, Location
from distroguard.model import Decision, ImageFacts
from distroguard.model.policy import DistroPolicy
from distroguard.policy import ContainerImage, EvaluationContext
from distroguard.policy.selection import applies

if TYPE_CHECKING:  # only `audit` passes one, and has it imported
    from distroguard.audit.results import AuditResult


def checked_images(
    resolved: Sequence[tuple[str, ImageFacts | BaseException]],
    decisions: Sequence[tuple[str, ImageFacts, Decision]],
    policies: Sequence[DistroPolicy],
    now: datetime,
    locations: Mapping[str, Location],
) -> list[Checked]:
    """`check`'s images: each judged one on its platform, then each that could not be resolved.
    `locations`: where the Dockerfile names an image."""
    context = EvaluationContext(now=now)
    items = []
    for image, facts, decision in decisions:
        subject = ContainerImage(image, image, facts)
        items.append(
            Checked(
                group=image,
                subject=f"{image} ({facts.platform})",
                image=image,
                verdict=decision.verdict,
                findings=decision.findings,
                covered=frozenset(p.name for p in policies if applies(p.spec, context, subject)),
                location=locations.get(image),
            )
        )
    for image, outcome in resolved:
        if not isinstance(outcome, ImageFacts):
            items.append(
                Checked(
                    group=image,
                    subject=image,
                    image=image,
                    verdict=None,
                    location=locations.get(image),
                    error=str(outcome) or type(outcome).__name__,
                )
            )
    return items


def audited_containers(result: AuditResult) -> list[Checked]:
    """`audit`'s workloads: each container's image, with the findings about that container."""
    items = []
    for workload in result.workloads:
        group = str(workload.ref)
        for container in workload.containers:
            name = container.container
            summary = container.image
            findings = tuple(f for f in workload.decision.findings if f.container == name)
            items.append(
                Checked(
                    group=group,
                    subject=f"container {name} ({summary.image})",
                    image=summary.image,
                    verdict=container.verdict,
                    findings=findings,
                    covered=frozenset(policy for policy, which in workload.covered if which == name),
                )
            )
    return items
