"""The Helm chart against the real control plane: it lints, its output passes the API server's own
validation, it installs every object, an upgrade keeps the generated certificate, bad values fail with a
clear message, and the webhook's service account may do what the operator needs and nothing more.

There are no controllers and no kubelet: the Deployment's pods never run. The release's webhooks are
narrowed by values to namespaces carrying a label no other test sets, and the release is uninstalled at
the end, so that other tests never meet it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import ssl
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from distroguard.eol import bundled_snapshot
from support.distros import ALPINE_ROOT
from support.eol_api import EolApiServer
from support.images import ImageBuilder, push
from support.kube import ControlPlane, KubectlError, free_port
from support.operator_process import OperatorProcess
from support.registry_server import RegistryServer
from support.scratch import pull_secret

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "distroguard"
CRDS = CHART / "crds"
SCOPE_LABEL = "distroguard.dev/chart-test"
# Only namespaces labelled by this module are sent to the release's webhooks.
SCOPED = [
    f"--set=webhook.namespaceSelectorExpressions[0].key={SCOPE_LABEL}",
    "--set=webhook.namespaceSelectorExpressions[0].operator=Exists",
]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


# The release is installed into a cluster that already serves the PolicyReport CRDs, as one with Kyverno or
# Policy Reporter would (and as the session's control plane does once `distroguard run --dev` ran): the
# release leaves them alone.
KEEP_REPORT_CRDS = "--set=policyReports.installCRDs=false"
REPORT_CRDS = CHART / "files" / "policyreport-crds.yaml"


def webhook_deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = [
        o
        for o in objects
        if o["kind"] == "Deployment"
        and o["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "webhook"
    ]
    return deployment


def template(kube: ControlPlane, release: str, namespace: str, *values: str) -> list[dict[str, Any]]:
    done = kube.helm("template", release, str(CHART), "--namespace", namespace, *SCOPED, *values)
    return documents(done.stdout)


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    fullname: str
    service_account: str

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"

    @property
    def audit(self) -> Release:
        """The same release, seen as its audit workload's service account."""
        return Release(self.name, self.namespace, self.fullname, f"{self.fullname}-audit")


@pytest.fixture(scope="module")
def release(kube: ControlPlane) -> Iterator[Release]:
    name = unique("dg")
    namespace = unique("distroguard")
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPORT_CRDS))
    kube.helm(
        "install", name, str(CHART), "--namespace", namespace, "--create-namespace", *SCOPED, KEEP_REPORT_CRDS
    )
    fullname = f"{name}-distroguard"
    try:
        yield Release(name, namespace, fullname, fullname)
    finally:
        kube.helm("uninstall", name, "--namespace", namespace, check=False)


def secret_data(kube: ControlPlane, release: Release) -> dict[str, str]:
    secret = kube.kubectl_json("get", "secret", f"{release.fullname}-tls", "-n", release.namespace)
    data: dict[str, str] = secret["data"]
    return data


# --------------------------------------------------------------------------------- lint and render


def test_template_passes_server_side_dry_run(kube: ControlPlane) -> None:
    # The CRDs first, for real (what `helm install` does): a dry run of a DistroPolicy needs its CRD served.
    for crd in sorted(CRDS.glob("*.yaml")):
        kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
    kube.kubectl("wait", "--for=condition=Established", "crd/distropolicies.distroguard.dev")
    namespace = unique("dg-dry")
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    objects = template(
        kube, "dry", namespace, "--set=networkPolicy.enabled=true", "--set=proxy.httpsProxy=http://proxy:3128"
    )
    done = kube.kubectl(
        "apply",
        "--dry-run=server",
        "-n",
        namespace,
        "-f",
        "-",
        input="\n---\n".join(json.dumps(o) for o in objects),
    )
    accepted = [line for line in done.stdout.splitlines() if line.endswith("(server dry run)")]
    assert len(accepted) == len(objects), done.stdout
    kinds = {o["kind"] for o in objects}
    crds = {o["metadata"]["name"] for o in objects if o["kind"] == "CustomResourceDefinition"}
    assert crds == {"policyreports.wgpolicyk8s.io", "clusterpolicyreports.wgpolicyk8s.io"}
    assert kinds >= {
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Secret",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
        "ValidatingWebhookConfiguration",
        "DistroPolicy",
        "NetworkPolicy",
    }


