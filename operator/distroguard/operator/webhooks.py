"""What distroguard validates: one row per webhook path, shared by the kopf handlers, the server's gate
and the development webhook configuration, so that the three cannot disagree.

A row's `id` is the kopf handler id and the last segment of the webhook URL (lower-case: it is a path).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    """Handler id and URL path segment."""
    group: str
    """API group ("" is the core group)."""
    version: str
    plural: str
    subresource: str | None = None
    operations: tuple[str, ...] = ("CREATE", "UPDATE")
    """What the API server is asked to send; the handler checks the operation again."""

    @property
    def rule_resource(self) -> str:
        """The resource as a webhook rule names it: `pods` or `pods/ephemeralcontainers`."""
        return f"{self.plural}/{self.subresource}" if self.subresource else self.plural

    def accepts(self, group: str, plural: str, subresource: str | None) -> bool:
        """Whether a request for this resource belongs on this path."""
        return (group, plural, subresource) == (self.group, self.plural, self.subresource)


WEBHOOKS: tuple[Webhook, ...] = (
    Webhook("pods", "", "v1", "pods"),
    # `kubectl debug` adds ephemeral containers with an UPDATE of this subresource.
    Webhook("ephemeralcontainers", "", "v1", "pods", "ephemeralcontainers", ("UPDATE",)),
    Webhook("replicationcontrollers", "", "v1", "replicationcontrollers"),
    Webhook("deployments", "apps", "v1", "deployments"),
    Webhook("statefulsets", "apps", "v1", "statefulsets"),
    Webhook("daemonsets", "apps", "v1", "daemonsets"),
    Webhook("replicasets", "apps", "v1", "replicasets"),
    Webhook("jobs", "batch", "v1", "jobs"),
    Webhook("cronjobs", "batch", "v1", "cronjobs"),
)
BY_ID: dict[str, Webhook] = {webhook.id: webhook for webhook in WEBHOOKS}
