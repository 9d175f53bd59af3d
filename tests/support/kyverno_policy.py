"""distroguard's example Kyverno ClusterPolicy (it denies musl through the facts API,
`context.apiCall.service` → `GET /v1/facts?image=REF`), as the Kyverno tests and the CLI check load it.

    example_policy()                     the ClusterPolicy in `policies/kyverno/` (the test's own until one
                                         is shipped)
    localized(policy, base, ca, ns)      pointed at a running distroguard and narrowed to one namespace
    facts_urls(policy, image)            the URLs its API calls ask for `image` (what a CLI mock answers)
    rule_keys(policy)                    each rule's name and the facts fields its deny conditions read
    denial_text(policy, field)           the fixed part of the message of the rule that reads `field`
"""

from __future__ import annotations

import copy
import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from support.scratch import unique

EXAMPLES = Path(__file__).resolve().parents[2] / "policies" / "kyverno"
LIBC_FAMILY = "facts.libc.family"
_ELEMENT_IMAGE = re.compile(r"\{\{\s*element\.image\s*\}\}")
_VARIABLE = re.compile(r"\{\{\s*([^}]+?)\s*\}\}")

IN_TEST_POLICY: dict[str, Any] = {
    "apiVersion": "kyverno.io/v1",
    "kind": "ClusterPolicy",
    "metadata": {"name": "distroguard-no-musl"},
    "spec": {
        "background": False,
        "rules": [
            {
                "name": "no-musl",
                "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                "validate": {
                    "failureAction": "Enforce",
                    "foreach": [
                        {
                            "list": "request.object.spec.containers",
                            "context": [
                                {
                                    "name": "facts",
                                    "apiCall": {
                                        "method": "GET",
                                        "service": {
                                            "url": "https://distroguard.distroguard.svc/v1/facts"
                                            "?image={{ element.image }}",
                                            "caBundle": "",
                                        },
                                    },
                                }
                            ],
                            "deny": {
                                "conditions": {
                                    "any": [
                                        {
                                            "key": "{{ facts.libc.family }}",
                                            "operator": "Equals",
                                            "value": "musl",
                                        }
                                    ]
                                }
                            },
                        }
                    ],
                    "message": "an image is built on musl (distroguard facts API): use a glibc-based image",
                },
            }
        ],
    },
}
"""Used while `policies/kyverno/` has no example: a `deny` on `libc.family`, a field that `distroguard
inspect --output json` prints (the facts document)."""


def example_policy() -> dict[str, Any]:
    """The shipped example ClusterPolicy that denies musl, or the test's own while none is shipped."""
    for path in sorted(EXAMPLES.glob("*.yaml")) if EXAMPLES.is_dir() else []:
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict) and document.get("kind") == "ClusterPolicy":
                return document
    return copy.deepcopy(IN_TEST_POLICY)


def localized(policy: dict[str, Any], facts_base: str, ca_pem: str, namespace: str) -> dict[str, Any]:
    """`policy` pointed at this test's distroguard: each apiCall service URL's scheme and host replaced by
    `facts_base`'s (its path and query kept), its caBundle by `ca_pem`, and every rule narrowed to
    `namespace`."""
    document = copy.deepcopy(policy)
    base = urllib.parse.urlsplit(facts_base)
    calls = list(services(document))
    if not calls:
        raise ValueError("the ClusterPolicy makes no apiCall.service call")
    for service in calls:
        url = urllib.parse.urlsplit(service["url"])
        service["url"] = urllib.parse.urlunsplit((base.scheme, base.netloc, url.path, url.query, ""))
        service["caBundle"] = ca_pem
    for rule in document["spec"]["rules"]:
        for clause in rule["match"].get("any", []) + rule["match"].get("all", []):
            clause["resources"]["namespaces"] = [namespace]
        if "resources" in rule["match"]:
            rule["match"]["resources"]["namespaces"] = [namespace]
    document["metadata"] = {"name": unique(document["metadata"]["name"])}
    return document


def services(policy: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every `apiCall.service` in `policy`."""

    def visit(node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, dict):
            call = node.get("apiCall")
            if isinstance(call, dict) and isinstance(call.get("service"), dict):
                yield call["service"]
            for value in node.values():
                yield from visit(value)
        elif isinstance(node, list):
            for value in node:
                yield from visit(value)

    return visit(policy.get("spec", {}))


def facts_urls(policy: dict[str, Any], image: str) -> list[str]:
    """The URL each API call of `policy` asks when its foreach element's image is `image`."""
    return [_ELEMENT_IMAGE.sub(image, service["url"]) for service in services(policy)]


def rule_keys(policy: dict[str, Any]) -> dict[str, set[str]]:
    """Each rule's name and the variables its deny conditions' keys read (`facts.libc.family`, ...)."""
    found: dict[str, set[str]] = {}
    for rule in policy["spec"]["rules"]:
        keys: set[str] = set()
        for each in rule.get("validate", {}).get("foreach", []):
            conditions = each.get("deny", {}).get("conditions", {})
            for condition in [*conditions.get("any", []), *conditions.get("all", [])]:
                keys.update(_VARIABLE.findall(str(condition.get("key", ""))))
        found[rule["name"]] = keys
    return found


def denial_text(policy: dict[str, Any], field: str = LIBC_FAMILY) -> str:
    """The message of the rule whose deny conditions read `field`, up to its first variable: what a denial by
    that rule says (a failed API call is an error of the rule, and says something else)."""
    for rule in policy["spec"]["rules"]:
        if field in rule_keys({"spec": {"rules": [rule]}})[rule["name"]]:
            text = str(rule["validate"]["message"]).split("{{", 1)[0].strip()
            if len(text) < 10:
                raise ValueError(f"rule {rule['name']}'s message has too little fixed text to recognise")
            return text
    raise ValueError(f"no rule of {policy['metadata']['name']} denies on {field}")
