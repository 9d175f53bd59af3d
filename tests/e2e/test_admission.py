"""The admission webhook end to end: `distroguard run --dev` against the real kube-apiserver, images in the
real registry, policies as DistroPolicy objects, and `kubectl` saying what a user sees.

One distroguard process serves the whole module. Policies are cluster-scoped, so each test's policy
matches only the test's own namespaces; every name is unique. Each test removes what it made, whatever
happens: its policies (by label) and its namespaces with everything in them (`support.scratch`), so that
no later test, nor an audit of the whole cluster, meets them.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import os
import re
import shutil
import socket
import ssl
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.distros import (
    ALPINE_ROOT,
    DEBIAN_9_ROOT,
    DEBIAN_12_ROOT,
    DISTROLESS_STATIC_ROOT,
    SCRATCH_STATIC_ROOT,
)
from support.images import ImageBuilder, push
from support.kube import SERVICE_CIDR, ControlPlane, KeyPair, free_port
from support.manifests import deployment
from support.operator_process import OperatorProcess
from support.proxy import ThreadedProxy
from support.registry_server import RegistryServer, push_root
from support.scratch import Scratch, pull_secret

pytestmark = [pytest.mark.e2e, pytest.mark.registry]

GLIBC_HINT = "use a glibc-based base image"
POLICIES = Path(__file__).resolve().parents[2] / "policies"
UNINSPECTED = "could not be inspected"
FAILURE_TTL = 1.0
"""Seconds distroguard remembers a failed lookup (`--failure-ttl`): a registry back is seen at once."""
TOO_LONG_IMAGE = "x" * 5000  # refused by distroguard alone: proves its webhook is being called
POLICY_LABELS = {"e2e.distroguard.dev/module": "admission"}
"""On every policy made here: removed after each test (policies are cluster-wide; others list them too)."""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def eventually(check: Callable[[], bool], *, timeout: float = 30.0, what: str) -> None:
    """Watches and the API server's webhook cache are asynchronous: poll until `check` holds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:.0f}s: {what}")
        time.sleep(0.3)


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def images(registry: RegistryServer) -> dict[str, str]:
    """Image references in the anonymous registry, by name."""

    return {
        "alpine": push_root(registry, unique("e2e/alpine"), ALPINE_ROOT),
        "debian": push_root(registry, unique("e2e/debian"), DEBIAN_12_ROOT),
        "debian9": push_root(registry, unique("e2e/debian9"), DEBIAN_9_ROOT),
        "distroless": push_root(registry, unique("e2e/distroless-static"), DISTROLESS_STATIC_ROOT),
        "scratch": push_root(registry, unique("e2e/scratch"), SCRATCH_STATIC_ROOT),
    }


