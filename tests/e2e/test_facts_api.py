"""The facts API end to end: `distroguard run --dev --facts-api` against the test control plane and real
registries, asked over HTTPS the way Gatekeeper (POST /v1/gatekeeper) and Kyverno (GET /v1/facts) ask.

Two processes: one serving the API on the webhook's own server, one on a port of its own requiring client
certificates (`--facts-port`, `--facts-client-ca`). Images: a musl one (Alpine), a glibc one (Debian 12),
an end-of-life one (Debian 9), all anonymous; and a private one that only a pull secret reads, which the
webhook resolves with that secret and the facts API must still refuse.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import ssl
import subprocess
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from distroguard.model.provider import API_VERSION
from distroguard.operator.webhook.facts import FACTS_PATH, GATEKEEPER_PATH
from support import certs
from support.distros import ALPINE_ROOT, DEBIAN_9_ROOT, DEBIAN_12_ROOT, Files
from support.gatekeeper import GatekeeperTools
from support.images import ImageBuilder, push
from support.kube import ControlPlane, free_port
from support.operator_process import OperatorProcess
from support.registry_server import RegistryServer
from support.scratch import Scratch, pull_secret
from support.webhook_client import WebhookEndpoint

# go_tools: two tests run Gatekeeper's engine; the module's server is shared, so the module goes last whole.
pytestmark = [pytest.mark.e2e, pytest.mark.registry, pytest.mark.go_tools]

REPO = Path(__file__).resolve().parents[2]
GATEKEEPER_POLICIES = REPO / "policies" / "gatekeeper"
ANSWER_GUARD_SECONDS = 60.0
"""A hang guard, not a timing assertion: the first lookup of an image may take a while on a loaded
machine (the API's own budget is raised below so that it answers in one go)."""
BUDGET = "20"
POLICY_LABELS = {"e2e.distroguard.dev/module": "facts-api"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    content_type: str


@dataclass
class FactsClient:
    host: str
    port: int
    context: ssl.SSLContext

    def request(self, method: str, path: str, body: bytes | None = None) -> Reply:
        connection = http.client.HTTPSConnection(
            self.host, self.port, context=self.context, timeout=ANSWER_GUARD_SECONDS
        )
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            raw = response.read()
            content_type = response.getheader("Content-Type", "")
            return Reply(response.status, json.loads(raw) if raw else None, content_type)
        finally:
            connection.close()

    def facts(self, image: str, **query: str) -> Reply:
        return self.request("GET", f"{FACTS_PATH}?{urllib.parse.urlencode({'image': image, **query})}")

    def gatekeeper(self, *keys: str) -> Reply:
        document = {"apiVersion": API_VERSION, "kind": "ProviderRequest", "request": {"keys": list(keys)}}
        return self.request("POST", GATEKEEPER_PATH, json.dumps(document).encode())


@dataclass
class Images:
    alpine: str
    debian: str
    debian9: str
    private: str


@dataclass
class Served:
    workdir: Path
    shared: FactsClient
    """The API on the webhook's server (no client certificates)."""
    mtls: FactsClient
    """The API on its own port, with a client certificate its CA signed."""
    mtls_anonymous: FactsClient
    """The same port, without a client certificate."""
    mtls_stranger: FactsClient
    """The same port, with a certificate another CA signed."""
    gatekeeper_cert: tuple[Path, Path]
    """The client certificate and key `mtls` presents (for Gatekeeper's engine to present too)."""
    images: Images
    kube: ControlPlane
    scratch: Scratch


@pytest.fixture(scope="module")
def images(registry: RegistryServer, basic_registry: RegistryServer) -> Images:
    def pushed(server: RegistryServer, repo: str, root: Files, auth: tuple[str, str] | None = None) -> str:
        asyncio.run(push(server.url, repo, "1", ImageBuilder().layer(root).build(), auth=auth))
        return f"{server.address}/{repo}:1"

    return Images(
        alpine=pushed(registry, unique("facts/alpine"), ALPINE_ROOT),
        debian=pushed(registry, unique("facts/debian"), DEBIAN_12_ROOT),
        debian9=pushed(registry, unique("facts/debian9"), DEBIAN_9_ROOT),
        private=pushed(basic_registry, unique("facts/private"), DEBIAN_12_ROOT, basic_registry.push_auth),
    )


def written(issued: certs.Issued, workdir: Path) -> tuple[Path, Path]:
    name = uuid.uuid4().hex[:8]
    cert, key = workdir / f"{name}.pem", workdir / f"{name}-key.pem"
    issued.write(cert, key)
    return cert, key


def client_context(ca_pem: str, client: certs.Issued | None, workdir: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=ca_pem)
    if client is not None:
        context.load_cert_chain(*written(client, workdir))
    return context


@pytest.fixture(scope="module")
def served(kube: ControlPlane, images: Images, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    scratch = Scratch(kube)
    workdir = tmp_path_factory.mktemp("facts-api")
    trusted_ca = certs.new_ca("gatekeeper test CA")
    client_ca = certs.write_cert(workdir / "client-ca.pem", trusted_ca.cert)
    facts_port = free_port()
    common = ["--metrics-port", "0", "--facts-api", "--facts-budget", BUDGET]
    shared = OperatorProcess(
        kube, unique("distroguard-facts"), scratch.namespace("distroguard"), workdir / "shared.log", common
    )
    mtls = OperatorProcess(
        kube,
        unique("distroguard-facts-mtls"),
        scratch.namespace("distroguard"),
        workdir / "mtls.log",
        [*common, "--facts-port", str(facts_port), "--facts-client-ca", str(client_ca)],
    )
    try:
        shared.start()
        mtls.start()
        shared.wait_registered()
        mtls.wait_registered()
        mtls.wait_logged("serving the facts API at")
        endpoint = WebhookEndpoint.from_configuration(
            kube.kubectl_json("get", "validatingwebhookconfiguration", shared.webhook_name)
        )
        mtls_ca = WebhookEndpoint.from_configuration(
            kube.kubectl_json("get", "validatingwebhookconfiguration", mtls.webhook_name)
        ).ca_pem
        gatekeeper = certs.issue(trusted_ca, "gatekeeper", client=True, server=False)
        stranger = certs.issue(certs.new_ca("another CA"), "gatekeeper", client=True, server=False)
        yield Served(
            workdir=workdir,
            shared=FactsClient(endpoint.host, endpoint.port, endpoint.context()),
            mtls=FactsClient("127.0.0.1", facts_port, client_context(mtls_ca, gatekeeper, workdir)),
            mtls_anonymous=FactsClient("127.0.0.1", facts_port, client_context(mtls_ca, None, workdir)),
            mtls_stranger=FactsClient("127.0.0.1", facts_port, client_context(mtls_ca, stranger, workdir)),
            gatekeeper_cert=written(gatekeeper, workdir),
            images=images,
            kube=kube,
            scratch=scratch,
        )
    finally:
        codes = [shared.stop(), mtls.stop()]
        print(shared.log_text()[-3000:])
        print(mtls.log_text()[-3000:])
        scratch.close()
    assert codes == [0, 0], "distroguard run did not stop cleanly on SIGTERM"


def test_kyvernos_get_answers_the_facts_document_of_a_musl_and_a_glibc_image(served: Served) -> None:
    alpine = served.shared.facts(served.images.alpine)
    assert alpine.status == 200, alpine.body
    assert alpine.content_type == "application/json"
    assert alpine.body["reference"] == served.images.alpine
    assert alpine.body["os"]["id"] == "alpine"
    assert alpine.body["libc"]["family"] == "musl"
    assert alpine.body["lifecycle"]["os"]["product"] == "alpine-linux"

    debian = served.shared.facts(served.images.debian)
    assert debian.status == 200, debian.body
    assert debian.body["libc"]["family"] == "glibc"
    assert debian.body["os"]["version_id"] == "12"
    assert debian.body["lifecycle"]["eol"] is False

    old = served.shared.facts(served.images.debian9)
    assert old.status == 200, old.body
    assert old.body["lifecycle"]["os"]["state"] == "eol"
    assert old.body["lifecycle"]["eol"] is True


def test_gatekeepers_post_answers_items_for_each_key(served: Served) -> None:
    missing = served.images.debian.rsplit(":", 1)[0] + "-missing:1"
    reply = served.shared.gatekeeper(served.images.alpine, served.images.debian, missing, "oci:/etc")
    assert reply.status == 200, reply.body
    assert reply.body["apiVersion"] == API_VERSION
    assert reply.body["kind"] == "ProviderResponse"
    response = reply.body["response"]
    assert response["idempotent"] is True
    assert "systemError" not in response
    items = {item["key"]: item for item in response["items"]}
    assert list(items) == [served.images.alpine, served.images.debian, missing, "oci:/etc"]
    assert items[served.images.alpine]["value"]["libc"]["family"] == "musl"
    assert items[served.images.debian]["value"]["libc"]["family"] == "glibc"
    assert items[missing]["error"].startswith("not-found: ")
    assert "value" not in items[missing]
    assert items["oci:/etc"]["error"].startswith("invalid-reference: ")
    # The same document either way.
    assert items[served.images.debian]["value"] == served.shared.facts(served.images.debian).body


def test_a_private_image_is_not_served_even_after_admission_resolved_it_with_its_pull_secret(
    served: Served, basic_registry: RegistryServer
) -> None:
    kube = served.kube
    ns = served.scratch.namespace("private")
    assert basic_registry.username
    assert basic_registry.password
    kube.create(pull_secret(ns, basic_registry.address, basic_registry.username, basic_registry.password))
    policy = unique("facts-private")
    kube.create(
        {
            "apiVersion": "distroguard.dev/v1alpha1",
            "kind": "DistroPolicy",
            "metadata": {"name": policy, "labels": POLICY_LABELS},
            "spec": {
                "action": "deny",
                "onUnresolved": "deny",
                "match": {"namespaces": [ns]},
                "rules": [{"name": "no-musl", "denyLibc": ["musl"]}],
            },
        }
    )
    try:

        def pod(name: str, *, secret: bool) -> str:
            spec: dict[str, Any] = {"containers": [{"name": "app", "image": served.images.private}]}
            if secret:
                spec["imagePullSecrets"] = [{"name": "pull"}]
            metadata = {"name": name, "namespace": ns}
            return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})

        # The policy is in force once a pod without the secret is denied (the image cannot be read:
        # onUnresolved deny); then a pod with it is admitted only because the webhook read the image with
        # the secret.
        deadline = time.monotonic() + 60
        while True:
            done = kube.kubectl(
                "create", "--dry-run=server", "-f", "-", input=pod("probe", secret=False), check=False
            )
            if done.returncode != 0 and "could not be inspected" in done.stderr:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"the policy never denied the unreadable image: {done.stderr}")
            time.sleep(0.5)
        admitted = kube.kubectl("create", "--dry-run=server", "-f", "-", input=pod("private", secret=True))
        assert admitted.returncode == 0, admitted.stderr

        for client in (served.shared, served.mtls):
            reply = client.facts(served.images.private)
            assert reply.status == 403, reply.body
            assert reply.body["reason"] == "unauthorized"
            assert "os" not in reply.body
            items = client.gatekeeper(served.images.private).body["response"]["items"]
            assert len(items) == 1
            assert items[0]["error"].startswith("unauthorized: "), items
            assert "value" not in items[0]
    finally:
        kube.kubectl("delete", "distropolicy", policy, "--ignore-not-found", check=False)


