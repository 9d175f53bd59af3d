"""Workload manifests the end-to-end tests create."""

from __future__ import annotations

from collections.abc import Sequence
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


def run_once(
    ns: str, name: str, image: str, command: Sequence[str], *, container: str = "main"
) -> dict[str, Any]:
    """A Pod that runs `command` in `image` once (restartPolicy Never): it ends Succeeded or Failed."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": container, "image": image, "command": list(command)}],
        },
    }