def test_cert_manager_mode_injects_the_ca(kube: ControlPlane) -> None:
    objects = template(kube, "cm", "dg-cm", "--set=certificates.mode=cert-manager")
    assert not [o for o in objects if o["kind"] == "Secret"]
    (configuration,) = [o for o in objects if o["kind"] == "ValidatingWebhookConfiguration"]
    assert configuration["metadata"]["annotations"] == {
        "cert-manager.io/inject-ca-from": "dg-cm/cm-distroguard"
    }
    assert all("caBundle" not in w["clientConfig"] for w in configuration["webhooks"])
    certificates = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Certificate"}
    assert certificates["cm-distroguard"]["spec"]["secretName"] == "cm-distroguard-tls"
    assert "cm-distroguard.dg-cm.svc" in certificates["cm-distroguard"]["spec"]["dnsNames"]


def test_policy_actions_follow_values(kube: ControlPlane) -> None:
    objects = template(
        kube,
        "p",
        "dg-p",
        "--set=policies.action=warn",
        "--set=policies.overrides.no-musl.action=deny",
        "--set=policies.overrides.lts-only.install=false",
    )
    actions = {o["metadata"]["name"]: o["spec"]["action"] for o in objects if o["kind"] == "DistroPolicy"}
    assert actions == {
        "no-musl": "deny",
        "no-eol-distro": "warn",
        "python-base-images": "warn",
        "supported-runtimes": "warn",
    }
    objects = template(kube, "p", "dg-p", "--set=policies.install=false")
    assert not [o for o in objects if o["kind"] == "DistroPolicy"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            ["--set=webhook.failurePolicy=Sometimes"],
            "at '/webhook/failurePolicy': value must be one of 'Ignore', 'Fail'",
        ),
        (["--set=webhook.timeoutSeconds=45"], "at '/webhook/timeoutSeconds'"),
        (["--set=policies.action=block"], "at '/policies/action': value must be one of"),
        (["--set=replicas=3"], "additional properties 'replicas' not allowed"),
        (["--set=webhook.budget=12"], "webhook.budget (12 s) must be below webhook.timeoutSeconds (10 s)"),
        (["--set=certificates.mode=provided"], "certificates.mode=provided needs certificates.caBundle"),
    ],
)
def test_bad_values_fail_the_install_clearly(kube: ControlPlane, values: list[str], message: str) -> None:
    namespace = unique("dg-bad")
    with pytest.raises(KubectlError) as failed:
        kube.helm(
            "install", unique("bad"), str(CHART), "--namespace", namespace, "--create-namespace", *values
        )
    assert message in failed.value.stderr
    assert json.loads(kube.helm("list", "-n", namespace, "-o", "json").stdout) == []


# ------------------------------------------------------------------------------- install, upgrade


def test_install_creates_every_object(kube: ControlPlane, release: Release) -> None:
    manifest = documents(kube.helm("get", "manifest", release.name, "-n", release.namespace).stdout)
    assert len(manifest) >= 13
    for obj in manifest:
        kind, name = obj["kind"], obj["metadata"]["name"]
        namespaced = kind not in {
            "ClusterRole",
            "ClusterRoleBinding",
            "ValidatingWebhookConfiguration",
            "DistroPolicy",
        }
        args = ["get", kind, name, *(["-n", release.namespace] if namespaced else [])]
        found = kube.kubectl_json(*args)
        assert found["metadata"]["labels"]["app.kubernetes.io/instance"] == release.name, (kind, name)
    policies = kube.kubectl_json("get", "distropolicies", "-l", f"app.kubernetes.io/instance={release.name}")
    assert {p["spec"]["action"] for p in policies["items"]} == {"audit"}
    assert len(policies["items"]) == len(list((ROOT / "policies").glob("*.yaml")))
    status = kube.helm("status", release.name, "-n", release.namespace).stdout
    assert "kubectl get imagefacts" in status
    assert "kubectl get policyreports" in status


