"""The test control plane is a real Kubernetes API server: storage, CRDs, RBAC, admission webhooks.

Nothing here is distroguard yet: these tests prove the ground that the end-to-end tests of the
webhook stand on. Without controllers nothing is ever deleted for real, so every test makes its own
uniquely named objects.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from support.kube import KUBE_VERSION, ControlPlane, KeyPair, start
from support.scratch import Scratch

pytestmark = pytest.mark.e2e


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def eventually(check: Callable[[], bool], *, timeout: float = 30.0, what: str) -> None:
    """Poll `check` until it is true: RBAC and webhook configuration reach the API server's caches
    asynchronously, a few milliseconds to a second after they are stored."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:.0f}s: {what}")
        time.sleep(0.2)


# --------------------------------------------------------------------------------------- the server


def test_server_reports_the_pinned_release(kube: ControlPlane) -> None:
    version = kube.kubectl_json("version")
    assert version["serverVersion"]["gitVersion"] == KUBE_VERSION
    major, minor = KUBE_VERSION.lstrip("v").split(".")[:2]
    assert (version["serverVersion"]["major"], version["serverVersion"]["minor"]) == (major, minor)
    assert version["clientVersion"]["gitVersion"].startswith("v1.35.")

    status, body = kube.get("/readyz")
    assert (status, body) == (200, b"ok")