def test_the_own_port_answers_only_clients_with_a_certificate_its_ca_signed(served: Served) -> None:
    reply = served.mtls.facts(served.images.alpine)
    assert reply.status == 200, reply.body
    assert reply.body["libc"]["family"] == "musl"
    reply = served.mtls.gatekeeper(served.images.debian)
    assert reply.body["response"]["items"][0]["value"]["libc"]["family"] == "glibc"
    for refused in (served.mtls_anonymous, served.mtls_stranger):
        # TLS 1.3 sends the server's verdict on the client certificate after the handshake: the refusal
        # surfaces on the first read or write, as an SSL error or a closed connection.
        with pytest.raises((ssl.SSLError, ConnectionError, http.client.RemoteDisconnected)):
            refused.facts(served.images.alpine)


def test_the_facts_paths_refuse_what_is_no_facts_request(served: Served) -> None:
    client = served.shared
    assert client.request("GET", GATEKEEPER_PATH).status == 405
    assert client.request("POST", FACTS_PATH, b"{}").status == 405
    too_many = client.gatekeeper(*(f"{served.images.debian}-{i}" for i in range(101)))
    assert too_many.status == 400
    assert "more than 100 distinct keys" in too_many.body["response"]["systemError"]
    big = client.request("POST", GATEKEEPER_PATH, b"[" + b" " * (300 * 1024) + b"]")
    assert big.status == 413
    assert client.facts("docker-archive:/etc/passwd").status == 400
    bad = client.facts("UPPER/case")
    assert (bad.status, bad.body["reason"]) == (400, "invalid-reference")
    assert client.request("GET", FACTS_PATH).status == 400
    # The webhook is still answering reviews beside the API.
    assert client.request("POST", "/pods", b"{not json").body["kind"] == "AdmissionReview"