def test_webhook_configuration_trusts_the_generated_ca(kube: ControlPlane, release: Release) -> None:
    configuration = kube.kubectl_json("get", "validatingwebhookconfiguration", release.fullname)
    ca = secret_data(kube, release)["ca.crt"]
    assert {w["clientConfig"]["caBundle"] for w in configuration["webhooks"]} == {ca}
    data = secret_data(kube, release)
    ca_cert = x509.load_pem_x509_certificate(base64.b64decode(data["ca.crt"]))
    serving = x509.load_pem_x509_certificate(base64.b64decode(data["tls.crt"]))
    serving.verify_directly_issued_by(ca_cert)
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert f"{release.fullname}.{release.namespace}.svc" in names.get_values_for_type(x509.DNSName)
    for webhook in configuration["webhooks"]:
        assert webhook["clientConfig"]["service"]["name"] == release.fullname
        assert webhook["failurePolicy"] == "Ignore"
        names = webhook["namespaceSelector"]["matchExpressions"][0]
        assert names["values"] == sorted(["kube-system", release.namespace])


def test_upgrade_keeps_the_generated_certificate(kube: ControlPlane, release: Release) -> None:
    before = secret_data(kube, release)
    deployment = kube.kubectl_json("get", "deployment", release.fullname, "-n", release.namespace)
    checksum = deployment["spec"]["template"]["metadata"]["annotations"]["checksum/tls"]
    kube.helm(
        "upgrade",
        release.name,
        str(CHART),
        "-n",
        release.namespace,
        "--reuse-values",
        "--set=policies.action=warn",
    )
    assert secret_data(kube, release) == before
    configuration = kube.kubectl_json("get", "validatingwebhookconfiguration", release.fullname)
    assert {w["clientConfig"]["caBundle"] for w in configuration["webhooks"]} == {before["ca.crt"]}
    deployment = kube.kubectl_json("get", "deployment", release.fullname, "-n", release.namespace)
    assert deployment["spec"]["template"]["metadata"]["annotations"]["checksum/tls"] == checksum
    policies = kube.kubectl_json("get", "distropolicies", "-l", f"app.kubernetes.io/instance={release.name}")
    assert {p["spec"]["action"] for p in policies["items"]} == {"warn"}
    history = json.loads(kube.helm("history", release.name, "-n", release.namespace, "-o", "json").stdout)
    assert [revision["status"] for revision in history][-2:] == ["superseded", "deployed"]


def test_deleting_the_secret_renews_the_certificate(kube: ControlPlane, release: Release) -> None:
    """The documented way to a new CA and certificate: delete the Secret, upgrade."""
    before = secret_data(kube, release)
    kube.kubectl("delete", "secret", f"{release.fullname}-tls", "-n", release.namespace)
    kube.helm("upgrade", release.name, str(CHART), "-n", release.namespace, "--reuse-values")
    after = secret_data(kube, release)
    assert after["ca.crt"] != before["ca.crt"]
    assert after["tls.key"] != before["tls.key"]
    configuration = kube.kubectl_json("get", "validatingwebhookconfiguration", release.fullname)
    assert {w["clientConfig"]["caBundle"] for w in configuration["webhooks"]} == {after["ca.crt"]}


# ------------------------------------------------------------------------------------------- RBAC


def token_kubeconfig(kube: ControlPlane, release: Release, directory: Path) -> Path:
    """A kubeconfig holding only a TokenRequest token of the chart's service account."""
    token = kube.kubectl(
        "create", "token", release.service_account, "-n", release.namespace, "--duration=10m"
    ).stdout.strip()
    path = directory / "sa.kubeconfig"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {"server": kube.server, "certificate-authority": str(kube.ca.cert)},
                    }
                ],
                "users": [{"name": "sa", "user": {"token": token}}],
                "contexts": [{"name": "sa", "context": {"cluster": "c", "user": "sa"}}],
                "current-context": "sa",
            }
        )
    )
    return path


