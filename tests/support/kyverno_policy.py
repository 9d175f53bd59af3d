"""distroguard's example Kyverno ClusterPolicy (it denies musl through the facts API,
`context.apiCall.service` → `GET /v1/facts?image=REF`), as the Kyverno tests and the CLI check load it.

    example_policy()                     the ClusterPolicy in `policies/kyverno/` (the test's own until one
                                         is shipped)
    localized(policy, base, ca, ns)      pointed at a running distroguard and narrowed to one namespace
    facts_urls(policy, image)            the URLs its API calls ask for `image` (what a CLI mock answers)
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
DENIED_FOR = "uses musl"
"""In the deny message of the policy: `{{ facts.libc.family }}` filled in from distroguard's answer, so a
denial for any other reason (an API call that failed, which Kyverno also refuses) does not pass for it."""
_ELEMENT_IMAGE = re.compile(r"\{\{\s*element\.image\s*\}\}")

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
                    "message": "image {{ element.image }} uses {{ facts.libc.family }} libc "
                    "({{ facts.os.pretty_name }}): use a glibc-based base image",
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
