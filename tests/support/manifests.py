"""Workload manifests the end-to-end tests create."""

from __future__ import annotations

from typing import Any


def deployment(
    ns: str, name: str, image: str, *, container: str = "app", replicas: int = 1
) -> dict[str, Any]:
    """A Deployment of one container running `image`, its pods labelled `app=<name>`."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": container, "image": image}]},
            },
        },
    }
