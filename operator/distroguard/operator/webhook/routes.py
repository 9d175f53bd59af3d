"""What distroguard validates: one row per webhook path, derived from the model's table of workload kinds
(`distroguard.model.workloads.KINDS`), and shared by the server's gate and the development webhook
configuration, so that they cannot disagree with admission.

A row's `id` is the last segment of the webhook URL (lower-case: it is a path): the kind's plural for its
objects, the subresource's name for a subresource (`ephemeralcontainers`).
"""

from __future__ import annotations

from dataclasses import dataclass

from distroguard.model.workloads import KINDS, AdmissionRule, WorkloadKind


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    """URL path segment (and handler id)."""
    group: str
    """API group ("" is the core group)."""
    version: str
    plural: str
    subresource: str | None = None
    operations: tuple[str, ...] = ("CREATE", "UPDATE")
    """What the API server is asked to send; admission checks the operation again."""

    @property
    def rule_resource(self) -> str:
        """The resource as a webhook rule names it: `pods` or `pods/ephemeralcontainers`."""
        return f"{self.plural}/{self.subresource}" if self.subresource else self.plural

    def accepts(self, group: str, plural: str, subresource: str | None) -> bool:
        """Whether a request for this resource belongs on this path."""
        return (group, plural, subresource) == (self.group, self.plural, self.subresource)


def _webhook(kind: WorkloadKind, rule: AdmissionRule) -> Webhook:
    return Webhook(
        id=rule.subresource or kind.plural,
        group=kind.group,
        version=kind.version,
        plural=kind.plural,
        subresource=rule.subresource,
        operations=rule.operations,
    )


WEBHOOKS: tuple[Webhook, ...] = tuple(_webhook(kind, rule) for kind in KINDS for rule in kind.admission)
BY_ID: dict[str, Webhook] = {webhook.id: webhook for webhook in WEBHOOKS}
