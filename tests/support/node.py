"""A real single-node cluster for the end-to-end tests: the control plane of `support.kube` plus
containerd, runc, kubelet, kube-proxy, kube-scheduler, kube-controller-manager and a registry.

One implementation serves two callers, as `support.kube` does: the pytest fixture `node` (below)
and `scripts/testenv up --node | down`.

What a started node looks like:

* a bridge (`BRIDGE`, host address `BRIDGE_IP` on `POD_CIDR`) that this module creates; the API
  server, the kubelet and a plain-HTTP docker-registry listen on that address, etcd and the other
  components on 127.0.0.1;
* pods on that bridge through the CNI bridge plugin (host-local IPAM, `ipMasq: false`, no gateway
  on the bridge side, so the plugin never turns `net.ipv4.ip_forward` on), with a route to the
  Service addresses and none to anywhere else;
* the fence: `net.ipv4.ip_forward` stays 0 (the kernel routes nothing for the pods) and firewall
  rules marked `FENCE_COMMENT` drop whatever leaves `POD_CIDR` through FORWARD, and anything from a
  pod to this machine other than the bridge address. Pods reach the bridge address and each other;
  nothing else. Their resolv.conf names 127.0.0.1 (their own loopback), so no DNS query leaves;
* kube-proxy in iptables mode: the `kubernetes` Service leads to the API server on the bridge;
* containerd pulls from the test registry only: `certs.d/<registry>/hosts.toml` allows plain HTTP
  and `certs.d/_default/hosts.toml` sends every other registry name (docker.io, ...) there too;
* containerd, its shims, the containers and the kubelet share one private mount namespace (held
  by a `sleep` process): their mounts never appear in this machine's mount table and vanish with
  the last of them. Inside it, the kernel settings the kubelet insists on (`KERNEL_TUNABLES`) read
  as the values it wants, so it never writes this machine's real ones;
* the node is named `localhost` (it resolves from /etc/hosts: no DNS query for the node name).

Only one node runs on a machine: the bridge, the cgroups (`/kubepods` in every hierarchy) and the
fixed paths of `GLOBAL_PATHS` are machine-wide. `teardown` removes every process, firewall rule,
cgroup, bridge and path a node made, from its state file, and by name where the state is missing;
`support.kube` calls it when it stops (or sweeps the orphan of) a control plane that carries one.
The machine-wide parts (bridge, fence, KUBE-* chains, cgroups, processes) and `residue`, the check
that none is left, are in `support.node_host`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import socket
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support import kube
from support.manifests import run_once
from support.node_host import (
    BRIDGE,
    BRIDGE_IP,
    NODE_BINARIES,
    POD_CIDR,
    NodeError,
    bridge_exists,
    fence_down,
    fence_up,
    kill_all,
    kill_cgroup_members,
    network_up,
    processes_mentioning,
    remove_cgroups,
    run,
    sweep_kube_chains,
)

NODE_NAME = "localhost"
KUBERNETES_SERVICE_IP = "10.0.0.1"
PAUSE_REPOSITORY = "testenv/pause"
PAUSE_TAG = "1"
PAUSE_VERSION = "distroguard-testenv-pause 1"
"""What `/pause -v` prints (tools/pause/main.go)."""

SYSTEM_BINARIES = {
    "containerd": Path("/usr/bin/containerd"),
    "containerd-shim-runc-v2": Path("/usr/bin/containerd-shim-runc-v2"),
    "runc": Path("/usr/sbin/runc"),
    "ctr": Path("/usr/bin/ctr"),
}
"""Debian's containerd and runc packages (`scripts/testenv build --node` installs them)."""
CNI_BIN_DIR = Path("/usr/lib/cni")
"""Debian's containernetworking-plugins."""


KERNEL_TUNABLES = {
    "vm/overcommit_memory": 1,
    "vm/panic_on_oom": 0,
    "kernel/panic": 10,
    "kernel/panic_on_oops": 1,
    "kernel/keys/root_maxkeys": 1000000,
    "kernel/keys/root_maxbytes": 25000000,
}
"""The values the kubelet sets unless they already read so (pkg/kubelet/cm setupKernelTunables)."""

READY_TIMEOUT_SECONDS = 180.0
POD_TIMEOUT_SECONDS = 180.0


_STARTED: dict[int, kube.Process] = {}
"""The processes this interpreter started, with their Popen: `teardown` waits for them."""


