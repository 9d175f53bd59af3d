"""AdmissionReview v1 requests shaped like the ones kube-apiserver sends, for the admission tests."""

from __future__ import annotations

import copy
import json
from typing import Any

# A Pod CREATE as kube-apiserver 1.30 sends it (trimmed of managedFields), kept as text on purpose.
POD_CREATE_JSON = """
{
  "kind": "AdmissionReview",
  "apiVersion": "admission.k8s.io/v1",
  "request": {
    "uid": "0df28fbd-5f5f-4c5a-8f2e-2c8e6d3b8a11",
    "kind": {"group": "", "version": "v1", "kind": "Pod"},
    "resource": {"group": "", "version": "v1", "resource": "pods"},
    "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
    "requestResource": {"group": "", "version": "v1", "resource": "pods"},
    "name": "web",
    "namespace": "shop",
    "operation": "CREATE",
    "userInfo": {
      "username": "kubernetes-admin",
      "groups": ["system:masters", "system:authenticated"]
    },
    "object": {
      "kind": "Pod",
      "apiVersion": "v1",
      "metadata": {
        "name": "web",
        "namespace": "shop",
        "uid": "5b0ee5c8-5c3b-4b0e-9b5c-3a2c3c4c5d6e",
        "creationTimestamp": null,
        "labels": {"app": "web"}
      },
      "spec": {
        "volumes": [{"name": "kube-api-access-x7v2q", "projected": {"sources": []}}],
        "initContainers": [
          {"name": "migrate", "image": "registry.example/shop/migrate:1.4",
           "resources": {}, "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}
        ],
        "containers": [
          {"name": "app", "image": "python:3.12-alpine",
           "ports": [{"containerPort": 8080, "protocol": "TCP"}], "resources": {},
           "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"},
          {"name": "proxy", "image": "envoyproxy/envoy:v1.31.0", "resources": {},
           "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}
        ],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "web",
        "serviceAccount": "web",
        "imagePullSecrets": [{"name": "regcred"}, {"name": "regcred"}],
        "securityContext": {},
        "schedulerName": "default-scheduler",
        "enableServiceLinks": true,
        "preemptionPolicy": "PreemptLowerPriority"
      },
      "status": {}
    },
    "oldObject": null,
    "dryRun": false,
    "options": {
      "kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-client-side-apply"
    }
  }
}
"""

GROUPS = {
    "Pod": ("", "pods"),
    "ReplicationController": ("", "replicationcontrollers"),
    "Deployment": ("apps", "deployments"),
    "StatefulSet": ("apps", "statefulsets"),
    "DaemonSet": ("apps", "daemonsets"),
    "ReplicaSet": ("apps", "replicasets"),
    "Job": ("batch", "jobs"),
    "CronJob": ("batch", "cronjobs"),
    "ConfigMap": ("", "configmaps"),
}


def pod_create() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(POD_CREATE_JSON)
    return document


def container(name: str, image: str) -> dict[str, Any]:
    return {"name": name, "image": image, "resources": {}, "imagePullPolicy": "IfNotPresent"}


def pod_spec(*containers: dict[str, Any], **sections: list[dict[str, Any]]) -> dict[str, Any]:
    return {"containers": list(containers), "restartPolicy": "Always", **sections}


def workload(kind: str, spec: dict[str, Any], name: str = "web") -> dict[str, Any]:
    """An object of `kind` whose pod spec is `spec`."""
    group, _ = GROUPS[kind]
    api_version = f"{group}/v1" if group else "v1"
    metadata = {"name": name, "namespace": "shop", "labels": {"app": name}}
    template = {"metadata": {"labels": {"app": name}}, "spec": spec}
    if kind == "Pod":
        body: dict[str, Any] = {"spec": spec}
    elif kind == "CronJob":
        body = {"spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": template}}}}
    elif kind == "ConfigMap":
        body = {"data": {"key": "value"}}
    else:
        body = {"spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}}, "template": template}}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **body}


def review(
    obj: dict[str, Any] | None,
    *,
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
    kind: str | None = None,
    sub_resource: str | None = None,
    uid: str = "705ab4f5-6393-11e8-b7cc-42010a800002",
    dry_run: bool = False,
    namespace: str = "shop",
) -> dict[str, Any]:
    kind = kind or (obj or old or {}).get("kind", "Pod")
    group, resource = GROUPS[kind]
    gvk = {"group": group, "version": "v1", "kind": kind}
    gvr = {"group": group, "version": "v1", "resource": resource}
    request: dict[str, Any] = {
        "uid": uid,
        "kind": gvk,
        "resource": gvr,
        "requestKind": gvk,
        "requestResource": gvr,
        "name": (obj or old or {}).get("metadata", {}).get("name", ""),
        "namespace": namespace,
        "operation": operation,
        "userInfo": {"username": "system:serviceaccount:ci:deployer", "groups": ["system:serviceaccounts"]},
        "object": copy.deepcopy(obj),
        "oldObject": copy.deepcopy(old),
        "dryRun": dry_run,
    }
    if sub_resource:
        request["subResource"] = sub_resource
    return {"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": request}