@pytest.fixture(scope="module")
def distroguard(kube: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    scratch = Scratch(kube)
    own = scratch.namespace("distroguard")
    log = tmp_path_factory.mktemp("distroguard") / "run.log"
    process = OperatorProcess(
        kube, unique("distroguard-e2e"), own, log, ["--metrics-port", "0", "--failure-ttl", str(FAILURE_TTL)]
    )
    try:
        process.start()
        process.wait_registered()
        probe_ns = scratch.namespace("probe")

        def answering() -> bool:
            done = kube.kubectl(
                "create",
                "--dry-run=server",
                "-f",
                "-",
                input=json.dumps(pod(probe_ns, "probe", TOO_LONG_IMAGE)),
                check=False,
            )
            return done.returncode != 0 and "longer than 4096 characters" in done.stderr

        eventually(answering, what="the API server calls distroguard")
        yield process
    finally:
        code = process.stop()
        print(process.log_text()[-6000:])
        scratch.close()
    assert code == 0, "distroguard run did not stop cleanly on SIGTERM"


@pytest.fixture(autouse=True)
def _remove_policies(kube: ControlPlane) -> Iterator[None]:
    yield
    selector = ",".join(f"{key}={value}" for key, value in POLICY_LABELS.items())
    kube.kubectl("delete", "distropolicies", "-l", selector, "--ignore-not-found", check=False)


_SCRATCH: list[Scratch] = []
"""The running test's namespaces (one entry while a test runs)."""


@pytest.fixture(autouse=True)
def _remove_namespaces(kube: ControlPlane) -> Iterator[None]:
    scratch = Scratch(kube)
    _SCRATCH.append(scratch)
    try:
        yield
    finally:
        _SCRATCH.remove(scratch)
        scratch.close()


def namespace(kube: ControlPlane, prefix: str, labels: dict[str, str] | None = None) -> str:
    """A namespace for the running test, removed with everything in it when the test ends."""
    assert _SCRATCH[-1].kube is kube
    return _SCRATCH[-1].namespace(prefix, labels)


def pod(
    ns: str, name: str, image: str, *, container: str = "app", pull_secret: str | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": container, "image": image}]}
    if pull_secret:
        spec["imagePullSecrets"] = [{"name": pull_secret}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def apply_policy(
    kube: ControlPlane, name: str, ns: str, *, action: str = "deny", on_unresolved: str = "warn"
) -> None:
    """A no-musl policy covering namespace `ns` only."""
    document = {
        "apiVersion": "distroguard.dev/v1alpha1",
        "kind": "DistroPolicy",
        "metadata": {"name": name, "labels": POLICY_LABELS},
        "spec": {
            "action": action,
            "onUnresolved": on_unresolved,
            "match": {"namespaces": [ns]},
            "rules": [{"name": "no-musl", "denyLibc": ["musl"]}],
        },
    }
    kube.kubectl("apply", "-f", "-", input=json.dumps(document))


def apply_policy_file(kube: ControlPlane, file: str, ns: str, **spec: Any) -> str:
    """A policy of `policies/` as shipped, renamed and narrowed to namespace `ns`, `spec` fields replaced."""
    document = yaml.safe_load((POLICIES / file).read_text())
    name = unique(document["metadata"]["name"])
    document["metadata"] = {"name": name, "labels": POLICY_LABELS}
    document["spec"] = {**document["spec"], **spec, "match": {"namespaces": [ns]}}
    kube.kubectl("apply", "-f", "-", input=json.dumps(document))
    return name


def apply(kube: ControlPlane, manifest: dict[str, Any], *, dry_run: bool = False) -> Any:
    args = ["apply", "-f", "-", *(["--dry-run=server"] if dry_run else [])]
    return kube.kubectl(*args, input=json.dumps(manifest), check=False)


def wait_denied(kube: ControlPlane, manifest: dict[str, Any], text: str) -> None:
    """Until a dry run is refused with `text` (the policy has reached distroguard's watch)."""

    def denied() -> bool:
        done = apply(kube, manifest, dry_run=True)
        return done.returncode != 0 and text in done.stderr

    eventually(denied, what=f"a dry run refused with {text!r}")


# ------------------------------------------------------------------------------------------------ tests


def test_deny_policy_refuses_an_alpine_deployment_naming_container_musl_and_remedy(
    kube: ControlPlane, distroguard: OperatorProcess, images: dict[str, str]
) -> None:
    ns = namespace(kube, "deny")
    apply_policy(kube, unique("no-musl"), ns)
    manifest = deployment(ns, "web", images["alpine"], container="frontend")
    wait_denied(kube, manifest, "musl")

    done = apply(kube, manifest)
    assert done.returncode != 0
    assert "denied the request" in done.stderr
    assert 'container "frontend"' in done.stderr
    assert images["alpine"] in done.stderr
    assert "musl" in done.stderr
    assert GLIBC_HINT in done.stderr
    assert kube.kubectl("get", "deployment", "web", "-n", ns, check=False).returncode != 0


def test_deny_policy_refuses_an_alpine_pod_and_admits_debian_12(
    kube: ControlPlane, distroguard: OperatorProcess, images: dict[str, str]
) -> None:
    ns = namespace(kube, "pod")
    apply_policy(kube, unique("no-musl"), ns)
    wait_denied(kube, pod(ns, "probe", images["alpine"]), "musl")

    denied = apply(kube, pod(ns, "alpine", images["alpine"], container="worker"))
    assert denied.returncode != 0
    assert 'container "worker"' in denied.stderr
    assert "musl" in denied.stderr
    assert GLIBC_HINT in denied.stderr

    admitted = apply(kube, pod(ns, "debian", images["debian"]))
    assert admitted.returncode == 0, admitted.stderr
    assert "Warning" not in admitted.stderr
    assert kube.kubectl_json("get", "pod", "debian", "-n", ns)["metadata"]["name"] == "debian"


def test_warn_policy_creates_the_deployment_with_a_warning(
    kube: ControlPlane, distroguard: OperatorProcess, images: dict[str, str]
) -> None:
    ns = namespace(kube, "warn")
    policy = unique("no-musl")
    apply_policy(kube, policy, ns, action="warn")

    def warned() -> bool:
        done = apply(kube, deployment(ns, "probe", images["alpine"]), dry_run=True)
        return done.returncode == 0 and "Warning:" in done.stderr

    eventually(warned, what="the warn policy reaches distroguard")
    done = apply(kube, deployment(ns, "web", images["alpine"]))
    assert done.returncode == 0, done.stderr
    assert "Warning:" in done.stderr
    assert "musl" in done.stderr
    assert kube.kubectl_json("get", "deployment", "web", "-n", ns)["metadata"]["name"] == "web"


def test_audit_policy_creates_silently(
    kube: ControlPlane, distroguard: OperatorProcess, images: dict[str, str]
) -> None:
    ns = namespace(kube, "audit")
    policy = unique("no-musl")
    apply_policy(kube, policy, ns)  # deny first, so that the switch to audit is observable
    wait_denied(kube, deployment(ns, "probe", images["alpine"]), "musl")
    apply_policy(kube, policy, ns, action="audit")

    def silent() -> bool:
        done = apply(kube, deployment(ns, "probe", images["alpine"]), dry_run=True)
        return done.returncode == 0 and "Warning" not in done.stderr

    eventually(silent, what="the audit policy reaches distroguard")
    done = apply(kube, deployment(ns, "web", images["alpine"]))
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr


def test_a_policy_change_applies_without_a_restart(
    kube: ControlPlane, distroguard: OperatorProcess, images: dict[str, str]
) -> None:
    ns = namespace(kube, "change")
    policy = unique("no-musl")
    apply_policy(kube, policy, ns)
    wait_denied(kube, deployment(ns, "probe", images["alpine"]), "musl")
    pid = distroguard.popen.pid if distroguard.popen else None

    apply_policy(kube, policy, ns, action="warn")

    def warned() -> bool:
        done = apply(kube, deployment(ns, "web", images["alpine"]))
        return done.returncode == 0 and "Warning:" in done.stderr

    eventually(warned, what="the changed policy applies")
    assert distroguard.alive()
    assert distroguard.popen is not None
    assert distroguard.popen.pid == pid

    kube.kubectl("delete", "distropolicy", policy)

    def unchecked() -> bool:
        done = apply(kube, deployment(ns, unique("later"), images["alpine"]))
        return done.returncode == 0 and "Warning" not in done.stderr

    eventually(unchecked, what="a deleted policy no longer applies")


def test_an_opted_out_namespace_is_not_validated(
    kube: ControlPlane, distroguard: OperatorProcess, images: dict[str, str]
) -> None:
    checked = namespace(kube, "checked")
    ignored = namespace(kube, "ignored", {"distroguard.dev/ignore": "true"})
    policy = unique("no-musl")
    apply_policy(kube, policy, checked)
    # The same policy, widened to the opted-out namespace too: it must still not apply there.
    document = kube.kubectl_json("get", "distropolicy", policy)
    document["spec"]["match"]["namespaces"] = [checked, ignored]
    kube.kubectl("apply", "-f", "-", input=json.dumps(document))
    wait_denied(kube, deployment(checked, "probe", images["alpine"]), "musl")

    done = apply(kube, deployment(ignored, "web", images["alpine"]))
    assert done.returncode == 0, done.stderr
    # Not even an object distroguard cannot check is refused there: the API server does not call it.
    odd = apply(kube, pod(ignored, "odd", TOO_LONG_IMAGE))
    assert odd.returncode == 0, odd.stderr


def test_a_private_image_resolves_only_with_its_pull_secret(
    kube: ControlPlane, distroguard: OperatorProcess, basic_registry: RegistryServer
) -> None:
    repo = unique("e2e/private")
    auth = basic_registry.push_auth
    asyncio.run(push(basic_registry.url, repo, "1", ImageBuilder().layer(DEBIAN_12_ROOT).build(), auth=auth))
    image = f"{basic_registry.address}/{repo}:1"
    with_secret, without_secret = namespace(kube, "secret"), namespace(kube, "nosecret")
    policy = unique("no-musl")
    apply_policy(kube, policy, with_secret, on_unresolved="deny")
    document = kube.kubectl_json("get", "distropolicy", policy)
    document["spec"]["match"]["namespaces"] = [with_secret, without_secret]
    kube.kubectl("apply", "-f", "-", input=json.dumps(document))

    assert basic_registry.username
    assert basic_registry.password
    registry, user, password = basic_registry.address, basic_registry.username, basic_registry.password
    kube.create(pull_secret(with_secret, registry, user, password))
    # Without the secret, the image cannot be read: onUnresolved decides.
    wait_denied(kube, pod(with_secret, "probe", image), UNINSPECTED)

    admitted = apply(kube, pod(with_secret, "private", image, pull_secret="pull"))
    assert admitted.returncode == 0, admitted.stderr

    # What that namespace's credentials read serves nobody else: not even a pod naming a secret of
    # the same name that its own namespace does not have.
    denied = apply(kube, pod(without_secret, "private", image, pull_secret="pull"))
    assert denied.returncode != 0
    assert UNINSPECTED in denied.stderr


def test_an_unreachable_registry_follows_on_unresolved(
    kube: ControlPlane, distroguard: OperatorProcess
) -> None:
    image = f"127.0.0.1:{free_port()}/nowhere/app:1"  # nothing listens there
    strict, lenient = namespace(kube, "strict"), namespace(kube, "lenient")
    apply_policy(kube, unique("no-musl"), strict, on_unresolved="deny")
    apply_policy(kube, unique("no-musl"), lenient, on_unresolved="allow")
    wait_denied(kube, pod(strict, "probe", image), UNINSPECTED)

    denied = apply(kube, pod(strict, "app", image))
    assert denied.returncode != 0
    assert f"its image {UNINSPECTED}" in denied.stderr
    assert "nowhere/app" in denied.stderr

    admitted = apply(kube, pod(lenient, "app", image))
    assert admitted.returncode == 0, admitted.stderr
    assert "Warning:" in admitted.stderr  # allowed, and told why it was not checked
    assert UNINSPECTED in admitted.stderr
    assert "onUnresolved: allow" in admitted.stderr


def test_a_stopped_registry_follows_on_unresolved_and_the_retry_passes_once_it_is_back(
    kube: ControlPlane, distroguard: OperatorProcess, registry: RegistryServer
) -> None:
    repo = unique("e2e/comeback")
    asyncio.run(push(registry.url, repo, "1", ImageBuilder().layer(DEBIAN_12_ROOT).build()))
    # The image is read through a proxy on an address of its own: stopping the proxy stops "the
    # registry" for this image only, and it comes back on the same address.
    proxy = ThreadedProxy(registry.url).start()
    try:
        image = f"{proxy.address}/{repo}:1"
        proxy.stop()
        strict, lenient, warned = (
            namespace(kube, "strict"),
            namespace(kube, "lenient"),
            namespace(kube, "warned"),
        )
        apply_policy(kube, unique("no-musl"), strict, on_unresolved="deny")
        apply_policy(kube, unique("no-musl"), lenient, on_unresolved="allow")
        apply_policy(kube, unique("no-musl"), warned, on_unresolved="warn")
        wait_denied(kube, pod(strict, "probe", image), UNINSPECTED)

        denied = apply(kube, pod(strict, "app", image))
        assert denied.returncode != 0
        assert 'container "app"' in denied.stderr
        assert repo in denied.stderr
        assert f"its image {UNINSPECTED}" in denied.stderr
        assert "onUnresolved: deny" in denied.stderr

        allowed = apply(kube, pod(lenient, "app", image))
        assert allowed.returncode == 0, allowed.stderr
        assert "Warning:" in allowed.stderr
        assert UNINSPECTED in allowed.stderr
        assert "onUnresolved: allow" in allowed.stderr
        warning = apply(kube, pod(warned, "app", image))
        assert warning.returncode == 0, warning.stderr
        assert "Warning:" in warning.stderr
        assert UNINSPECTED in warning.stderr

        proxy.start()  # the registry is back: after the failure TTL, the next attempt reads it
        eventually(
            lambda: apply(kube, pod(strict, unique("retry"), image)).returncode == 0,
            timeout=10 * FAILURE_TTL + 20,
            what="the retry is admitted once the registry is back",
        )
        assert proxy.proxy.count(kind="manifests") > 0
    finally:
        proxy.close()


def test_an_eol_debian_9_image_is_denied_by_no_eol_distro(
    kube: ControlPlane, distroguard: OperatorProcess, images: dict[str, str]
) -> None:
    ns = namespace(kube, "eol")
    policy = apply_policy_file(kube, "no-eol-distro.yaml", ns)
    manifest = deployment(ns, "web", images["debian9"], container="legacy")
    wait_denied(kube, manifest, "past the end")

    done = apply(kube, manifest)
    assert done.returncode != 0
    assert 'container "legacy"' in done.stderr
    assert images["debian9"] in done.stderr
    assert "Debian" in done.stderr
    assert "9" in done.stderr
    assert "glibc 2.24" in done.stderr
    assert f"policy {policy}" in done.stderr
    assert kube.kubectl("get", "deployment", "web", "-n", ns, check=False).returncode != 0

    current = apply(kube, deployment(ns, "current", images["debian"]))
    assert current.returncode == 0, current.stderr


def test_distroless_static_and_scratch_under_require_known_os_and_no_musl(
    kube: ControlPlane, distroguard: OperatorProcess, images: dict[str, str]
) -> None:
    """no-musl lets static binaries pass (no C library at all); requireKnownOS refuses an image with no OS
    unless it allows static binaries; distroless static has Debian's os-release and no libc: it passes."""
    ns = namespace(kube, "static")
    rules = [{"name": "no-musl", "denyLibc": ["musl"]}, {"name": "known-os", "requireKnownOS": {}}]
    policy = apply_policy_file(kube, "no-musl.yaml", ns, rules=rules)
    wait_denied(kube, pod(ns, "probe", images["scratch"]), "no OS and no C library")

    denied = apply(kube, pod(ns, "scratch", images["scratch"], container="static"))
    assert denied.returncode != 0
    assert 'container "static"' in denied.stderr
    assert "no OS and no C library" in denied.stderr
    assert "allowStatic" in denied.stderr  # the remedy

    distroless = apply(kube, pod(ns, "distroless", images["distroless"]))
    assert distroless.returncode == 0, distroless.stderr
    assert "Warning" not in distroless.stderr

    allow_static = [rules[0], {"name": "known-os", "requireKnownOS": {"allowStatic": True}}]
    document = kube.kubectl_json("get", "distropolicy", policy)
    document["spec"]["rules"] = allow_static
    kube.kubectl("apply", "-f", "-", input=json.dumps(document))
    eventually(
        lambda: apply(kube, pod(ns, "scratch", images["scratch"])).returncode == 0,
        what="allowStatic admits the scratch image",
    )

    plain = namespace(kube, "plain")
    apply_policy_file(kube, "no-musl.yaml", plain)  # as shipped: static binaries pass
    wait_denied(kube, pod(plain, "probe", images["alpine"]), "musl")
    scratch = apply(kube, pod(plain, "scratch", images["scratch"]))
    assert scratch.returncode == 0, scratch.stderr
    assert "Warning" not in scratch.stderr


def test_the_webhook_configuration_leaves_kube_system_and_its_own_namespace_out(
    kube: ControlPlane, distroguard: OperatorProcess
) -> None:
    configuration = kube.kubectl_json("get", "validatingwebhookconfiguration", distroguard.webhook_name)
    paths = {webhook["clientConfig"]["url"].rsplit("/", 1)[1] for webhook in configuration["webhooks"]}
    assert {"pods", "ephemeralcontainers", "deployments", "cronjobs", "jobs"} <= paths
    for webhook in configuration["webhooks"]:
        expressions = webhook["namespaceSelector"]["matchExpressions"]
        names = next(e for e in expressions if e["key"] == "kubernetes.io/metadata.name")
        assert set(names["values"]) == {"kube-system", distroguard.namespace}
        assert webhook["timeoutSeconds"] == 10
    for ns in (distroguard.namespace, "kube-system"):
        name = unique("odd")
        try:
            odd = apply(kube, pod(ns, name, TOO_LONG_IMAGE))
            assert odd.returncode == 0, odd.stderr
        finally:
            kube.kubectl("delete", "pod", name, "-n", ns, "--ignore-not-found", "--wait=false", check=False)


def test_ephemeral_containers_are_checked(
    kube: ControlPlane, distroguard: OperatorProcess, images: dict[str, str]
) -> None:
    ns = namespace(kube, "debug")
    apply_policy(kube, unique("no-musl"), ns)
    wait_denied(kube, pod(ns, "probe", images["alpine"]), "musl")
    created = apply(kube, pod(ns, "app", images["debian"]))
    assert created.returncode == 0, created.stderr

    debug = kube.kubectl(
        "debug", "app", "-n", ns, f"--image={images['alpine']}", "--container=dbg", check=False
    )
    assert debug.returncode != 0
    assert 'container "dbg"' in debug.stderr
    assert "musl" in debug.stderr
    stored = kube.kubectl_json("get", "pod", "app", "-n", ns)
    assert not stored["spec"].get("ephemeralContainers")


def _review(uid: str, resource: str, kind: str, obj: dict[str, Any]) -> bytes:
    group = "apps" if kind == "Deployment" else ""
    return json.dumps(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": uid,
                "kind": {"group": group, "version": "v1", "kind": kind},
                "resource": {"group": group, "version": "v1", "resource": resource},
                "operation": "CREATE",
                "namespace": "default",
                "userInfo": {"username": "e2e"},
                "object": obj,
            },
        }
    ).encode()


def test_unknown_paths_and_kinds_are_never_allowed_silently(
    kube: ControlPlane, distroguard: OperatorProcess
) -> None:
    configuration = kube.kubectl_json("get", "validatingwebhookconfiguration", distroguard.webhook_name)
    client = configuration["webhooks"][0]["clientConfig"]
    base = client["url"].rsplit("/", 1)[0]
    context = ssl.create_default_context(cadata=base64.b64decode(client["caBundle"]).decode())
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )

    def post(path: str, body: bytes) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{base}/{path}", data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with opener.open(request, timeout=30) as response:
            answer: dict[str, Any] = json.loads(response.read())["response"]
            return answer

    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "default"}}
    a_pod = pod("default", "x", "debian:12")
    for path, body, uid in [
        ("configmaps", _review("u-1", "configmaps", "ConfigMap", configmap), "u-1"),
        ("pods", _review("u-2", "configmaps", "ConfigMap", configmap), "u-2"),
        ("deployments", _review("u-3", "pods", "Pod", a_pod), "u-3"),
        (
            "pods",
            b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u-4"}}',
            "u-4",
        ),
        ("pods", b"not json", ""),
    ]:
        answer = post(path, body)
        assert answer["allowed"] is False, (path, answer)
        assert answer["uid"] == uid
        assert answer["status"]["code"] == 400


