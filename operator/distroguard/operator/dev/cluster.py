"""What `distroguard run --dev` sets up in a cluster with nothing installed: the CRDs, and a
ValidatingWebhookConfiguration pointing at this process by URL (removed again when it stops).

The webhook configuration is distroguard's own object rather than kopf's managed one, because kopf's
cannot carry a namespaceSelector nor our timeoutSeconds: kube-system, distroguard's own namespace and
namespaces labelled `distroguard.dev/ignore=true` are left out by the API server itself, as the chart
does. Blocking calls: run these in a worker thread.
"""

from __future__ import annotations

import base64
import logging
import time
from typing import Any

import kubernetes

from distroguard.admission.decide import ALWAYS_EXCLUDED, IGNORE_LABEL
from distroguard.model import crd
from distroguard.operator.webhook.routes import WEBHOOKS

logger = logging.getLogger(__name__)

CRD_READY_SECONDS = 60.0


def install_crds(api: Any) -> None:
    """Create distroguard's CRDs (and the PolicyReport ones) when missing; wait until they are served."""
    extensions = kubernetes.client.ApiextensionsV1Api(api)
    names = []
    for body in (
        crd.policy_crd(),
        crd.image_facts_crd(),
        crd.exception_crd(),
        crd.eol_catalog_crd(),
        *crd.policy_report_crds(),
    ):
        name = body["metadata"]["name"]
        names.append(name)
        try:
            extensions.create_custom_resource_definition(body)  # type: ignore[arg-type]  # dicts are sent as is
            logger.info("installed CRD %s", name)
        except kubernetes.client.ApiException as exc:
            if exc.status != 409:
                raise
    deadline = time.monotonic() + CRD_READY_SECONDS
    for name in names:
        while True:
            found = extensions.read_custom_resource_definition(name)
            conditions = (found.status.conditions if found.status else None) or []
            if any(c.type == "Established" and c.status == "True" for c in conditions):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {name} not established after {CRD_READY_SECONDS:g} s")
            time.sleep(0.2)


def webhook_configuration(
    name: str, url: str, ca_bundle: bytes, *, timeout: int, own_namespace: str | None
) -> dict[str, Any]:
    """The ValidatingWebhookConfiguration: one webhook per path of `webhooks.WEBHOOKS`."""
    skipped = sorted(ALWAYS_EXCLUDED | ({own_namespace} if own_namespace else set()))
    selector = {
        "matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": skipped},
            {"key": IGNORE_LABEL, "operator": "NotIn", "values": ["true"]},
        ]
    }
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "distroguard-dev"}},
        "webhooks": [
            {
                "name": f"{webhook.id}.{name}.distroguard.dev",
                "clientConfig": {
                    "url": f"{url.rstrip('/')}/{webhook.id}",
                    "caBundle": base64.b64encode(ca_bundle).decode("ascii"),
                },
                "rules": [
                    {
                        "apiGroups": [webhook.group],
                        "apiVersions": [webhook.version],
                        "resources": [webhook.rule_resource],
                        "operations": list(webhook.operations),
                        "scope": "Namespaced",
                    }
                ],
                "namespaceSelector": selector,
                "failurePolicy": "Fail",
                "matchPolicy": "Equivalent",
                "sideEffects": "None",
                "timeoutSeconds": timeout,
                "admissionReviewVersions": ["v1"],
            }
            for webhook in WEBHOOKS
        ],
    }


def register_webhooks(api: Any, body: dict[str, Any]) -> None:
    """Create the configuration, or replace it (a restart brings a new port and certificate)."""
    admission = kubernetes.client.AdmissionregistrationV1Api(api)
    name = body["metadata"]["name"]
    try:
        admission.create_validating_webhook_configuration(body)  # type: ignore[arg-type]
    except kubernetes.client.ApiException as exc:
        if exc.status != 409:
            raise
        current = admission.read_validating_webhook_configuration(name)
        version = current.metadata.resource_version if current.metadata else None
        body = {**body, "metadata": {**body["metadata"], "resourceVersion": version}}
        admission.replace_validating_webhook_configuration(name, body)  # type: ignore[arg-type]
    logger.info("registered ValidatingWebhookConfiguration %s", name)


def unregister_webhooks(api: Any, name: str) -> None:
    admission = kubernetes.client.AdmissionregistrationV1Api(api)
    try:
        admission.delete_validating_webhook_configuration(name)
    except kubernetes.client.ApiException as exc:
        if exc.status != 404:
            raise
    logger.info("removed ValidatingWebhookConfiguration %s", name)