# ------------------------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class NodeBinaries:
    kubelet: Path
    kube_proxy: Path
    kube_scheduler: Path
    kube_controller_manager: Path
    pause: Path
    pause_layout: Path
    """The pause image as an OCI image layout (`scripts/testenv build --node` writes it)."""

    @classmethod
    def at(cls, bin_dir: Path) -> NodeBinaries:
        names = [bin_dir / name for name in NODE_BINARIES]
        return cls(*names, pause_layout=bin_dir.parent / "pause-image")

    @classmethod
    def locate(cls) -> NodeBinaries:
        found = cls.at(kube.bin_dir())
        missing = [p.name for p in found.executables() if not os.access(p, os.X_OK)]
        missing += [str(p) for p in SYSTEM_BINARIES.values() if not os.access(p, os.X_OK)]
        if not (found.pause_layout / "index.json").exists():
            missing.append(found.pause_layout.name)
        if not (CNI_BIN_DIR / "bridge").exists():
            missing.append(str(CNI_BIN_DIR / "bridge"))
        if missing:
            raise NodeError(
                f"node not built ({', '.join(missing)} missing): run `scripts/testenv build --node`"
            )
        return found

    def executables(self) -> tuple[Path, ...]:
        return (self.kubelet, self.kube_proxy, self.kube_scheduler, self.kube_controller_manager, self.pause)


# ------------------------------------------------------------------------------------------ registry


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def _http(method: str, url: str, data: bytes | None = None, headers: Mapping[str, str] | None = None) -> Any:
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return opener.open(request, timeout=30)


def push_layout(registry: str, layout: Path, repository: str, tag: str) -> str:
    """Push the one image of an OCI image layout to `registry` (plain HTTP) as `repository:tag`."""
    base = f"http://{registry}/v2/{repository}"
    index = json.loads((layout / "index.json").read_text())
    descriptor = index["manifests"][0]

    def blob(digest: str) -> bytes:
        return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()

    manifest = blob(descriptor["digest"])
    body = json.loads(manifest)
    for item in (body["config"], *body["layers"]):
        with _http("POST", f"{base}/blobs/uploads/", data=b"") as answer:
            location = answer.headers["Location"]
        if location.startswith("/"):
            location = f"http://{registry}{location}"
        separator = "&" if "?" in location else "?"
        with _http(
            "PUT",
            f"{location}{separator}digest={item['digest']}",
            data=blob(item["digest"]),
            headers={"Content-Type": "application/octet-stream"},
        ):
            pass
    with _http(
        "PUT", f"{base}/manifests/{tag}", data=manifest, headers={"Content-Type": descriptor["mediaType"]}
    ):
        pass
    return str(descriptor["digest"])


# ---------------------------------------------------------------------------------------- the node