def test_metrics_count_the_answers(
    kube: ControlPlane, distroguard: OperatorProcess, images: dict[str, str]
) -> None:
    found = re.search(r"metrics on 127\.0\.0\.1:(\d+)/metrics", distroguard.log_text())
    assert found, "the metrics endpoint was not announced"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def counts() -> dict[str, float]:
        with opener.open(f"http://127.0.0.1:{found.group(1)}/metrics", timeout=10) as response:
            text = response.read().decode()
        pattern = r'^distroguard_admission_requests_total\{verdict="(\w+)"\} (\S+)$'
        return {verdict: float(n) for verdict, n in re.findall(pattern, text, re.M)}

    ns = namespace(kube, "metrics")
    apply_policy(kube, unique("no-musl"), ns)
    wait_denied(kube, pod(ns, "probe", images["alpine"]), "musl")
    before = counts()
    assert apply(kube, pod(ns, "alpine", images["alpine"])).returncode != 0
    admitted = apply(kube, pod(ns, "debian", images["debian"]))
    assert admitted.returncode == 0, admitted.stderr
    after = counts()
    assert after.get("deny", 0) >= before.get("deny", 0) + 1, (before, after)
    assert after.get("allow", 0) >= before.get("allow", 0) + 1, (before, after)


def test_an_invalid_policy_is_ignored_and_the_others_keep_working(
    kube: ControlPlane, distroguard: OperatorProcess, images: dict[str, str]
) -> None:
    ns = namespace(kube, "invalid")
    broken = unique("broken")
    # The CRD lets a distribution be a string or an object, so this passes the API server's schema;
    # distroguard's own validation refuses it.
    document = {
        "apiVersion": "distroguard.dev/v1alpha1",
        "kind": "DistroPolicy",
        "metadata": {"name": broken, "labels": POLICY_LABELS},
        "spec": {"match": {"namespaces": [ns]}, "rules": [{"name": "odd", "allowDistros": [{"bogus": 1}]}]},
    }
    kube.kubectl("apply", "-f", "-", input=json.dumps(document))
    apply_policy(kube, unique("no-musl"), ns)

    wait_denied(kube, deployment(ns, "probe", images["alpine"]), "musl")
    eventually(
        lambda: f"DistroPolicy {broken}" in distroguard.log_text(), what="the invalid policy is logged"
    )
    assert "ignored until it is fixed" in distroguard.log_text()
    assert distroguard.alive()
    admitted = apply(kube, deployment(ns, "web", images["debian"]))
    assert admitted.returncode == 0, admitted.stderr