OPERATOR_NEEDS = [
    ("list", "distropolicies.distroguard.dev", None),
    ("watch", "distropolicies.distroguard.dev", None),
    ("get", "namespaces", None),
    # A pod's pull secrets, in whichever namespace the pod is: get by name, in every namespace.
    ("get", "secrets", "team-a"),
    ("get", "secrets", "*"),
    ("get", "serviceaccounts", "team-a"),
    ("list", "imagefacts.distroguard.dev", None),
    ("watch", "imagefacts.distroguard.dev", None),
    ("list", "customresourcedefinitions.apiextensions.k8s.io", None),
    # A new pod's controller, to tell whether its template names the pod's images (controlledPods).
    ("get", "replicasets.apps", "team-a"),
    ("get", "statefulsets.apps", "*"),
    ("get", "daemonsets.apps", "team-a"),
    ("get", "jobs.batch", "team-a"),
    ("get", "replicationcontrollers", "team-a"),
    ("watch", "eolcatalogs.distroguard.dev", None),
]
FORBIDDEN = [
    ("create", "secrets", "team-a"),
    ("list", "secrets", "team-a"),
    ("list", "secrets", "*"),
    ("update", "secrets", "team-a"),
    ("delete", "pods", "team-a"),
    ("create", "pods", "team-a"),
    ("patch", "deployments.apps", "team-a"),
    ("update", "validatingwebhookconfigurations.admissionregistration.k8s.io", None),
    ("patch", "validatingwebhookconfigurations.admissionregistration.k8s.io", None),
    ("delete", "validatingwebhookconfigurations.admissionregistration.k8s.io", None),
    ("create", "distropolicies.distroguard.dev", None),
    ("delete", "distropolicies.distroguard.dev", None),
    ("update", "namespaces", None),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io", None),
    ("impersonate", "serviceaccounts", "team-a"),
    # The webhook writes nothing: the audit, with its own account, writes the inventory and the reports.
    ("create", "events", "team-a"),
    ("create", "imagefacts.distroguard.dev", None),
    ("create", "policyreports.wgpolicyk8s.io", "team-a"),
    ("list", "pods", "*"),
    # A pod's controller is read one by one by name, never listed nor watched.
    ("list", "replicasets.apps", "*"),
    ("watch", "statefulsets.apps", "*"),
    ("update", "replicasets.apps", "team-a"),
    ("update", "eolcatalogs.distroguard.dev", None),
    ("create", "eolcatalogs.distroguard.dev", None),
]
AUDIT_NEEDS = [
    ("list", "pods", "*"),
    ("watch", "pods", "*"),
    ("list", "deployments.apps", "*"),
    ("watch", "cronjobs.batch", "*"),
    ("list", "replicationcontrollers", "*"),
    ("get", "secrets", "team-a"),
    ("list", "distropolicies.distroguard.dev", None),
    ("create", "imagefacts.distroguard.dev", None),
    ("update", "imagefacts.distroguard.dev", None),
    ("delete", "imagefacts.distroguard.dev", None),
    ("create", "policyreports.wgpolicyk8s.io", "team-a"),
    ("delete", "policyreports.wgpolicyk8s.io", "team-a"),
    ("update", "clusterpolicyreports.wgpolicyk8s.io", None),
    ("create", "events", "team-a"),
    ("watch", "eolcatalogs.distroguard.dev", None),
    ("create", "eolcatalogs.distroguard.dev", None),
    ("update", "eolcatalogs.distroguard.dev", None),
]
AUDIT_FORBIDDEN = [
    ("list", "secrets", "*"),
    ("create", "pods", "team-a"),
    ("update", "deployments.apps", "team-a"),
    ("delete", "pods", "team-a"),
    ("create", "distropolicies.distroguard.dev", None),
    ("update", "distropolicies.distroguard.dev", None),
    ("patch", "validatingwebhookconfigurations.admissionregistration.k8s.io", None),
    ("update", "namespaces", None),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io", None),
    ("delete", "eolcatalogs.distroguard.dev", None),
]


def can_i(kube: ControlPlane, kubeconfig: Path, verb: str, resource: str, namespace: str | None) -> bool:
    """`namespace`: one namespace, "*" for all of them, None for a cluster-scoped resource."""
    scope = [] if namespace is None else ["--all-namespaces"] if namespace == "*" else ["-n", namespace]
    done = kube.kubectl("--kubeconfig", str(kubeconfig), "auth", "can-i", verb, resource, *scope, check=False)
    answer = done.stdout.strip()
    assert answer in {"yes", "no"}, done.stderr
    return answer == "yes"


def test_service_account_token_can_do_what_the_operator_needs(
    kube: ControlPlane, release: Release, tmp_path: Path
) -> None:
    kubeconfig = token_kubeconfig(kube, release, tmp_path)
    whoami = json.loads(kube.kubectl("--kubeconfig", str(kubeconfig), "auth", "whoami", "-o", "json").stdout)
    assert whoami["status"]["userInfo"]["username"] == release.user
    refused = [need for need in OPERATOR_NEEDS if not can_i(kube, kubeconfig, *need)]
    assert refused == []
    # And for real, with the token: the reads the operator makes.
    kube.kubectl("--kubeconfig", str(kubeconfig), "get", "distropolicies")
    kube.kubectl("--kubeconfig", str(kubeconfig), "get", "namespace", release.namespace)


