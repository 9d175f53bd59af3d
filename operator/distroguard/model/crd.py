"""The CustomResourceDefinitions of distroguard's kinds and of the PolicyReport kinds, built from the
pydantic models (the one source of truth). Pure: `distroguard run --dev` installs them from here, and the
chart's generated files (`python -m codegen.crds`) are written from here.

A model's JSON schema becomes a Kubernetes *structural* OpenAPI v3 schema: `$ref`s inlined,
`anyOf [X, null]` -> X with `nullable: true`, `int | str` -> `x-kubernetes-int-or-string`, other unions (a
distribution given as a string or an object) -> `x-kubernetes-preserve-unknown-fields` (distroguard
validates those nodes itself when it reads a policy), `additionalProperties: false` dropped (the API server
prunes, and rejects unknown fields under strict field validation), titles dropped.
"""

from __future__ import annotations

from typing import Any

from distroguard.model import policyreport, record
from distroguard.model.api import (
    CATALOG_KIND,
    CATALOG_PLURAL,
    CATALOG_SHORT_NAME,
    EXCEPTION_KIND,
    EXCEPTION_PLURAL,
    FACTS_KIND,
    FACTS_PLURAL,
    GROUP,
    POLICY_KIND,
    POLICY_PLURAL,
    VERSION,
)
from distroguard.model.exception import DistroPolicyException, DistroPolicyExceptionSpec
from distroguard.model.lifecycle import CatalogSnapshot, CatalogStatus
from distroguard.model.policy import DistroPolicy, DistroPolicySpec

JsonSchema = dict[str, Any]
_DROPPED = frozenset({"title", "examples", "$defs"})


def structural(schema: JsonSchema) -> JsonSchema:
    """A pydantic JSON schema as a Kubernetes structural schema."""
    definitions: dict[str, JsonSchema] = schema.get("$defs", {})

    def convert(node: JsonSchema) -> JsonSchema:
        if "$ref" in node:
            target = definitions[node["$ref"].rsplit("/", 1)[-1]]
            return convert({**target, **{k: v for k, v in node.items() if k != "$ref"}})
        if "anyOf" in node:
            return _union(node, convert)
        out: JsonSchema = {}
        for key, value in node.items():
            if key in _DROPPED or (key == "default" and value is None):
                continue
            if key == "additionalProperties":
                if isinstance(value, dict):
                    out[key] = convert(value)
                continue  # `false` is not allowed in a CRD; unknown fields are pruned or rejected
            if key == "properties":
                out[key] = {name: convert(sub) for name, sub in value.items()}
            elif key == "items":
                out[key] = convert(value)
            elif key == "const":
                out["enum"] = [value]
            elif key == "description":
                out[key] = " ".join(value.split())  # docstrings' line breaks mean nothing in a CRD
            else:
                out[key] = value
        return out

    return convert(schema)


def _union(node: JsonSchema, convert: Any) -> JsonSchema:
    members = [m for m in node["anyOf"] if m != {"type": "null"}]
    nullable = len(members) < len(node["anyOf"])
    rest = {k: v for k, v in node.items() if k != "anyOf"}
    if len(members) == 1:
        out: JsonSchema = convert({**members[0], **rest})
    else:
        kept = convert(rest)
        types = {m.get("type") for m in members}
        marker = (
            "x-kubernetes-int-or-string"
            if types == {"integer", "string"}
            else "x-kubernetes-preserve-unknown-fields"
        )
        out = {**kept, marker: True}
    if nullable:
        out["nullable"] = True
    return out


def _definition(
    *,
    group: str,
    version: str,
    kind: str,
    plural: str,
    scope: str,
    description: str,
    properties: JsonSchema,
    required: list[str],
    columns: list[JsonSchema],
    short_names: list[str] | None = None,
    categories: list[str] | None = None,
    status_subresource: bool = False,
) -> JsonSchema:
    names: JsonSchema = {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower()}
    if short_names:
        names["shortNames"] = short_names
    if categories:
        names["categories"] = categories
    root: JsonSchema = {
        "type": "object",
        "description": " ".join(description.split()),
        **({"required": required} if required else {}),
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            **properties,
        },
    }
    served: JsonSchema = {
        "name": version,
        "served": True,
        "storage": True,
        "additionalPrinterColumns": columns,
        "schema": {"openAPIV3Schema": root},
    }
    if status_subresource:
        served["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {"group": group, "scope": scope, "names": names, "versions": [served]},
    }