def _listening_addresses(pid: int) -> set[str]:
    """host:port (hex, as the kernel writes it) of every listening TCP socket the process holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink()
        except OSError:
            continue
        if str(target).startswith("socket:["):
            inodes.add(str(target)[len("socket:[") : -1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                found.add(f"{table}:{local}")
    return found


def test_everything_listens_on_loopback_only(kube: ControlPlane) -> None:
    loopback = "0100007F"  # 127.0.0.1 in /proc/net/tcp's little-endian hex
    for process in kube.processes:
        addresses = _listening_addresses(process.pid)
        assert addresses, f"{process.name} listens nowhere?"
        for address in addresses:
            table, host_port = address.split(":", 1)
            assert table == "tcp", f"{process.name} listens on IPv6: {address}"
            assert host_port.split(":")[0] == loopback, f"{process.name} listens on {address}"


def test_helm_talks_to_the_api_server(kube: ControlPlane) -> None:
    assert kube.helm("version", "--short").stdout.startswith("v4.")
    assert json.loads(kube.helm("list", "--all-namespaces", "-o", "json").stdout) == []


# ------------------------------------------------------------------------------ objects and schemas


def test_namespace_crd_and_custom_object(kube: ControlPlane, scratch: Scratch) -> None:
    group = f"{uuid.uuid4().hex[:8]}.e2e.distroguard.dev"
    crd_name = f"widgets.{group}"
    kube.create(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": crd_name},
            "spec": {
                "group": group,
                "scope": "Namespaced",
                "names": {
                    "plural": "widgets",
                    "singular": "widget",
                    "kind": "Widget",
                    "listKind": "WidgetList",
                },
                "versions": [
                    {
                        "name": "v1alpha1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {
                                    "spec": {
                                        "type": "object",
                                        "required": ["size"],
                                        "properties": {
                                            "size": {"type": "integer", "minimum": 1},
                                            "image": {"type": "string"},
                                        },
                                    }
                                },
                            }
                        },
                    }
                ],
            },
        }
    )
    kube.kubectl("wait", "--for=condition=Established", f"crd/{crd_name}", "--timeout=60s")

    ns = scratch.namespace("crd")
    assert kube.kubectl_json("get", "namespace", ns)["status"]["phase"] == "Active"
    widget = {
        "apiVersion": f"{group}/v1alpha1",
        "kind": "Widget",
        "metadata": {"name": "first", "namespace": ns},
        "spec": {"size": 3, "image": "python:3.12-slim-bookworm"},
    }
    created = kube.create(widget)
    assert created["metadata"]["uid"]
    stored = kube.kubectl_json("get", f"widgets.{group}", "first", "-n", ns)
    assert stored["spec"] == {"size": 3, "image": "python:3.12-slim-bookworm"}

    # The API server enforces the CRD's structural schema.
    invalid = dict(widget, metadata={"name": "second", "namespace": ns}, spec={"size": 0})
    rejected = kube.kubectl("create", "-f", "-", input=json.dumps(invalid), check=False)
    assert rejected.returncode != 0
    assert "spec.size" in rejected.stderr
    assert "should be greater than or equal to 1" in rejected.stderr


def test_pod_and_deployment_are_stored_but_never_run(kube: ControlPlane, scratch: Scratch) -> None:
    ns = scratch.namespace("workloads")
    container = {"name": "app", "image": "python:3.12-slim-bookworm"}
    pod = kube.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "app", "namespace": ns},
            "spec": {"containers": [container]},
        }
    )
    assert pod["status"]["phase"] == "Pending"  # no scheduler, no kubelet
    assert "nodeName" not in pod["spec"]

    labels = {"app": "web"}
    kube.create(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
            },
        }
    )
    deployment = kube.kubectl_json("get", "deployment", "web", "-n", ns)
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == container["image"]
    assert not deployment.get("status", {}).get("readyReplicas")  # no controller manager

    bad = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad", "namespace": ns}}
    bad["spec"] = {"containers": []}
    rejected = kube.kubectl("create", "-f", "-", input=json.dumps(bad), check=False)
    assert rejected.returncode != 0
    assert "spec.containers: Required value" in rejected.stderr


# --------------------------------------------------------------------------------------------- RBAC


def test_rbac_denies_a_service_account_until_a_role_is_bound(kube: ControlPlane, scratch: Scratch) -> None:
    ns = scratch.namespace("rbac")
    reader = f"system:serviceaccount:{ns}:reader"

    denied = kube.kubectl("get", "configmaps", "-n", ns, as_user=reader, check=False)
    assert denied.returncode != 0
    assert f'User "{reader}" cannot list resource "configmaps"' in denied.stderr
    can_i = kube.kubectl("auth", "can-i", "list", "configmaps", "-n", ns, as_user=reader, check=False)
    assert can_i.stdout.strip() == "no"

    kube.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "configmap-reader", "namespace": ns},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
        }
    )
    kube.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "reader", "namespace": ns},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "configmap-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}],
        }
    )

    def can_list() -> bool:
        done = kube.kubectl("get", "configmaps", "-n", ns, as_user=reader, check=False)
        return done.returncode == 0

    eventually(can_list, what=f"{reader} may list configmaps once the Role is bound")
    # Only what the Role grants: not create, not another namespace.
    cannot_create = kube.kubectl("create", "configmap", "x", "-n", ns, as_user=reader, check=False)
    assert cannot_create.returncode != 0
    assert 'cannot create resource "configmaps"' in cannot_create.stderr
    elsewhere = kube.kubectl("get", "configmaps", "-n", "default", as_user=reader, check=False)
    assert elsewhere.returncode != 0
    assert "forbidden" in elsewhere.stderr.lower()


# ------------------------------------------------------------------------------- admission webhooks

VERDICT_LABEL = "e2e.distroguard.dev/verdict"
DENY_MESSAGE = "image runs on musl: alpine is not allowed here"
WARNING = "base image debian 10 is past its end of life"


@dataclass
class WebhookServer:
    """A validating webhook over HTTPS on 127.0.0.1: denies or warns as the object's label says."""

    url: str
    reviews: list[dict[str, Any]] = field(default_factory=list)