def test_service_account_can_do_nothing_more(kube: ControlPlane, release: Release, tmp_path: Path) -> None:
    kubeconfig = token_kubeconfig(kube, release, tmp_path)
    allowed = [action for action in FORBIDDEN if can_i(kube, kubeconfig, *action)]
    assert allowed == []
    # Impersonation by the admin agrees with the token's view.
    for verb, resource, namespace in FORBIDDEN[:4]:
        done = kube.kubectl(
            "auth", "can-i", verb, resource, "-n", namespace or "default", as_user=release.user, check=False
        )
        assert done.stdout.strip() == "no", (verb, resource)
    with pytest.raises(KubectlError) as refused:
        kube.kubectl(
            "--kubeconfig", str(kubeconfig), "delete", "validatingwebhookconfiguration", release.fullname
        )
    assert "forbidden" in refused.value.stderr.lower()


def test_the_audit_account_can_do_what_the_audit_needs_and_nothing_more(
    kube: ControlPlane, release: Release, tmp_path: Path
) -> None:
    kubeconfig = token_kubeconfig(kube, release.audit, tmp_path)
    assert [need for need in AUDIT_NEEDS if not can_i(kube, kubeconfig, *need)] == []
    assert [action for action in AUDIT_FORBIDDEN if can_i(kube, kubeconfig, *action)] == []


@pytest.mark.registry
def test_the_audit_runs_with_its_service_account_token(
    kube: ControlPlane, release: Release, registry: RegistryServer, tmp_path: Path
) -> None:
    """The audit with nothing but the chart's audit token: it lists and watches the workloads, writes
    ImageFacts, a PolicyReport and an Event, refreshes the EOLCatalog (and its status), and is never
    refused."""
    kubeconfig = token_kubeconfig(kube, release.audit, tmp_path)
    eol_api = EolApiServer({p.name: p for p in bundled_snapshot().products}).start()
    team = unique("audited")
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": team}})
    repo = unique("chart/alpine")
    image = ImageBuilder().layer(ALPINE_ROOT).build()
    asyncio.run(push(registry.url, repo, "1", image))
    policy = unique("chart-audit")
    kube.create(
        {
            "apiVersion": "distroguard.dev/v1alpha1",
            "kind": "DistroPolicy",
            "metadata": {"name": policy},
            "spec": {
                "action": "audit",
                "match": {"namespaces": [team]},
                "rules": [{"name": "no-musl", "denyLibc": ["musl"]}],
            },
        }
    )
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "app", "namespace": team},
            "spec": {"containers": [{"name": "app", "image": f"{registry.address}/{repo}:1"}]},
        }
    )
    process = OperatorProcess(
        kube,
        "unused",
        release.namespace,
        tmp_path / "run.log",
        [
            *("--kubeconfig", str(kubeconfig)),
            *("--role", "audit", "--audit-debounce", "0.5"),
            *("--liveness", f"http://127.0.0.1:{free_port()}/healthz"),
            *("--metrics-listen", "127.0.0.1", "--metrics-port", "0"),
            # The EOL refresh, from a local endoflife.date: creates the EOLCatalog, writes its status.
            *("--eol-url", eol_api.url),
        ],
        dev=False,
    ).start()
    try:
        process.wait_logged("audit completed: ")
        process.wait_logged("EOL data refreshed from")
        assert kube.kubectl_json("get", "eolcatalog", "default")["status"]["checked"]
        report = kube.kubectl_json("get", "policyreport", "-n", team, "distroguard-pod-app")
        assert {(r["rule"], r["result"]) for r in report["results"] if r["policy"] == policy} == {
            ("no-musl", "fail")
        }
        facts = kube.kubectl_json("get", "imagefacts", image.digest.replace(":", "-"))
        assert facts["spec"]["platforms"][0]["libc"]["family"] == "musl"
        events = kube.kubectl_json("get", "events", "-n", team)["items"]
        assert any(e["reason"] == "DistroPolicyViolation" for e in events)
        assert process.alive()
    finally:
        code = process.stop()
        eol_api.stop()
        kube.kubectl("delete", "distropolicy", policy, check=False)
        kube.kubectl("delete", "eolcatalog", "default", "--ignore-not-found", check=False)
    log = process.log_text()
    assert code == 0, log[-4000:]
    assert not _refusals(log), log[-4000:]