def _age() -> JsonSchema:
    return {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def policy_crd() -> JsonSchema:
    """DistroPolicy."""
    return _definition(
        group=GROUP,
        version=VERSION,
        kind=POLICY_KIND,
        plural=POLICY_PLURAL,
        scope="Cluster",
        description=(DistroPolicy.__doc__ or "").strip(),
        properties={"spec": structural(DistroPolicySpec.model_json_schema(by_alias=True, mode="validation"))},
        required=["spec"],
        columns=[
            {"name": "Action", "type": "string", "jsonPath": ".spec.action"},
            {"name": "Unresolved", "type": "string", "jsonPath": ".spec.onUnresolved"},
            {"name": "Rules", "type": "string", "jsonPath": ".spec.rules[*].name"},
            _age(),
        ],
        categories=["distroguard"],
    )


def exception_crd() -> JsonSchema:
    """DistroPolicyException: namespaced, like Kyverno's PolicyException."""
    return _definition(
        group=GROUP,
        version=VERSION,
        kind=EXCEPTION_KIND,
        plural=EXCEPTION_PLURAL,
        scope="Namespaced",
        description=(DistroPolicyException.__doc__ or "").strip(),
        properties={
            "spec": structural(DistroPolicyExceptionSpec.model_json_schema(by_alias=True, mode="validation"))
        },
        required=["spec"],
        columns=[
            {"name": "Policies", "type": "string", "jsonPath": ".spec.policies[*].policyName"},
            {"name": "Expires", "type": "string", "jsonPath": ".spec.expires"},
            {"name": "Reason", "type": "string", "jsonPath": ".spec.reason"},
            {"name": "Ticket", "type": "string", "jsonPath": ".spec.ticket", "priority": 1},
            _age(),
        ],
        short_names=["dpolex"],
        categories=["distroguard"],
    )


def image_facts_crd() -> JsonSchema:
    """ImageFacts: the inventory, one object per image digest (facts per platform), read as a table by
    `kubectl get`."""
    return _definition(
        group=GROUP,
        version=VERSION,
        kind=FACTS_KIND,
        plural=FACTS_PLURAL,
        scope="Cluster",
        description=(record.__doc__ or "").split("\n\n")[0],
        properties={
            "spec": structural(record.FactsRecord.model_json_schema(by_alias=True, mode="validation"))
        },
        required=["spec"],
        columns=[
            {"name": "Image", "type": "string", "jsonPath": ".spec.image"},
            # A printer column shows the first value of a list: the OS... of the first platform judged
            # (by name), and every platform judged in Platforms.
            {"name": "OS", "type": "string", "jsonPath": ".spec.platforms[0].os.id"},
            {"name": "Version", "type": "string", "jsonPath": ".spec.platforms[0].os.versionId"},
            {"name": "Libc", "type": "string", "jsonPath": ".spec.platforms[0].libc.family"},
            {
                "name": "Libc-Version",
                "type": "string",
                "jsonPath": ".spec.platforms[0].libc.version",
                "priority": 1,
            },
            # The base (a long reference) with -o wide: the default columns stay those of the first release.
            {
                "name": "Base",
                "type": "string",
                "jsonPath": ".spec.platforms[0].base.reference",
                "priority": 1,
            },
            {"name": "EOL", "type": "string", "jsonPath": ".spec.platforms[0].eol.date"},
            {"name": "Support", "type": "string", "jsonPath": ".spec.platforms[0].eol.state"},
            {"name": "Platforms", "type": "string", "jsonPath": ".spec.judgedOn"},
            {"name": "Last-Seen", "type": "date", "jsonPath": ".spec.lastSeen"},
        ],
        categories=["distroguard"],
    )


def eol_catalog_crd() -> JsonSchema:
    """EOLCatalog: the cluster's EOL data (one object, `default`), in the bundled snapshot's format; its
    status is the refresher's bookkeeping, written through the status subresource."""
    return _definition(
        group=GROUP,
        version=VERSION,
        kind=CATALOG_KIND,
        plural=CATALOG_PLURAL,
        scope="Cluster",
        description=(
            "EOLCatalog: the cluster's end-of-life data (endoflife.date release cycles), read by every "
            "distroguard replica; one object, named default."
        ),
        properties={
            "spec": structural(CatalogSnapshot.model_json_schema(by_alias=True, mode="validation")),
            "status": structural(CatalogStatus.model_json_schema(by_alias=True, mode="validation")),
        },
        required=["spec"],
        columns=[
            {"name": "Data", "type": "string", "jsonPath": ".spec.snapshot"},
            # A date column is shown as an age; the API server reads it as an RFC 3339 time, which the
            # writers keep in status (the spec's day stays in the snapshot file format).
            {"name": "Data-Age", "type": "date", "jsonPath": ".status.snapshotTime"},
            {"name": "Source", "type": "string", "jsonPath": ".spec.source"},
            {"name": "Checked", "type": "date", "jsonPath": ".status.checked", "priority": 1},
            {"name": "Error", "type": "string", "jsonPath": ".status.lastError", "priority": 1},
            _age(),
        ],
        short_names=[CATALOG_SHORT_NAME],
        categories=["distroguard"],
        status_subresource=True,
    )


def policy_report_crds() -> list[JsonSchema]:
    """PolicyReport (namespaced) and ClusterPolicyReport, wgpolicyk8s.io/v1alpha2."""
    group, version = policyreport.API_VERSION.split("/")
    body = structural(policyreport.PolicyReportBody.model_json_schema(by_alias=True, mode="validation"))
    properties = dict(body["properties"])
    properties["scopeSelector"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    results = properties["results"]["items"]["properties"]
    results["resourceSelector"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    columns: list[JsonSchema] = [
        {"name": "Kind", "type": "string", "jsonPath": ".scope.kind", "priority": 1},
        {"name": "Name", "type": "string", "jsonPath": ".scope.name", "priority": 1},
        {"name": "Pass", "type": "integer", "jsonPath": ".summary.pass"},
        {"name": "Fail", "type": "integer", "jsonPath": ".summary.fail"},
        {"name": "Warn", "type": "integer", "jsonPath": ".summary.warn"},
        {"name": "Error", "type": "integer", "jsonPath": ".summary.error"},
        {"name": "Skip", "type": "integer", "jsonPath": ".summary.skip"},
        _age(),
    ]
    definitions = [
        _definition(
            group=group,
            version=version,
            kind=kind,
            plural=plural,
            scope=scope,
            description=f"{kind}: policy results of the Kubernetes Policy working group's format.",
            properties=properties,
            required=[],
            columns=columns,
            short_names=[short],
        )
        for kind, plural, scope, short in (
            ("PolicyReport", "policyreports", "Namespaced", "polr"),
            ("ClusterPolicyReport", "clusterpolicyreports", "Cluster", "cpolr"),
        )
    ]
    for definition in definitions:
        # Other tools' reports live in these kinds too: `helm uninstall` of distroguard must not delete them.
        definition["metadata"]["annotations"] = {"helm.sh/resource-policy": "keep"}
    return definitions
