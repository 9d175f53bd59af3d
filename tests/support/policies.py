"""Build DistroPolicy objects in tests the way users write them: camelCase dictionaries."""

from __future__ import annotations

from typing import Any

from distroguard.model import DistroPolicy
from distroguard.model.validation import parse_policy


def document(name: str, *rules: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "distroguard.dev/v1alpha1",
        "kind": "DistroPolicy",
        "metadata": {"name": name},
        "spec": {**spec, "rules": list(rules)},
    }


def policy(name: str, *rules: dict[str, Any], **spec: Any) -> DistroPolicy:
    return parse_policy(document(name, *rules, **spec), f"test policy {name}")
