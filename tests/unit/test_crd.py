"""The DistroPolicy CRD: generated from the models, structural, and accepting the policies we ship."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from codegen import crds

REPO = Path(__file__).resolve().parent.parent.parent
CRD_FILE = REPO / "charts" / "distroguard" / "crds" / crds.FILE_NAME
POLICIES = sorted((REPO / "policies").glob("*.yaml"))

# JSONSchemaProps fields of apiextensions.k8s.io/v1 that our generator may emit.
ALLOWED_KEYS = {
    "type", "description", "properties", "required", "items", "additionalProperties", "enum",
    "default", "pattern", "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems",
    "nullable", "format", "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields",
}  # fmt: skip
UNTYPED = ("x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields")


def spec_schema() -> dict[str, Any]:
    document = yaml.safe_load(CRD_FILE.read_text())
    schema: dict[str, Any] = document["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_the_committed_crd_is_what_the_models_generate() -> None:
    assert CRD_FILE.read_text() == crds.render(), "run: python -m codegen.crds"


def test_check_mode(tmp_path: Path) -> None:
    assert crds.main(["--check", str(CRD_FILE.parent)]) == 0
    assert crds.main(["--check", str(tmp_path)]) == 1
    assert crds.main([str(tmp_path)]) == 0
    assert crds.main(["--check", str(tmp_path)]) == 0


def test_crd_identity() -> None:
    document = yaml.safe_load(CRD_FILE.read_text())
    assert document["metadata"]["name"] == "distropolicies.distroguard.dev"
    assert document["spec"]["scope"] == "Cluster"
    assert document["spec"]["names"]["kind"] == "DistroPolicy"
    assert [v["name"] for v in document["spec"]["versions"]] == ["v1alpha1"]
    assert "&id" not in CRD_FILE.read_text()


def _walk(node: dict[str, Any], path: str) -> list[str]:
    problems = [f"{path}: key {key}" for key in node if key not in ALLOWED_KEYS]
    if "type" not in node and not any(node.get(marker) for marker in UNTYPED):
        problems.append(f"{path}: no type")
    if node.get("additionalProperties") is False:
        problems.append(f"{path}: additionalProperties false")
    if "properties" in node and node.get("type") != "object":
        problems.append(f"{path}: properties on a non-object")
    for name, sub in node.get("properties", {}).items():
        problems += _walk(sub, f"{path}.{name}")
    if isinstance(node.get("additionalProperties"), dict):
        problems += _walk(node["additionalProperties"], f"{path}[*]")
    if "items" in node:
        problems += _walk(node["items"], f"{path}[]")
    return problems


def test_the_schema_is_structural() -> None:
    schema = spec_schema()
    assert schema["properties"]["metadata"] == {"type": "object"}
    assert _walk(schema, "") == []
    text = CRD_FILE.read_text()
    for forbidden in ("$ref", "anyOf", "oneOf", "allOf", "const:", "title:", "prefixItems"):
        assert forbidden not in text


def _validate(node: dict[str, Any], value: Any, path: str) -> list[str]:
    """The checks the API server makes with this (structural) schema, enough for our policies."""
    if value is None:
        return [] if node.get("nullable") else [f"{path}: null"]
    if node.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if node.get("x-kubernetes-int-or-string"):
        return [] if isinstance(value, int | str) else [f"{path}: not int or string"]
    kind = node["type"]
    python: Any = {"object": dict, "array": list, "string": str, "integer": int, "boolean": bool}[kind]
    if not isinstance(value, python) or (kind == "integer" and isinstance(value, bool)):
        return [f"{path}: not {kind}"]
    problems = []
    if "enum" in node and value not in node["enum"]:
        problems.append(f"{path}: {value!r} not in {node['enum']}")
    if "pattern" in node and not re.search(node["pattern"], value):
        problems.append(f"{path}: {value!r} does not match {node['pattern']}")
    if kind == "object":
        for name in node.get("required", []):
            if name not in value:
                problems.append(f"{path}.{name}: required")
        for name, sub in value.items():
            if not path and name == "metadata":
                continue  # ObjectMeta: the API server validates it itself
            schema = node.get("properties", {}).get(name, node.get("additionalProperties"))
            if schema is None:
                problems.append(f"{path}.{name}: unknown field")
            else:
                problems += _validate(schema, sub, f"{path}.{name}")
    if kind == "array":
        if len(value) < node.get("minItems", 0):
            problems.append(f"{path}: too few items")
        for n, item in enumerate(value):
            problems += _validate(node["items"], item, f"{path}[{n}]")
    return problems


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.name)
def test_shipped_policies_are_valid_kubernetes_objects(path: Path) -> None:
    for document in yaml.safe_load_all(path.read_text()):
        assert _validate(spec_schema(), document, "") == []


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"action": "block", "rules": [{"name": "r", "denyLibc": ["musl"]}]}, "not in"),
        ({"rules": []}, "too few items"),
        ({"rules": [{"name": "Bad_Name", "denyLibc": ["musl"]}]}, "does not match"),
        ({"rules": [{"name": "r", "denyLibc": ["uclibc"]}]}, "not in"),
        ({"rules": [{"name": "r", "maxImageSize": 1.5}]}, "not int or string"),
        ({"rules": [{"name": "r", "support": {"warnDaysBefore": "soon"}}]}, "not integer"),
    ],
)
def test_the_api_server_would_reject(spec: dict[str, Any], problem: str) -> None:
    document = {
        "apiVersion": "distroguard.dev/v1alpha1",
        "kind": "DistroPolicy",
        "metadata": {},
        "spec": spec,
    }
    problems = _validate(spec_schema(), document, "")
    assert any(problem in p for p in problems), problems


def test_both_forms_of_a_distribution_are_accepted() -> None:
    spec = {"rules": [{"name": "r", "denyDistros": ["alpine", {"id": "ubuntu", "versions": ["23.10"]}]}]}
    document = {
        "apiVersion": "distroguard.dev/v1alpha1",
        "kind": "DistroPolicy",
        "metadata": {},
        "spec": spec,
    }
    assert _validate(spec_schema(), document, "") == []
