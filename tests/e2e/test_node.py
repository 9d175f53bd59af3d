"""The single-node cluster of `support.node` runs real pods: containerd, runc, the kubelet, the
scheduler, the controller-manager and kube-proxy, on a fenced bridge, pulling from the bridge's
registry. The images are real Debian packages (BusyBox from Debian 12).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from support import kube, node_host
from support import node as node_module
from support.debian_images import busybox_image
from support.images import push
from support.manifests import run_once
from support.node import Node, NodeKeeper

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
OUTSIDE_ADDRESSES = ("198.51.100.1", "203.0.113.1")
"""TEST-NET-2 and -3 (RFC 5737): documentation addresses, on no network of this machine."""


@pytest.fixture
def busybox(node: Node) -> str:
    """Debian 12's BusyBox image in the node's registry; its reference."""
    asyncio.run(push(f"http://{node.registry}", "debian/busybox", "12", busybox_image()))
    return f"{node.registry}/debian/busybox:12"


def run_pod(
    node: Node, image: str, script: str, *, phases: tuple[str, ...] = ("Succeeded",)
) -> tuple[str, Any]:
    """Run `sh -c script` in a pod to completion; its log and the pod."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    node.create_pod(run_once("default", name, image, ["sh", "-c", script]))
    pod = node.wait_pod(name, phases)
    logs = node.plane.kubectl("logs", name, "-n", "default").stdout
    return logs, pod


def test_the_node_is_ready(node: Node) -> None:
    found = node.plane.kubectl_json("get", "node", node_module.NODE_NAME)
    ready = {c["type"]: c["status"] for c in found["status"]["conditions"]}
    assert ready["Ready"] == "True"
    info = found["status"]["nodeInfo"]
    assert info["kubeletVersion"] == kube.KUBE_VERSION
    assert info["containerRuntimeVersion"].startswith("containerd://")
    addresses = {a["type"]: a["address"] for a in found["status"]["addresses"]}
    assert addresses["InternalIP"] == node_host.BRIDGE_IP


def test_a_debian_pod_runs_to_completion_and_its_log_is_read(node: Node, busybox: str) -> None:
    logs, pod = run_pod(node, busybox, "cat /etc/debian_version; busybox | head -1; cat /etc/resolv.conf")
    assert pod["spec"]["nodeName"] == node_module.NODE_NAME
    lines = logs.splitlines()
    assert lines[0].startswith("12."), logs
    assert lines[1].startswith("BusyBox v1.35.0 (Debian"), logs
    # The pods' resolver is their own loopback: no DNS query leaves the pod network.
    assert "nameserver 127.0.0.1" in lines[2:], logs
    assert [line for line in lines[2:] if line.startswith("nameserver")] == ["nameserver 127.0.0.1"]


def test_a_deployment_makes_a_running_pod_and_the_garbage_collector_removes_it(
    node: Node, busybox: str
) -> None:
    name = f"d-{uuid.uuid4().hex[:8]}"
    labels = {"app": name}
    node.plane.create(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "containers": [{"name": "main", "image": busybox, "command": ["sleep", "3600"]}],
                    },
                },
            },
        }
    )
    pod = wait_for_pods(
        node, f"app={name}", lambda pods: [p for p in pods if p["status"].get("phase") == "Running"]
    )
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"  # the controller-manager made it
    assert pod["spec"]["nodeName"] == node_module.NODE_NAME  # the scheduler placed it
    node.plane.kubectl("delete", "deployment", name, "-n", "default", "--wait=false")
    wait_for_pods(node, f"app={name}", lambda pods: [{"gone": True}] if not pods else [])


def wait_for_pods(
    node: Node, selector: str, accept: Any, timeout: float = node_module.POD_TIMEOUT_SECONDS
) -> Any:
    deadline = time.monotonic() + timeout
    pods: list[Any] = []
    while time.monotonic() < deadline:
        pods = node.plane.kubectl_json("get", "pods", "-n", "default", "-l", selector)["items"]
        accepted = accept(pods)
        if accepted:
            return accepted[0]
        time.sleep(0.5)
    raise AssertionError(f"pods {selector}: {json.dumps([p.get('status') for p in pods], indent=1)}")