def test_operator_runs_with_the_service_account_token(
    kube: ControlPlane, release: Release, tmp_path: Path
) -> None:
    """The operator itself, with nothing but the chart's service-account token: it starts, watches the
    policies, and reads a namespace, a service account and its pull secret, and the pod's controller, for a
    review, never refused."""
    kubeconfig = token_kubeconfig(kube, release, tmp_path)
    team = unique("team")
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": team}})
    registry = f"127.0.0.1:{free_port()}"  # nothing listens: the lookup fails fast, after the reads
    kube.create(pull_secret(team, registry, "user", "secret"))
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "app", "namespace": team},
            "imagePullSecrets": [{"name": "pull"}],
        }
    )
    image = f"{registry}/a:1"
    template = {
        "metadata": {"labels": {"app": "a"}},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }
    owner = kube.create(
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "app-7d9", "namespace": team},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "a"}}, "template": template},
        }
    )
    policy = unique("chart-rbac")
    tls = kube.issue_server_cert(unique("chart-webhook"), ips=["127.0.0.1"], dns=["localhost"])
    port, liveness = free_port(), free_port()
    process = OperatorProcess(
        kube,
        "unused",
        release.namespace,
        tmp_path / "run.log",
        [
            *("--kubeconfig", str(kubeconfig)),  # the last --kubeconfig wins: the token's
            *("--listen", "127.0.0.1", "--port", str(port)),
            *("--cert-file", str(tls.cert), "--key-file", str(tls.key)),
            *("--liveness", f"http://127.0.0.1:{liveness}/healthz", "--metrics-port", "0"),
            *("--metrics-listen", "127.0.0.1"),
        ],
        dev=False,
    ).start()
    try:
        process.wait_logged("serving admission webhooks at https://127.0.0.1:")
        process.wait_logged("policy no-musl loaded")  # the chart's policies, through the watch
        # Its image cannot be inspected, which this policy denies: the pod's controller is read.
        kube.create(
            {
                "apiVersion": "distroguard.dev/v1alpha1",
                "kind": "DistroPolicy",
                "metadata": {"name": policy},
                "spec": {
                    "action": "audit",
                    "onUnresolved": "deny",
                    "match": {"namespaces": [team]},
                    "rules": [{"name": "no-musl", "denyLibc": ["musl"]}],
                },
            }
        )
        process.wait_logged(f"policy {policy} loaded")

        controller = {k: owner[k] for k in ("apiVersion", "kind")}
        controller.update(name=owner["metadata"]["name"], uid=owner["metadata"]["uid"], controller=True)
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "app", "namespace": team, "ownerReferences": [controller]},
            "spec": {"serviceAccountName": "app", "containers": [{"name": "app", "image": image}]},
        }
        review = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u-chart",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "operation": "CREATE",
                "namespace": team,
                "userInfo": {"username": "e2e"},
                "object": pod,
            },
        }
        context = ssl.create_default_context(cafile=str(kube.ca.cert))
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )
        request = urllib.request.Request(
            f"https://127.0.0.1:{port}/pods",
            data=json.dumps(review).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with opener.open(request, timeout=30) as response:
            answer = json.loads(response.read())["response"]
        assert answer["uid"] == "u-chart"
        assert answer["allowed"] is True, answer
        assert any(
            w.startswith(f"allowed: pod of ReplicaSet {team}/app-7d9,") for w in answer.get("warnings", ())
        ), answer
        assert process.alive()
    finally:
        kube.kubectl("delete", "distropolicy", policy, check=False)
        kube.kubectl("delete", "replicaset", "app-7d9", "-n", team, check=False)
        code = process.stop()
    log = process.log_text()
    assert code == 0, log[-4000:]
    assert not _refusals(log), log[-4000:]


_REFUSAL = re.compile(r"(?<![\w.,:-])403(?![\w.,:-])|[Ff]orbidden")
"""The API server's refusal in a log: status 403 standing alone (not inside a generated name such as
`chart-rbac-d140377c`, nor a timestamp's milliseconds), or its reason."""


def _refusals(log: str) -> list[str]:
    return _REFUSAL.findall(log)


def test_a_refusal_is_found_in_a_log_but_not_in_names_or_timestamps() -> None:
    assert _refusals("kubernetes.client ApiException: (403)\nReason: Forbidden")
    assert _refusals("HTTP 403 for GET /apis")
    assert not _refusals("[2026-12-07 10:24:42,403] policy chart-rbac-d140377c loaded, uid 403e1")


def _stand_in_crd(group: str, kind: str, plural: str) -> dict[str, Any]:
    """A CRD that accepts any object of a kind (the real one belongs to its project's installer)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }


def test_deploy_applies_with_kustomize(kube: ControlPlane) -> None:
    """`kubectl apply -k deploy/`, as a server-side dry run, with cert-manager's kinds served."""
    for kind, plural in (("Issuer", "issuers"), ("Certificate", "certificates")):
        crd = _stand_in_crd("cert-manager.io", kind, plural)
        if kube.kubectl("get", "crd", crd["metadata"]["name"], check=False).returncode != 0:
            kube.create(crd)
        kube.kubectl("wait", "--for=condition=Established", f"crd/{crd['metadata']['name']}")
    for crd in sorted(CRDS.glob("*.yaml")):
        kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
    # A dry run creates nothing, so the namespace that the manifests' other objects live in must exist.
    kube.kubectl("apply", "-f", str(ROOT / "deploy" / "namespace.yaml"))
    built = documents(kube.kubectl("kustomize", str(ROOT / "deploy")).stdout)
    done = kube.kubectl("apply", "--dry-run=server", "-k", str(ROOT / "deploy"))
    accepted = [line for line in done.stdout.splitlines() if line.endswith("(server dry run)")]
    assert len(accepted) == len(built), done.stdout
    assert {"Certificate", "Issuer", "ValidatingWebhookConfiguration", "Deployment"} <= {
        o["kind"] for o in built
    }


def test_pods_pass_the_restricted_pod_security_standard(kube: ControlPlane) -> None:
    namespace = unique("dg-restricted")
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
        }
    )
    deployments = [o for o in template(kube, "psa", namespace) if o["kind"] == "Deployment"]
    assert len(deployments) == 2  # the webhook and the audit
    for deployment in deployments:
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": deployment["metadata"]["name"],
                "namespace": namespace,
                **deployment["spec"]["template"]["metadata"],
            },
            "spec": deployment["spec"]["template"]["spec"],
        }
        done = kube.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False)
        assert done.returncode == 0, done.stderr
        assert "violate" not in done.stderr
    # The check is real: the same pod without its security context is refused.
    pod["spec"] = {**pod["spec"], "securityContext": {}}
    pod["spec"]["containers"] = [{**c, "securityContext": {}} for c in pod["spec"]["containers"]]
    done = kube.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False)
    assert "violates PodSecurity" in done.stderr