@dataclass
class Node:
    """A running node: its control plane, registry (`HOST:PORT`, plain HTTP) and state directory."""

    plane: kube.ControlPlane
    registry: str
    directory: Path

    @property
    def pause_image(self) -> str:
        return f"{self.registry}/{PAUSE_REPOSITORY}:{PAUSE_TAG}"

    def alive(self) -> bool:
        state = _load_state(self.directory)
        processes = [kube.Process.from_json(p) for p in state.get("processes", [])]
        return self.plane.alive() and bool(processes) and all(p.alive() for p in processes)

    def stop(self) -> None:
        self.plane.stop()

    def wait_pod(
        self,
        name: str,
        phases: Sequence[str],
        *,
        namespace: str = "default",
        timeout: float = POD_TIMEOUT_SECONDS,
    ) -> dict[str, Any]:
        """Wait until the pod's phase is one of `phases`; `NodeError` with its status otherwise."""
        deadline = time.monotonic() + timeout
        pod: dict[str, Any] = {}
        while time.monotonic() < deadline:
            pod = self.plane.kubectl_json("get", "pod", name, "-n", namespace)
            phase = pod.get("status", {}).get("phase")
            if phase in phases:
                return pod
            if phase in ("Succeeded", "Failed"):
                break
            time.sleep(0.5)
        events = self.plane.kubectl(
            "get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}", check=False
        ).stdout
        raise NodeError(
            f"pod {namespace}/{name} is not {'/'.join(phases)}: {json.dumps(pod.get('status'), indent=1)}\n"
            f"{events}"
        )

    def create_pod(self, manifest: Mapping[str, Any], *, timeout: float = 60.0) -> Any:
        """Create a pod; retried while its namespace has no `default` service account yet."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.plane.create(manifest)
            except kube.KubectlError as e:
                if "serviceaccount" not in e.stderr.lower() or time.monotonic() > deadline:
                    raise
            time.sleep(0.5)


def _load_state(node_dir: Path) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads((node_dir / "state.json").read_text())
    except (OSError, ValueError):
        return {}
    return state


def _save_state(node_dir: Path, state: Mapping[str, Any]) -> None:
    tmp = node_dir / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(node_dir / "state.json")


def find(plane: kube.ControlPlane) -> Node | None:
    """The node that `plane` carries, if any."""
    node_dir = plane.workdir / kube.NODE_DIR
    state = _load_state(node_dir)
    return Node(plane, state["registry"], node_dir) if "registry" in state else None


class _Starter:
    """The steps of one node start; every started process is recorded in the state at once."""

    def __init__(
        self, plane: kube.ControlPlane, bins: NodeBinaries, detached: bool, say: Callable[[str], None]
    ):
        self.plane = plane
        self.bins = bins
        self.detached = detached
        self.say = say
        self.dir = plane.workdir / kube.NODE_DIR
        self.state: dict[str, Any] = {"processes": []}
        self.holder: kube.Process | None = None
        self.processes: list[kube.Process] = []
        """With their Popen: alive while not exited (a wrapper still exec-ing counts as alive)."""

    def spawn(self, name: str, argv: Sequence[str], *, exe: Path, in_namespace: bool = True) -> kube.Process:
        if in_namespace:
            assert self.holder is not None
            argv = ["nsenter", f"--mount=/proc/{self.holder.pid}/ns/mnt", "--", *argv]
        process = kube.spawn(
            name, argv, self.dir / f"{name}.log", detached=self.detached, cwd=self.dir, exe=exe
        )
        self.processes.append(process)
        _STARTED[process.pid] = process
        self.state["processes"].append(process.to_json())
        _save_state(self.dir, self.state)
        return process

    def mount_namespace(self) -> None:
        tunables = self.dir / "tunables"
        tunables.mkdir()
        script = ["set -e"]
        for key, value in KERNEL_TUNABLES.items():
            source = tunables / key.replace("/", ".")
            source.write_text(f"{value}\n")
            script.append(f"mount --bind {shlex.quote(str(source))} /proc/sys/{key}")
        sleep = Path(shutil.which("sleep") or "/bin/sleep").resolve()
        script.append(f"exec {sleep} infinity")
        argv = ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", "\n".join(script)]
        self.holder = self.spawn("mount-namespace", argv, exe=sleep, in_namespace=False)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if Path(f"/proc/{self.holder.pid}/exe").resolve() == sleep:
                    return
            if not self.holder.alive():
                break
            time.sleep(0.05)
        raise NodeError(f"mount namespace holder did not start: {self.holder.log_tail()}")

    def registry(self) -> str:
        binary = shutil.which("docker-registry")
        if binary is None:
            raise NodeError("docker-registry is not installed (apt-get install docker-registry)")
        port = _free_port(BRIDGE_IP)
        address = f"{BRIDGE_IP}:{port}"
        config = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.dir / "registry")},
                "delete": {"enabled": True},
            },
            "http": {"addr": address, "secret": uuid.uuid4().hex},
        }
        (self.dir / "registry.yml").write_text(json.dumps(config))
        process = self.spawn(
            "registry", [binary, "serve", str(self.dir / "registry.yml")], exe=Path(binary).resolve(),
            in_namespace=False,
        )  # fmt: skip
        _wait_http(process, f"http://{address}/v2/")
        self.state["registry"] = address
        _save_state(self.dir, self.state)
        return address

    def containerd(self, registry: str) -> Path:
        root = self.dir / "containerd"
        certs = root / "certs.d"
        hosts = (
            f'server = "http://{registry}"\n\n[host."http://{registry}"]\n'
            '  capabilities = ["pull", "resolve", "push"]\n'
        )
        for name in (registry, "_default"):
            (certs / name).mkdir(parents=True)
            (certs / name / "hosts.toml").write_text(hosts)
        cni_conf = self.dir / "cni" / "net.d"
        cni_conf.mkdir(parents=True)
        (cni_conf / "10-testenv.conflist").write_text(json.dumps(cni_config(self.dir / "cni" / "ipam")))
        socket_path = root / "c.sock"
        config = f"""version = 2