def test_a_pod_reaches_the_api_server_through_the_kubernetes_service(node: Node, busybox: str) -> None:
    # BusyBox's TLS cannot agree on a handshake with kube-apiserver (alert 40), so the pod speaks
    # plain HTTP to the HTTPS port: the answer is the Go TLS server's own refusal, from the API server
    # behind the Service (its only endpoint is the API server's address).
    script = (
        'echo "$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"; '
        'printf "GET /version HTTP/1.0\\r\\n\\r\\n" '
        '| nc -w 20 "$KUBERNETES_SERVICE_HOST" "$KUBERNETES_SERVICE_PORT"; '
        "test -s /var/run/secrets/kubernetes.io/serviceaccount/token && echo token mounted"
    )
    logs, _ = run_pod(node, busybox, script)
    assert logs.splitlines()[0] == f"{node_module.KUBERNETES_SERVICE_IP}:443", logs
    assert "Client sent an HTTP request to an HTTPS server." in logs, logs
    assert "token mounted" in logs, logs
    endpoints = node.plane.kubectl_json(
        "get", "endpointslices", "-n", "default", "-l", "kubernetes.io/service-name=kubernetes"
    )
    (slice_,) = endpoints["items"]
    assert slice_["endpoints"][0]["addresses"] == [node_host.BRIDGE_IP]
    assert node.plane.server == f"https://{node_host.BRIDGE_IP}:{slice_['ports'][0]['port']}"


def test_the_fence_keeps_pods_inside(node: Node, busybox: str) -> None:
    script = "; ".join(
        f"nc -w 20 {address} 80 </dev/null 2>&1; echo exit=$?" for address in OUTSIDE_ADDRESSES
    )
    logs, _ = run_pod(node, busybox, script)
    for address in OUTSIDE_ADDRESSES:
        # Refused at once inside the pod (no route leads out), not after the 20 s timeout.
        assert f"can't connect to remote host ({address}): Network is unreachable" in logs, logs
    assert logs.count("exit=1") == len(OUTSIDE_ADDRESSES), logs
    # The walls behind: the kernel forwards nothing, and the firewall drops what would leave.
    assert node_host.ip_forward() == "0"
    forward = node_host.fence_rules("FORWARD")
    pod_cidr = node_host.POD_CIDR
    assert f"-A FORWARD -s {pod_cidr} ! -d {pod_cidr}" in forward[0]
    assert f"-A FORWARD ! -s {pod_cidr} -d {pod_cidr}" in forward[1]
    assert all("-j DROP" in rule and node_host.FENCE_COMMENT in rule for rule in forward[:2])
    nat = node_host.run(["iptables-save", "-t", "nat"]).stdout
    assert "MASQUERADE" not in "\n".join(line for line in nat.splitlines() if pod_cidr in line)


# ------------------------------------------------------------------------------------- teardown


def run_testenv(*args: str, timeout: float = 600.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "testenv"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=kube.child_env(),
    )


def assert_all_present(found: dict[str, list[str]]) -> None:
    """Each check finds the running node: a check that can see nothing proves nothing. (Network
    namespaces exist only while a pod runs; `up` deletes its check pod.)"""
    for kind in ("processes", "bridge", "iptables", "cgroups", "paths"):
        assert found[kind], f"no {kind} found while a node runs: {found}"


def test_down_leaves_nothing_behind(node_keeper: NodeKeeper) -> None:
    node_keeper.stop()
    baseline = node_host.residue()
    assert not any(baseline[k] for k in ("processes", "mounts", "bridge", "iptables", "cgroups")), baseline
    up = run_testenv("up", "--node")
    try:
        assert up.returncode == 0, up.stderr
        lines = up.stdout.splitlines()
        assert lines[0].endswith("kubeconfig")
        assert lines[1].startswith(f"registry: {node_host.BRIDGE_IP}:")
        assert_all_present(node_host.residue())
    finally:
        down = run_testenv("down")
    assert down.returncode == 0, down.stderr
    assert node_host.residue() == baseline


def test_a_killed_owner_leaves_nothing_after_down(node_keeper: NodeKeeper, tmp_path: Path) -> None:
    node_keeper.stop()
    baseline = node_host.residue()
    ready, log = tmp_path / "ready", tmp_path / "owner.log"
    with log.open("wb") as stderr:
        owner = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys, time; from support import node; node.start(); "
                f"open({str(ready)!r}, 'w').close(); time.sleep(3600)",
            ],
            env=kube.child_env({"PYTHONPATH": os.pathsep.join(sys.path)}),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 300
        while not ready.exists() and owner.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert ready.exists(), log.read_text()
        assert_all_present(node_host.residue())
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        down = run_testenv("down")
    assert down.returncode == 0, down.stderr
    assert node_host.residue() == baseline