# ------------------------------------------------------------------------------ Gatekeeper's own engine


def provider(client: FactsClient, name: str = "distroguard") -> dict[str, Any]:
    """The Provider object the chart renders, for the server `client` talks to."""
    ca = client.context.get_ca_certs(binary_form=True)
    assert len(ca) == 1
    pem = ssl.DER_cert_to_PEM_cert(ca[0])
    return {
        "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
        "kind": "Provider",
        "metadata": {"name": name},
        "spec": {
            "url": f"https://{client.host}:{client.port}{GATEKEEPER_PATH}",
            "timeout": 30,
            "caBundle": base64.b64encode(pem.encode()).decode(),
        },
    }


def workloads(images: Images) -> list[dict[str, Any]]:
    def pod_spec(image: str) -> dict[str, Any]:
        return {"containers": [{"name": "app", "image": image}]}

    def meta(name: str) -> dict[str, str]:
        return {"name": name, "namespace": "default"}

    template = {"metadata": {"labels": {"app": "musl"}}, "spec": pod_spec(images.alpine)}
    return [
        {"apiVersion": "v1", "kind": "Pod", "metadata": meta("musl"), "spec": pod_spec(images.alpine)},
        {"apiVersion": "v1", "kind": "Pod", "metadata": meta("glibc"), "spec": pod_spec(images.debian)},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta("musl-deployment"),
            "spec": {"selector": {"matchLabels": {"app": "musl"}}, "template": template},
        },
    ]