def _mount(directory: Path, pair: KeyPair, generation: int) -> None:
    """Put a key pair where a Secret volume would, the way the kubelet does: files in a fresh directory,
    then one atomic rename of the `..data` link, so that a reader never sees a new certificate with an
    old key."""
    target = directory / f"..{generation}"
    target.mkdir()
    shutil.copy(pair.cert, target / "tls.crt")
    shutil.copy(pair.key, target / "tls.key")
    link = directory / "..data_tmp"
    link.symlink_to(target.name)
    os.replace(link, directory / "..data")
    for name in ("tls.crt", "tls.key"):
        if not (directory / name).is_symlink():
            (directory / name).symlink_to(f"..data/{name}")


def _served_certificate(port: int, context: ssl.SSLContext) -> bytes | None:
    """The certificate the server presents; None while it restarts its listener with new files."""
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            return tls.getpeercert(binary_form=True)
    except OSError:
        return None


def test_production_mode_serves_the_mounted_certificate_and_follows_its_renewal(
    kube: ControlPlane, distroguard: OperatorProcess, tmp_path: Path
) -> None:
    mount = tmp_path / "tls"
    mount.mkdir()
    first = kube.issue_server_cert(unique("webhook"), ips=["127.0.0.1"], dns=["localhost"])
    _mount(mount, first, 1)
    port, liveness = free_port(), free_port()
    process = OperatorProcess(
        kube,
        "unused",
        distroguard.namespace,
        tmp_path / "run.log",
        [
            *("--listen", "127.0.0.1", "--port", str(port)),
            *("--cert-file", str(mount / "tls.crt"), "--key-file", str(mount / "tls.key")),
            *("--cert-check-interval", "0.5", "--liveness", f"http://127.0.0.1:{liveness}/healthz"),
            *("--metrics-listen", "127.0.0.1", "--metrics-port", "0"),
            *("--log-format", "json"),  # the production default, after the helper's plain
        ],
        dev=False,
    ).start()
    try:
        process.wait_logged("serving admission webhooks at https://127.0.0.1:")
        context = ssl.create_default_context(cafile=str(kube.ca.cert))
        pem = first.cert.read_text()
        assert _served_certificate(port, context) == ssl.PEM_cert_to_DER_cert(pem)

        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )
        request = urllib.request.Request(
            f"https://127.0.0.1:{port}/pods",
            data=_review("u-prod", "pods", "Pod", pod("default", "x", f"127.0.0.1:{free_port()}/a:1")),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with opener.open(request, timeout=30) as response:
            assert json.loads(response.read())["response"]["uid"] == "u-prod"
        plain = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with plain.open(f"http://127.0.0.1:{liveness}/healthz", timeout=10) as response:
            assert response.status == 200

        second = kube.issue_server_cert(unique("webhook"), ips=["127.0.0.1"], dns=["localhost"])
        _mount(mount, second, 2)
        renewed = ssl.PEM_cert_to_DER_cert(second.cert.read_text())
        eventually(
            lambda: _served_certificate(port, context) == renewed, what="the renewed certificate is served"
        )
        assert process.alive()
        records = [json.loads(line) for line in process.log_text().splitlines() if line.startswith("{")]
        assert any("serving admission webhooks" in record["message"] for record in records)
    finally:
        code = process.stop()
    assert code == 0, process.log_text()[-4000:]


def learnt(distroguard: OperatorProcess, network: str, cidr: str) -> bool:
    """Whether distroguard's log says it refuses `cidr` as the cluster's `network`."""
    lines = distroguard.log_text().splitlines()
    return any(f"the cluster's {network}:" in line and cidr in line for line in lines)


def test_registries_in_the_clusters_service_and_pod_networks_are_refused(
    kube: ControlPlane, distroguard: OperatorProcess
) -> None:
    """The service networks come from the ServiceCIDR objects (the API server's own, and one made here), the
    pod networks from the Nodes' podCIDRs; an image there is unresolved without a connection (nothing
    listens at these addresses, and nothing would be asked: the refusal comes first)."""
    strict = namespace(kube, "strict")
    apply_policy(kube, unique("no-musl"), strict, on_unresolved="deny")
    own_service = str(next(ipaddress.ip_network(SERVICE_CIDR).hosts()) + 9)
    eventually(
        lambda: learnt(distroguard, "service network", SERVICE_CIDR), what="distroguard learns its services"
    )
    wait_denied(
        kube,
        pod(strict, "svc", f"{own_service}:5000/e2e/app:1"),
        f"registry address not allowed: {own_service} is in {SERVICE_CIDR} (the cluster's service network)",
    )
    extra, node = unique("e2e-services"), unique("e2e-networks")
    kube.create(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "ServiceCIDR",
            "metadata": {"name": extra},
            "spec": {"cidrs": ["10.123.0.0/16"]},
        }
    )
    # No kubernetes.io/arch label: the Node counts for no platform, so no other test's judgement changes.
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": node},
            "spec": {"podCIDRs": ["10.77.0.0/24"]},
        }
    )
    try:
        # Learnt before any image there is asked for: no lookup may try to reach these addresses.
        for network, cidr in (("service network", "10.123.0.0/16"), ("pod network", "10.77.0.0/24")):
            eventually(
                lambda network=network, cidr=cidr: learnt(distroguard, network, cidr),
                what=f"distroguard learns its {network} {cidr}",
            )
        wait_denied(
            kube,
            pod(strict, "svc2", "10.123.4.5:5000/e2e/app:1"),
            "10.123.4.5 is in 10.123.0.0/16 (the cluster's service network)",
        )
        wait_denied(
            kube,
            pod(strict, "pods", "10.77.0.9/e2e/app:1"),
            "10.77.0.9 is in 10.77.0.0/24 (the cluster's pod network)",
        )
        denied = apply(kube, pod(strict, "pods", "10.77.0.9/e2e/app:1"))
        assert "--registry-allow 10.77.0.9" in denied.stderr
    finally:
        kube.kubectl("delete", "node", node, "--ignore-not-found", "--wait=false", check=False)
        # The ServiceCIDR's finalizer is the controller manager's, which this cluster does not run.
        kube.kubectl("delete", "servicecidr", extra, "--ignore-not-found", "--wait=false", check=False)
        kube.kubectl(
            "patch",
            "servicecidr",
            extra,
            "--type=merge",
            "-p",
            '{"metadata":{"finalizers":null}}',
            check=False,
        )
