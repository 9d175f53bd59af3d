"""The kopf handlers, registered on a registry of their own (not kopf's global one, so that building an
operator twice in one process, as tests do, registers nothing twice):

- a login with the process's Kubernetes configuration;
- `@kopf.on.validate` per row of `webhooks.WEBHOOKS`, with its explicit id;
- `@kopf.on.event` on DistroPolicy objects, feeding the policy store.

No finalizers, annotations, timers, daemons or indexes: admission needs none, and pods are never touched.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from distroguard.admission import AdmissionAnswer
from distroguard.crds import GROUP, PLURAL, VERSION
from distroguard.operator.admitter import Admitter
from distroguard.operator.kubeclient import connection_info
from distroguard.operator.policystore import PolicyStore
from distroguard.operator.server import take_request
from distroguard.operator.webhooks import WEBHOOKS

logger = logging.getLogger(__name__)


def build_registry(admitter: Admitter, policies: PolicyStore, configuration: Any) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return connection_info(configuration)

    async def validate(warnings: list[str], **_: Any) -> None:
        answer = await _answer(admitter)
        warnings.extend(answer.warnings)
        if not answer.allowed:
            raise kopf.AdmissionError(answer.message, code=answer.code)

    for webhook in WEBHOOKS:
        kopf.on.validate(
            group=webhook.group,
            version=webhook.version,
            plural=webhook.plural,
            subresource=webhook.subresource,
            id=webhook.id,
            registry=registry,
        )(validate)

    @kopf.on.event(group=GROUP, version=VERSION, plural=PLURAL, registry=registry)
    async def policy_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        policies.observe(type, body)

    return registry


async def _answer(admitter: Admitter) -> AdmissionAnswer:
    """The admitter's answer to the request the server decoded (the admitter recovers from its bugs)."""
    try:
        request = take_request()
    except LookupError:
        logger.error("an admission handler ran without a decoded request (not behind AdmissionServer)")
        return AdmissionAnswer.error("the request did not come through distroguard's server")
    return await admitter(request)
