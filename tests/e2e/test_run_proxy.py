"""`distroguard run` looks images up through the proxy its environment names (HTTP_PROXY here), against the
real kube-apiserver and a real registry.

The registry is named by an address off this machine (10.255.255.1) that only the test proxy knows how to
reach (it maps it to 127.0.0.1): a pod's image is judged, and so denied, only if the lookup went through the
proxy. The API server stays direct (https, and HTTPS_PROXY is unset).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.distros import ALPINE_ROOT
from support.forward_proxy import ForwardProxy, ThreadedForwardProxy
from support.images import ImageBuilder, push
from support.kube import ControlPlane
from support.operator_process import OperatorProcess
from support.registry_server import RegistryServer
from support.scratch import Scratch

pytestmark = [pytest.mark.e2e, pytest.mark.registry]

OFF_MACHINE = "10.255.255.1"
PROXY_PASSWORD = "e2e-proxy-secret"
POLICY_LABELS = {"e2e.distroguard.dev/module": "run-proxy"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    threaded = ThreadedForwardProxy(
        ForwardProxy({OFF_MACHINE: "127.0.0.1"}, credentials=("e2e", PROXY_PASSWORD))
    )
    running = threaded.start()
    try:
        yield running
    finally:
        threaded.stop()


def test_run_resolves_images_through_the_proxy(
    kube: ControlPlane, registry: RegistryServer, proxy: ForwardProxy, tmp_path: Path
) -> None:
    repo = unique("e2e/proxied-alpine")
    # An image of its own (its config names the repository): the same Alpine image, pushed by another test,
    # could be known to the cluster's ImageFacts already, and then answered without a blob read.
    image_built = ImageBuilder().layer(ALPINE_ROOT).env(f"E2E_REPOSITORY={repo}").build()
    asyncio.run(push(registry.url, repo, "1", image_built))
    target = f"{OFF_MACHINE}:{registry.port}"
    image = f"{target}/{repo}:1"
    scratch = Scratch(kube)
    own = scratch.namespace("distroguard")
    ns = scratch.namespace("proxied")
    process = OperatorProcess(
        kube,
        unique("distroguard-proxy"),
        own,
        tmp_path / "run.log",
        ["--metrics-port", "0", "--insecure-registry", target],
        env={"HTTP_PROXY": proxy.url("e2e", PROXY_PASSWORD)},  # NO_PROXY: the control plane's (loopback)
    )
    policy = unique("no-musl-proxied")
    try:
        process.start()
        process.wait_registered()
        document = {
            "apiVersion": "distroguard.dev/v1alpha1",
            "kind": "DistroPolicy",
            "metadata": {"name": policy, "labels": POLICY_LABELS},
            "spec": {
                "action": "deny",
                "onUnresolved": "warn",
                "match": {"namespaces": [ns]},
                "rules": [{"name": "no-musl", "denyLibc": ["musl"]}],
            },
        }
        kube.kubectl("apply", "-f", "-", input=json.dumps(document))
        manifest = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "app", "namespace": ns},
            "spec": {"containers": [{"name": "app", "image": image}]},
        }
        deadline = time.monotonic() + 60
        while True:
            done = kube.kubectl(
                "create", "--dry-run=server", "-f", "-", input=json.dumps(manifest), check=False
            )
            if done.returncode != 0 and "musl" in done.stderr:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"the alpine pod was not denied: {done.stderr or done.stdout}")
            time.sleep(0.5)
        assert image in done.stderr
        log = process.log_text()
    finally:
        kube.kubectl("delete", "distropolicy", policy, "--ignore-not-found", check=False)
        code = process.stop()
        print(process.log_text()[-4000:])
        scratch.close()
    assert code == 0
    asked = {(seen.method, seen.target) for seen in proxy.seen}
    assert ("GET", f"http://{target}/v2/{repo}/manifests/1") in asked  # the tag's manifest, then its blobs
    assert any(method == "GET" and "/blobs/sha256:" in url for method, url in asked)
    assert all(seen.headers.get("proxy-authorization", "").startswith("Basic ") for seen in proxy.seen)
    assert f"proxies: http via http://***@127.0.0.1:{proxy.port} (HTTP_PROXY)" in log
    assert PROXY_PASSWORD not in log