def _handler(reviews: list[dict[str, Any]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            reviews.append(review)
            request = review["request"]
            verdict = request["object"]["metadata"].get("labels", {}).get(VERDICT_LABEL)
            response: dict[str, Any] = {"uid": request["uid"], "allowed": verdict != "deny"}
            if verdict == "deny":
                response["status"] = {"code": 403, "message": DENY_MESSAGE}
            if verdict == "warn":
                response["warnings"] = [WARNING]
            body = json.dumps(
                {
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "response": response,
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def webhook_server(kube: ControlPlane) -> Iterator[WebhookServer]:
    cert: KeyPair = kube.issue_server_cert(unique("webhook"), ips=["127.0.0.1"], dns=["localhost"])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert.cert), str(cert.key))
    reviews: list[dict[str, Any]] = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(reviews))
    httpd.daemon_threads = True
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, name="webhook", daemon=True)
    thread.start()
    try:
        yield WebhookServer(f"https://127.0.0.1:{httpd.server_address[1]}/validate", reviews)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def _configmap(ns: str, name: str, verdict: str | None) -> str:
    labels = {VERDICT_LABEL: verdict} if verdict else {}
    metadata = {"name": name, "namespace": ns, "labels": labels}
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata})


def test_api_server_calls_a_webhook_that_denies_and_warns(
    kube: ControlPlane, webhook_server: WebhookServer, scratch: Scratch
) -> None:
    ns = scratch.namespace("webhook")
    webhook_name = f"check.{uuid.uuid4().hex[:8]}.e2e.distroguard.dev"
    configuration = unique("e2e-webhook")
    try:
        _check_webhook(kube, webhook_server, ns, configuration, webhook_name)
    finally:
        kube.kubectl(
            "delete", "validatingwebhookconfiguration", configuration, "--ignore-not-found", check=False
        )


def _check_webhook(
    kube: ControlPlane, webhook_server: WebhookServer, ns: str, configuration: str, webhook_name: str
) -> None:
    kube.create(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": configuration},
            "webhooks": [
                {
                    "name": webhook_name,
                    "clientConfig": {
                        "url": webhook_server.url,
                        "caBundle": base64.b64encode(kube.ca.cert.read_bytes()).decode(),
                    },
                    "rules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["configmaps"],
                            "scope": "Namespaced",
                        }
                    ],
                    # Only this test's namespace: the other tests never meet this webhook.
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
                    "failurePolicy": "Fail",
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                    "timeoutSeconds": 5,
                }
            ],
        }
    )

    def webhook_active() -> bool:
        probe = _configmap(ns, unique("probe"), "deny")
        done = kube.kubectl("create", "--dry-run=server", "-f", "-", input=probe, check=False)
        return done.returncode != 0 and DENY_MESSAGE in done.stderr

    eventually(webhook_active, what="the API server calls the new webhook")

    denied = kube.kubectl("create", "-f", "-", input=_configmap(ns, "denied", "deny"), check=False)
    assert denied.returncode != 0
    assert f'admission webhook "{webhook_name}" denied the request: {DENY_MESSAGE}' in denied.stderr
    assert kube.kubectl("get", "configmap", "denied", "-n", ns, check=False).returncode != 0

    warned = kube.kubectl("create", "-f", "-", input=_configmap(ns, "warned", "warn"))
    assert f"Warning: {WARNING}" in warned.stderr
    assert kube.kubectl_json("get", "configmap", "warned", "-n", ns)["metadata"]["name"] == "warned"

    quiet = kube.kubectl("create", "-f", "-", input=_configmap(ns, "quiet", None))
    assert "Warning" not in quiet.stderr

    seen = {r["request"]["name"]: r["request"] for r in webhook_server.reviews if not r["request"]["dryRun"]}
    assert set(seen) == {"denied", "warned", "quiet"}
    for request in seen.values():
        assert request["operation"] == "CREATE"
        assert request["namespace"] == ns
        assert request["kind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
        assert request["userInfo"]["username"] == "distroguard-admin"
        assert "system:masters" in request["userInfo"]["groups"]


# ---------------------------------------------------------------------------------------- lifecycle


def test_a_second_control_plane_starts_beside_and_stops_without_a_trace(kube: ControlPlane) -> None:
    other = start(binaries=kube.binaries)
    try:
        assert other.server != kube.server
        assert other.kubectl_json("version")["serverVersion"]["gitVersion"] == KUBE_VERSION
        pids = [p.pid for p in other.processes]
    finally:
        other.stop()
    assert not other.workdir.exists()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"pid {pid} outlived its control plane"
    # The session's control plane did not notice.
    assert kube.get("/readyz") == (200, b"ok")