@pytest.mark.parametrize(
    "values",
    [
        [],
        ["--set=certificates.mode=cert-manager", "--set=metrics.serviceMonitor.enabled=true"],
        [
            "--set=certificates.mode=provided",
            "--set=certificates.secretName=mine",
            "--set=certificates.caBundle=Q0E=",
        ],
        ["--set=networkPolicy.enabled=true", "--set=webhook.failurePolicy=Fail", "--set=replicaCount=3"],
        ["--set=proxy.existingSecret=proxy", "--set=proxy.noProxy={.svc,10.0.0.0/8}"],
    ],
)
def test_lint_is_clean_with_each_mode(kube: ControlPlane, values: list[str]) -> None:
    done = kube.helm("lint", "--strict", str(CHART), *values)
    assert "0 chart(s) failed" in done.stdout
    assert "[WARNING]" not in done.stdout


def test_provided_mode_uses_your_secret_and_ca(kube: ControlPlane) -> None:
    objects = template(
        kube,
        "own",
        "dg-own",
        "--set=certificates.mode=provided",
        "--set=certificates.secretName=mine",
        "--set=certificates.caBundle=Q0E=",
    )
    assert not [o for o in objects if o["kind"] in {"Secret", "Certificate", "Issuer"}]
    (configuration,) = [o for o in objects if o["kind"] == "ValidatingWebhookConfiguration"]
    assert {w["clientConfig"]["caBundle"] for w in configuration["webhooks"]} == {"Q0E="}
    volumes = {v["name"]: v for v in webhook_deployment(objects)["spec"]["template"]["spec"]["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "mine"