root = "{root / "root"}"
state = "{root / "state"}"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "{socket_path}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{registry}/{PAUSE_REPOSITORY}:{PAUSE_TAG}"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{SYSTEM_BINARIES["runc"]}"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{cni_conf}"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{certs}"
"""
        (root / "config.toml").write_text(config)
        exe = SYSTEM_BINARIES["containerd"]
        process = self.spawn("containerd", [str(exe), "--config", str(root / "config.toml")], exe=exe)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not process.alive():
                raise NodeError(f"containerd exited; end of {process.log}:\n{process.log_tail()}")
            done = run([str(SYSTEM_BINARIES["ctr"]), "--address", str(socket_path), "version"], check=False)
            if done.returncode == 0:
                return socket_path
            time.sleep(0.3)
        raise NodeError(f"containerd did not answer; end of {process.log}:\n{process.log_tail()}")

    def kubeconfig(self, name: str, user: str, groups: Sequence[str]) -> Path:
        assert self.plane.pki is not None
        pair = self.plane.pki.issue_client_cert(name, user=user, groups=groups)
        path = self.dir / f"{name}.kubeconfig"
        kube._write_kubeconfig(path, self.plane.server, self.plane.ca.cert, pair)
        return path

    def kubelet(self, socket_path: Path) -> None:
        assert self.plane.pki is not None
        serving = self.plane.pki.issue_server_cert("kubelet", ips=[BRIDGE_IP], dns=[NODE_NAME])
        (self.dir / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs",
            "address": BRIDGE_IP,
            "port": _free_port(BRIDGE_IP),
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": kube.free_port(),
            "tlsCertFile": str(serving.cert),
            "tlsPrivateKeyFile": str(serving.key),
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(self.plane.ca.cert)},
            },
            "authorization": {"mode": "Webhook"},
            "containerRuntimeEndpoint": f"unix://{socket_path}",
            "imageServiceEndpoint": f"unix://{socket_path}",
            "resolvConf": str(self.dir / "resolv.conf"),
            "clusterDNS": [],
            "volumePluginDir": str(self.dir / "volume-plugins"),
            "podLogsDir": str(self.dir / "pod-logs"),
            "failSwapOn": False,
            "oomScoreAdj": 0,
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {"memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
            "serializeImagePulls": False,
            "rotateCertificates": False,
            "registerNode": True,
            "staticPodPath": "",
        }
        (self.dir / "kubelet.json").write_text(json.dumps(config, indent=2))
        kubeconfig = self.kubeconfig("kubelet-client", f"system:node:{NODE_NAME}", ["system:nodes"])
        argv = [
            str(self.bins.kubelet),
            f"--config={self.dir / 'kubelet.json'}",
            f"--kubeconfig={kubeconfig}",
            f"--root-dir={self.dir / 'kubelet'}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={BRIDGE_IP}",
            "--v=1",
        ]
        self.spawn("kubelet", argv, exe=self.bins.kubelet)

    def control_loops(self) -> None:
        admin = self.kubeconfig("components", "distroguard-testenv-components", ["system:masters"])
        pki = self.plane.workdir / "pki"
        self.spawn(
            "kube-controller-manager",
            [
                str(self.bins.kube_controller_manager),
                f"--kubeconfig={admin}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={kube.free_port()}",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={self.plane.ca.cert}",
                f"--service-cluster-ip-range={kube.SERVICE_CIDR}",
                "--allocate-node-cidrs=false",
                "--v=1",
            ],
            exe=self.bins.kube_controller_manager,
            in_namespace=False,
        )
        self.spawn(
            "kube-scheduler",
            [
                str(self.bins.kube_scheduler),
                f"--kubeconfig={admin}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={kube.free_port()}",
                "--v=1",
            ],
            exe=self.bins.kube_scheduler,
            in_namespace=False,
        )
        proxy_config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "mode": "iptables",
            "clientConnection": {"kubeconfig": str(admin)},
            "hostnameOverride": NODE_NAME,
            "clusterCIDR": POD_CIDR,
            "healthzBindAddress": f"127.0.0.1:{kube.free_port()}",
            "metricsBindAddress": f"127.0.0.1:{kube.free_port()}",
            "oomScoreAdj": 0,
            "conntrack": {
                "maxPerCore": 0,
                "min": 0,
                "tcpEstablishedTimeout": "0s",
                "tcpCloseWaitTimeout": "0s",
            },
            "iptables": {"localhostNodePorts": False, "masqueradeAll": False},
            "nodePortAddresses": [f"{BRIDGE_IP}/32"],
        }
        (self.dir / "kube-proxy.json").write_text(json.dumps(proxy_config, indent=2))
        self.spawn(
            "kube-proxy",
            [str(self.bins.kube_proxy), f"--config={self.dir / 'kube-proxy.json'}", "--v=1"],
            exe=self.bins.kube_proxy,
            in_namespace=False,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        last = "not registered"
        while time.monotonic() < deadline:
            self._check_alive()
            done = self.plane.kubectl("get", "node", NODE_NAME, "-o", "json", check=False)
            if done.returncode == 0:
                conditions = json.loads(done.stdout).get("status", {}).get("conditions", [])
                ready = [c for c in conditions if c.get("type") == "Ready"]
                if ready and ready[0].get("status") == "True":
                    return
                last = json.dumps(ready)
            time.sleep(0.5)
        raise NodeError(
            f"node {NODE_NAME} not Ready after {READY_TIMEOUT_SECONDS:.0f}s: {last}\n{self._tails()}"
        )

    def wait_proxy_synced(self) -> None:
        """kube-proxy has written the `kubernetes` Service's rules; the fence then goes back on top."""
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            self._check_alive()
            nat = run(["iptables", "-w", "-t", "nat", "-S", "KUBE-SERVICES"], check=False).stdout
            if KUBERNETES_SERVICE_IP in nat:
                fence_up()
                return
            time.sleep(0.5)
        raise NodeError(f"kube-proxy wrote no rule for {KUBERNETES_SERVICE_IP}\n{self._tails()}")

    def check_pod(self, node: Node) -> None:
        name = f"testenv-check-{uuid.uuid4().hex[:6]}"
        node.create_pod(run_once("default", name, node.pause_image, ["/pause", "-v"], container="check"))
        node.wait_pod(name, ["Succeeded"])
        logs = self.plane.kubectl("logs", name, "-n", "default").stdout
        if PAUSE_VERSION not in logs:
            raise NodeError(f"check pod {name} ran, but its log says {logs!r}")
        self.plane.kubectl("delete", "pod", name, "-n", "default", "--wait=false")

    def _check_alive(self) -> None:
        for process in self.processes:
            if not process.alive():
                raise NodeError(f"{process.name} exited; end of {process.log}:\n{process.log_tail()}")

    def _tails(self) -> str:
        parts = []
        for process in self.processes:
            parts.append(f"--- {process.name} ({process.log})\n{process.log_tail(15)}")
        return "\n".join(parts)