def gatekeeper_violations(
    served: Served,
    client: FactsClient,
    *,
    cert: tuple[Path, Path] | None = None,
    deny_unresolved: bool = False,
) -> list[dict[str, Any]]:
    """The example ConstraintTemplate and Constraint of policies/gatekeeper, evaluated on `workloads` by
    Gatekeeper's engine, its external_data calls sent to the facts API behind `client`."""
    tools = GatekeeperTools.locate()
    inputs = served.workdir / uuid.uuid4().hex[:8]
    inputs.mkdir()
    constraint = yaml.safe_load((GATEKEEPER_POLICIES / "constraint.yaml").read_text())
    constraint["spec"]["parameters"]["denyUnresolved"] = deny_unresolved
    documents = [provider(client), constraint, *workloads(served.images)]
    (inputs / "objects.yaml").write_text(yaml.safe_dump_all(documents))
    argv = [str(tools.externaldata), "-f", str(GATEKEEPER_POLICIES / "template.yaml"), "-f", str(inputs)]
    if cert is not None:
        argv += ["-client-cert", str(cert[0]), "-client-key", str(cert[1])]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_gatekeepers_engine_denies_musl_through_the_provider(served: Served) -> None:
    found = gatekeeper_violations(served, served.shared)
    denied = sorted((v["kind"], v["name"]) for v in found)
    assert denied == [("Deployment", "musl-deployment"), ("Pod", "musl")]
    for violation in found:
        assert violation["constraint"] == "no-musl"
        assert violation["enforcementAction"] == "deny"
        assert f"image {served.images.alpine} is built on musl (alpine " in violation["message"]


def test_gatekeepers_engine_reaches_the_own_port_with_its_client_certificate_only(served: Served) -> None:
    found = gatekeeper_violations(served, served.mtls, cert=served.gatekeeper_cert, deny_unresolved=True)
    assert sorted(v["name"] for v in found) == ["musl", "musl-deployment"]
    # Without a certificate the provider cannot be reached: a system error, denied when asked to be.
    lenient = gatekeeper_violations(served, served.mtls)
    assert lenient == []
    strict = gatekeeper_violations(served, served.mtls, deny_unresolved=True)
    assert sorted(v["name"] for v in strict) == ["glibc", "musl", "musl-deployment"]
    assert all("distroguard's facts API failed" in v["message"] for v in strict)
