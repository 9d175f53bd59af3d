"""distroguard as a user installs it on the node of `support.node`: the image built from the Dockerfile by
`scripts/build-image`, then `helm install` of charts/distroguard with that image.

    staged = stage(node)                   # the images in the node's registry (the build is printed)
    release = Release(node, staged, namespace="distroguard")
    release.install()                      # helm install --wait: replicas and audit Ready
    release.webhook_pods()                 # the replicas, as the API server lists them
    release.admission_counts()             # reviews answered, by verdict, summed over the replicas
    release.uninstall()

The values are the user's: the image, and the test registry named as what it is (plain HTTP).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.buildah import BuiltImage, build_image
from support.debian_images import busybox_image
from support.images import push
from support.multiarch import alpine
from support.node import Node
from support.python_image import REPOSITORY, TAG, python_slim

CHART = Path(__file__).resolve().parents[2] / "charts" / "distroguard"
RELEASE = "distroguard"
IMAGE_REPOSITORY = "distroguard"
IMAGE_TAG = "test"
HELM_TIMEOUT = "5m"
WEBHOOK_SELECTOR = "app.kubernetes.io/component=webhook"
AUDIT_SELECTOR = "app.kubernetes.io/component=audit"
METRICS_PORT = 9090


@dataclass(frozen=True)
class Staged:
    """What the node's registry holds for these tests: distroguard's image and two workloads' images."""

    registry: str
    built: BuiltImage
    alpine: str
    """An Alpine (musl) image: what a musl policy refuses."""
    debian: str
    """BusyBox from Debian 12's packages: a real program that runs."""


def stage(node: Node, *, store: Path | None = None) -> Staged:
    """Build distroguard's image on the stand-in python:3.13-slim-trixie (docker.io mapped to the node's
    registry) and push it there, with the workload images. `store`: buildah's (default: the script's)."""
    registry = node.registry
    url = f"http://{registry}"
    asyncio.run(push(url, REPOSITORY, TAG, python_slim().image))
    built = build_image(
        push_to=f"{registry}/{IMAGE_REPOSITORY}:{IMAGE_TAG}",
        mirror=registry,
        insecure=[registry],
        store=store,
    )
    asyncio.run(push(url, "library/alpine", "3.20", alpine("linux/amd64")))
    asyncio.run(push(url, "debian/busybox", "12", busybox_image()))
    return Staged(
        registry=registry,
        built=built,
        alpine=f"{registry}/library/alpine:3.20",
        debian=f"{registry}/debian/busybox:12",
    )


@dataclass
class Release:
    node: Node
    staged: Staged
    namespace: str

    def values(self, extra: Sequence[str] = ()) -> list[str]:
        registry = self.staged.registry
        sets = [
            f"image.repository={registry}/{IMAGE_REPOSITORY}",
            f"image.tag={IMAGE_TAG}",
            f"insecureRegistries={{{registry}}}",
            "eol.refresh=false",  # no test reaches the public endoflife.date
            *extra,
        ]
        return [arg for value in sets for arg in ("--set", value)]

    def install(self, extra: Sequence[str] = ()) -> None:
        """`helm install --wait` into the namespace (made first, labelled Pod Security "restricted")."""
        plane = self.node.plane
        plane.kubectl("create", "namespace", self.namespace)
        plane.kubectl(
            "label",
            "namespace",
            self.namespace,
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/enforce-version=latest",
        )
        self._helm("install", extra)

    def upgrade(self, extra: Sequence[str]) -> None:
        """`helm upgrade --wait` with the values of `install` and `extra` (not reused: given again)."""
        self._helm("upgrade", extra)

    def _helm(self, verb: str, extra: Sequence[str]) -> None:
        self.node.plane.helm(
            verb,
            RELEASE,
            str(CHART),
            "-n",
            self.namespace,
            *self.values(extra),
            "--wait",
            "--timeout",
            HELM_TIMEOUT,
            timeout=400,
        )

    def uninstall(self) -> None:
        plane = self.node.plane
        plane.helm("uninstall", RELEASE, "-n", self.namespace, "--ignore-not-found", "--wait", timeout=200)
        plane.kubectl(
            "delete", "namespace", self.namespace, "--ignore-not-found", "--timeout=120s", timeout=150
        )

    def pods(self, selector: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.node.plane.kubectl_json(
            "get", "pods", "-n", self.namespace, "-l", selector
        )["items"]
        return found

    def webhook_pods(self) -> list[dict[str, Any]]:
        return self.pods(WEBHOOK_SELECTOR)

    def wait_rolled_out(self, deployment: str = RELEASE, timeout: float = 300.0) -> None:
        """Until the Deployment's pods are all of its latest template and no other pod is left."""
        plane = self.node.plane
        plane.kubectl(
            "rollout",
            "status",
            f"deployment/{deployment}",
            "-n",
            self.namespace,
            f"--timeout={timeout:.0f}s",
            timeout=timeout + 30,
        )
        deadline = time.monotonic() + timeout
        while True:
            wanted = plane.kubectl_json("get", "deployment", deployment, "-n", self.namespace)["spec"][
                "replicas"
            ]
            pods = self.webhook_pods() if deployment == RELEASE else self.pods(AUDIT_SELECTOR)
            if len(pods) == wanted:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{deployment}: {len(pods)} pods, {wanted} wanted, after {timeout:.0f}s")
            time.sleep(0.5)

    def admission_counts(self) -> Counter[str]:
        """`distroguard_admission_requests_total` by verdict, summed over the webhook replicas (their
        metrics port, read from this machine: the node's pods are on its bridge)."""
        total: Counter[str] = Counter()
        for pod in self.webhook_pods():
            address = pod["status"].get("podIP")
            if not address:
                continue
            url = f"http://{address}:{METRICS_PORT}/metrics"
            with urllib.request.urlopen(url, timeout=10) as response:
                text = response.read().decode()
            for line in text.splitlines():
                if line.startswith("distroguard_admission_requests_total{"):
                    labels, _, value = line.rpartition(" ")
                    verdict = labels.split('verdict="', 1)[1].split('"', 1)[0]
                    total[verdict] += int(float(value))
        return total


def apply(node: Node, manifest: dict[str, Any]) -> None:
    node.plane.kubectl("apply", "-f", "-", input=json.dumps(manifest))