def cni_config(ipam_dir: Path) -> dict[str, Any]:
    """The pod network: the bridge, no masquerade, no gateway address set by the plugin (which would
    switch ip_forward on). Pods get a route to the Service addresses through the bridge address and
    no default route: a connection anywhere else fails at once (network unreachable) inside the pod.
    (With a default route, the host would drop the packets silently, as ip_forward is 0, and every
    such connection would hang until its timeout.)"""
    return {
        "cniVersion": "1.0.0",
        "name": "distroguard-testenv",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": False,
                "isDefaultGateway": False,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(ipam_dir),
                    "ranges": [[{"subnet": POD_CIDR, "rangeStart": "10.200.0.10", "gateway": BRIDGE_IP}]],
                    "routes": [{"dst": kube.SERVICE_CIDR, "gw": BRIDGE_IP}],
                },
            }
        ],
    }


def _wait_http(process: kube.Process, url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise NodeError(f"{process.name} exited; end of {process.log}:\n{process.log_tail()}")
        try:
            with _http("GET", url) as answer:
                answer.read()
                return
        except (OSError, urllib.error.URLError):
            time.sleep(0.1)
    raise NodeError(f"{process.name} did not answer {url}; end of {process.log}:\n{process.log_tail()}")


def start(
    *,
    name: str | None = None,
    detached: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Node:
    """Start a control plane with a node, wait until the node is Ready and a check pod ran."""
    say = progress or (lambda _msg: None)
    bins = NodeBinaries.locate()
    kube.sweep_orphans()
    if bridge_exists():
        raise NodeError(
            f"bridge {BRIDGE} exists: a node runs on this machine, or one was left (scripts/testenv down)"
        )
    started = time.monotonic()
    serving = kube.ApiServing(
        address=BRIDGE_IP,
        cert_ips=(BRIDGE_IP, "127.0.0.1", KUBERNETES_SERVICE_IP),
        cert_dns=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"),
        for_node=True,
        extra_args=("--enable-aggregator-routing=true", "--kubelet-preferred-address-types=InternalIP"),
        before_start=lambda workdir: network_up(workdir / kube.NODE_DIR),
    )
    plane = kube.start(name=name, detached=detached, progress=say, serving=serving, attempts=1)
    try:
        starter = _Starter(plane, bins, detached, say)
        starter.mount_namespace()
        registry = starter.registry()
        say(f"registry on {registry}")
        push_layout(registry, bins.pause_layout, PAUSE_REPOSITORY, PAUSE_TAG)
        socket_path = starter.containerd(registry)
        say("containerd up")
        starter.control_loops()
        starter.kubelet(socket_path)
        starter.wait_ready()
        say(f"node {NODE_NAME} Ready ({time.monotonic() - started:.0f}s)")
        starter.wait_proxy_synced()
        node = Node(plane, registry, starter.dir)
        starter.check_pod(node)
        say(f"check pod ran to completion ({time.monotonic() - started:.0f}s)")
        plane.save()
        return node
    except BaseException:
        plane.stop()
        raise


# ----------------------------------------------------------------------------------------- teardown


def teardown(node_dir: Path, *, grace: float = kube.STOP_GRACE_SECONDS) -> list[str]:
    """Remove everything the node in `node_dir` made; returns what could not be removed."""
    problems: list[str] = []
    state = _load_state(node_dir)
    recorded = [kube.Process.from_json(d) for d in state.get("processes", [])]
    processes = {p.name: _STARTED.pop(p.pid, p) for p in recorded}
    # The kubelet first, so it restarts nothing; then the pods, the shims, the rest.
    for name in ("kubelet", "kube-proxy", "kube-scheduler", "kube-controller-manager"):
        if name in processes:
            processes.pop(name).stop(grace)
    kill_cgroup_members()
    kill_all(processes_mentioning(str(node_dir)))  # shims (daemonized: not in any group of ours)
    for process in processes.values():
        process.stop(grace)
    kill_all(processes_mentioning(str(node_dir)))
    problems += remove_cgroups()
    fence_down()
    sweep_kube_chains()
    if bridge_exists():
        done = run(["ip", "link", "del", BRIDGE], check=False)
        if done.returncode != 0:
            problems.append(f"ip link del {BRIDGE}: {done.stderr.strip()}")
    try:
        created = [Path(p) for p in json.loads((node_dir / "created-paths.json").read_text())]
    except (OSError, ValueError):
        created = []
    for path in created:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        if os.path.lexists(path):
            problems.append(f"{path} could not be removed")
    shutil.rmtree(node_dir, ignore_errors=True)
    for problem in problems:
        print(f"[testenv] node teardown: {problem}", file=sys.stderr)
    return problems


# ------------------------------------------------------------------------------------------- pytest


class NodeKeeper:
    """Starts the session's node on first use and again after a test stopped it."""

    def __init__(self) -> None:
        self.node: Node | None = None

    def get(self) -> Node:
        if self.node is None or not self.node.alive():
            self.stop()
            try:
                self.node = start(progress=lambda msg: print(f"[testenv] {msg}", file=sys.stderr))
            except (NodeError, kube.ControlPlaneError) as e:
                pytest.fail(str(e), pytrace=False)
        return self.node

    def stop(self) -> None:
        node, self.node = self.node, None
        if node is not None:
            node.stop()


@pytest.fixture(scope="session")
def node_keeper() -> Iterator[NodeKeeper]:
    keeper = NodeKeeper()
    try:
        yield keeper
    finally:
        keeper.stop()


@pytest.fixture
def node(node_keeper: NodeKeeper) -> Node:
    """The session's node (control plane + containerd + kubelet + kube-proxy + scheduler +
    controller-manager + registry on the bridge), started on first use, stopped at the end."""
    return node_keeper.get()
