"""`support.scratch` itself: a namespace it made is gone after `close`, and so is everything in it (the
test control plane has no controllers to do either)."""

from __future__ import annotations

import pytest

from support.kube import ControlPlane
from support.scratch import Scratch, leftovers

pytestmark = pytest.mark.e2e


def test_close_removes_the_namespaces_and_their_contents(kube: ControlPlane) -> None:
    scratch = Scratch(kube)
    try:
        ns = scratch.namespace("scratch")
        pod = {"containers": [{"name": "app", "image": "127.0.0.1:1/gone/app:1"}]}
        kube.create(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": ns}, "spec": pod}
        )
        kube.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": ns}})
    finally:
        scratch.close()
    assert leftovers(kube, [ns]) == []
    pods = kube.kubectl_json("get", "pods", "-A")["items"]
    assert [p for p in pods if p["metadata"]["namespace"] == ns] == []
    configmaps = kube.kubectl_json("get", "configmaps", "-A")["items"]
    assert [c for c in configmaps if c["metadata"]["namespace"] == ns] == []
