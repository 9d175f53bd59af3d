"""Namespaces a test makes for itself, emptied and removed when it ends, whatever happened.

The test control plane has no controllers: deleting a namespace neither deletes what is in it nor ends
(the namespace controller would do both). So `remove_namespace` deletes every namespaced object in it by
kind, then finalizes the namespace itself. Nothing a test made is left for a later test's audit, which
lists every namespace, to look up again.

    scratch = Scratch(kube)
    try:
        ns = scratch.namespace("deny")
        ...
    finally:
        scratch.close()

or, as a pytest fixture (this module is registered as a plugin in `tests/conftest.py`), `scratch`: the
test's own namespaces, removed when it ends.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from support.kube import ControlPlane


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _namespaced_kinds(kube: ControlPlane) -> str:
    listed = kube.kubectl("api-resources", "--namespaced=true", "--verbs=list,delete", "-o", "name")
    # Events are the API server's own record, and deleting them by kind is slow; they go with the
    # namespace's finalization.
    kinds = [k for k in listed.stdout.split() if k not in ("events", "events.events.k8s.io")]
    return ",".join(kinds)


def remove_namespace(kube: ControlPlane, name: str) -> None:
    """Delete every object in namespace `name`, then the namespace (its finalizer cleared, as the absent
    namespace controller would). Objects made by the test only: none of them has a finalizer."""
    kube.kubectl(
        "delete",
        _namespaced_kinds(kube),
        "--all",
        "-n",
        name,
        "--ignore-not-found",
        "--wait=false",
        check=False,
    )
    kube.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false", check=False)
    found = kube.kubectl("get", "namespace", name, "-o", "json", check=False)
    if found.returncode != 0:
        return
    document = json.loads(found.stdout)
    document["spec"]["finalizers"] = []
    kube.kubectl(
        "replace",
        "--raw",
        f"/api/v1/namespaces/{name}/finalize",
        "-f",
        "-",
        input=json.dumps(document),
        check=False,
    )


@dataclass
class Scratch:
    """The namespaces one test (or one module's fixture) made; `close` removes them all."""

    kube: ControlPlane
    names: list[str] = field(default_factory=list)

    def namespace(self, prefix: str, labels: dict[str, str] | None = None) -> str:
        name = unique(prefix)
        self.names.append(name)
        metadata = {"name": name, "labels": labels or {}}
        self.kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": metadata})
        return name

    def close(self) -> None:
        while self.names:
            remove_namespace(self.kube, self.names.pop())


def leftovers(kube: ControlPlane, names: list[str]) -> list[str]:
    """Those of `names` still present as namespaces."""
    listed = kube.kubectl_json("get", "namespaces")
    present = {item["metadata"]["name"] for item in listed["items"]}
    return [n for n in names if n in present]


@pytest.fixture
def scratch(kube: ControlPlane) -> Iterator[Scratch]:
    """The test's own namespaces, removed with their contents when it ends."""
    made = Scratch(kube)
    try:
        yield made
    finally:
        made.close()


@contextmanager
def crds_installed(kube: ControlPlane, crds: Sequence[dict[str, Any]]) -> Iterator[None]:
    """`crds` applied (server-side) and established; on the way out, those that were not there before are
    deleted again, so a test leaves the cluster's CRDs as it found them."""
    names = [crd["metadata"]["name"] for crd in crds]
    existed = {name for name in names if kube.kubectl("get", "crd", name, check=False).returncode == 0}
    try:
        for crd in crds:
            kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps(crd))
        for name in names:
            kube.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
        yield
    finally:
        for name in set(names) - existed:
            kube.kubectl("delete", "crd", name, "--ignore-not-found", check=False)


@contextmanager
def scratch_namespace(kube: ControlPlane, prefix: str) -> Iterator[str]:
    """One namespace of the caller's own (as `Scratch.namespace`), removed with its contents afterwards."""
    made = Scratch(kube)
    try:
        yield made.namespace(prefix)
    finally:
        made.close()


def pull_secret(
    namespace: str, registry: str, username: str, password: str, name: str = "pull"
) -> dict[str, Any]:
    """A `kubernetes.io/dockerconfigjson` Secret holding one registry's basic credentials."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    config = json.dumps({"auths": {registry: {"auth": token}}})
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(config.encode()).decode()},
    }
