"""The DistroPolicy CRD: generated from the models and structural. What the API server accepts with it
(the policies we ship) and refuses is checked against the real kube-apiserver in
tests/e2e/test_crd_server_side.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from codegen import crds

REPO = Path(__file__).resolve().parent.parent.parent
CRD_FILE = REPO / "charts" / "distroguard" / "crds" / crds.FILE_NAME

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
