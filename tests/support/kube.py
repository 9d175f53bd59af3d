"""A real Kubernetes control plane for the end-to-end tests: etcd and kube-apiserver on 127.0.0.1.

One implementation serves two callers:

* the pytest plugin below (the session fixture `kube`), registered in `tests/conftest.py`;
* `scripts/testenv up|down|status`, for a person who wants the same control plane in a shell.

The binaries come from the cache that `scripts/testenv build` fills (kube-apiserver and etcd built
from Go modules in `tools/kube/`, kubectl and helm from a pinned PyPI wheel); this module runs them.

What a started control plane looks like:

* its own working directory (certificates, kubeconfig, etcd data, logs) under `<cache>/run/`,
  removed on stop;
* etcd on plain HTTP and kube-apiserver on HTTPS, each on a free 127.0.0.1 port, each the leader of
  its own process group; nothing listens on any other address;
* a certificate authority (made with `cryptography`) that signs the API server's serving
  certificate (IP 127.0.0.1, DNS localhost), an admin client certificate (O=system:masters) and
  any serving certificate a test needs (`ControlPlane.issue_server_cert`, e.g. for a webhook);
* RBAC authorization; no controllers, scheduler or kubelet: pods stay Pending, namespaces never
  finish terminating, so tests use unique names instead of deleting.

Processes never outlive their owner: a stop sends SIGTERM to each process group, then SIGKILL
after a grace period; an `atexit` hook and the fixture's finalizer both stop; the kernel kills the
children of a test session that dies without running either (PR_SET_PDEATHSIG); and every start
sweeps the run directories of owners that are gone, stopping what they left.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from support import certs

KUBE_VERSION = "v1.36.3"
"""The kube-apiserver release that `tools/kube/go.mod` requires (`k8s.io/kubernetes`)."""

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_ENV = "DISTROGUARD_TESTENV_CACHE"
"""Moves the cache (default: `.cache/testenv` in the repository, git-ignored)."""

BINARIES = ("kube-apiserver", "etcd", "kubectl", "helm")
STOP_GRACE_SECONDS = 10.0
READY_TIMEOUT_SECONDS = 120.0
UP_NAME = "up"
"""Run directory name of the control plane that `scripts/testenv up` leaves running."""
NODE_DIR = "node"
"""Subdirectory of a run directory holding a node's state (`support.node`): its presence means a node."""

_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
_PR_SET_PDEATHSIG = 1


class ControlPlaneError(RuntimeError):
    """The control plane could not be found, started or reached (the message says which and why)."""


class KubectlError(RuntimeError):
    """kubectl (or helm) exited non-zero; `stderr` holds what it said, e.g. an admission denial."""

    def __init__(self, argv: Sequence[str], returncode: int, stdout: str, stderr: str) -> None:
        super().__init__(
            f"{' '.join(argv)} exited {returncode}\n--- stderr\n{stderr.strip()}\n--- stdout\n"
            f"{stdout.strip()}"
        )
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


# ------------------------------------------------------------------------------------------- layout


def cache_root() -> Path:
    """Where builds and running control planes live."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).resolve() if configured else REPO_ROOT / ".cache" / "testenv"


def version_dir(version: str = KUBE_VERSION) -> Path:
    return cache_root() / version


def bin_dir(version: str = KUBE_VERSION) -> Path:
    return version_dir(version) / "bin"


def run_root() -> Path:
    return cache_root() / "run"


@dataclass(frozen=True)
class Binaries:
    """Paths of the four executables of one cached version."""

    kube_apiserver: Path
    etcd: Path
    kubectl: Path
    helm: Path

    @classmethod
    def at(cls, directory: Path) -> Binaries:
        return cls(*(directory / name for name in BINARIES))

    @classmethod
    def locate(cls, version: str = KUBE_VERSION) -> Binaries:
        """The cached binaries; `ControlPlaneError` naming the build command when one is missing."""
        found = cls.at(bin_dir(version))
        missing = [p.name for p in found.all() if not os.access(p, os.X_OK)]
        if missing:
            raise ControlPlaneError(
                f"control plane {version} not built ({', '.join(missing)} missing in "
                f"{bin_dir(version)}): run `scripts/testenv build`"
            )
        return found

    def all(self) -> tuple[Path, ...]:
        return (self.kube_apiserver, self.etcd, self.kubectl, self.helm)


# ------------------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


class Pki:
    """A throw-away certificate authority in one directory and the certificates it signs.

    The certificates themselves come from `support.certs`, imported on first use so that
    `scripts/testenv build|status` work in an interpreter without `cryptography`.
    """

    def __init__(self, directory: Path) -> None:
        from support import certs

        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._ca = certs.new_ca("distroguard-testenv-ca")
        self.ca = KeyPair(directory / "ca.crt", directory / "ca.key")
        self._ca.write(self.ca.cert, self.ca.key)

    def issue_server_cert(
        self, name: str, *, ips: Sequence[str] = ("127.0.0.1",), dns: Sequence[str] = ("localhost",)
    ) -> KeyPair:
        """A serving certificate for `name` with the given IP and DNS subject alternative names."""
        from support import certs

        return self._write(name, certs.issue(self._ca, name, ip_sans=ips, dns_sans=dns))

    def issue_client_cert(self, name: str, *, user: str, groups: Sequence[str] = ()) -> KeyPair:
        """A client certificate: the API server reads CN as the user name and O as the groups."""
        from support import certs

        issued = certs.issue(self._ca, user, client=True, server=False, organizations=groups)
        return self._write(name, issued)

    def service_account_keys(self) -> KeyPair:
        """The key pair that signs service-account tokens (`cert` holds the public key)."""
        from support import certs

        key = certs.new_key()
        pair = KeyPair(self.directory / "sa.pub", self.directory / "sa.key")
        certs.write_public_key(pair.cert, key)
        certs.write_private_key(pair.key, key)
        return pair

    def _write(self, name: str, issued: certs.Issued) -> KeyPair:
        pair = KeyPair(self.directory / f"{name}.crt", self.directory / f"{name}.key")
        issued.write(pair.cert, pair.key)
        return pair


# ---------------------------------------------------------------------------------------- processes


@dataclass
class Process:
    """One child: etcd or kube-apiserver, the leader of its own process group."""

    name: str
    pid: int
    exe: Path
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "pid": self.pid, "exe": str(self.exe), "log": str(self.log)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Process:
        return cls(data["name"], int(data["pid"]), Path(data["exe"]), Path(data["log"]))

    def alive(self) -> bool:
        """True while this pid still runs our executable (a reused pid is not us)."""
        if self.popen is not None:
            return self.popen.poll() is None
        try:
            return Path(f"/proc/{self.pid}/exe").resolve() == self.exe.resolve()
        except OSError:
            return False

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM to the process group, SIGKILL after `grace` seconds; waits for the end."""
        if not self.alive():
            self._reap()
            return
        self._signal(signal.SIGTERM)
        if not self._wait(grace):
            self._signal(signal.SIGKILL)
            self._wait(grace)
        self._reap()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def _wait(self, timeout: float) -> bool:
        if self.popen is not None:
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                return True
            time.sleep(0.1)
        return not self.alive()

    def _reap(self) -> None:
        if self.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(1)
        # Anything else left in the group (there should be nothing) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)


def _die_with_parent(parent: int) -> Callable[[], None]:
    """A `preexec_fn` asking the kernel to SIGKILL the child when its parent dies (Linux)."""

    def arm() -> None:
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the request: do not start orphaned
            os._exit(1)

    return arm


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for our children: no proxy settings (all they reach is on 127.0.0.1)."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARIABLES}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    if extra:
        env.update(extra)
    return env


def spawn(
    name: str,
    argv: Sequence[str],
    log: Path,
    *,
    detached: bool,
    cwd: Path,
    exe: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Process:
    """Start `argv` as the leader of a new process group, output to `log`.

    `exe` is the executable the process ends up running when `argv[0]` is a wrapper that execs it
    (nsenter); `Process.alive` compares it. Unless `detached`, the child dies with this process.
    """
    with log.open("ab") as out:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=child_env(env),
            start_new_session=True,
            preexec_fn=None if detached else _die_with_parent(os.getpid()),
        )
    return Process(name, popen.pid, exe or Path(argv[0]), log, popen)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------------ control plane


@dataclass
class ControlPlane:
    """A running etcd + kube-apiserver pair and everything needed to talk to it."""

    workdir: Path
    server: str
    """https://127.0.0.1:<port> of kube-apiserver."""
    etcd_url: str
    kubeconfig: Path
    ca: KeyPair
    """The certificate authority behind every certificate here (`ca.cert`: the caBundle)."""
    admin: KeyPair
    """The admin client certificate (user `distroguard-admin`, group `system:masters`)."""
    binaries: Binaries
    processes: list[Process]
    pki: Pki | None = None
    """Present in the process that started the control plane: issues more certificates."""
    owner: int | None = None
    """The pid whose death ends this control plane; None when `scripts/testenv up` started it."""
    _stopped: bool = field(default=False, repr=False)

    # -- talking to it

    def env(self) -> dict[str, str]:
        """Environment for kubectl, helm or any client: KUBECONFIG set, caches in the workdir."""
        return child_env(
            {
                "KUBECONFIG": str(self.kubeconfig),
                "KUBECACHEDIR": str(self.workdir / "kube-cache"),
                "HELM_CACHE_HOME": str(self.workdir / "helm" / "cache"),
                "HELM_CONFIG_HOME": str(self.workdir / "helm" / "config"),
                "HELM_DATA_HOME": str(self.workdir / "helm" / "data"),
            }
        )

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        as_user: str | None = None,
        check: bool = True,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this control plane; `KubectlError` (with stderr) if `check` fails."""
        argv = [str(self.binaries.kubectl), *args]
        if as_user is not None:
            argv.append(f"--as={as_user}")
        return self._run(argv, input=input, check=check, timeout=timeout)

    def kubectl_json(self, *args: str, input: str | None = None) -> Any:
        """kubectl ... -o json, decoded."""
        return json.loads(self.kubectl(*args, "-o", "json", input=input).stdout)

    def create(self, manifest: Mapping[str, Any], *, as_user: str | None = None) -> Any:
        """`kubectl create -f -` of one object; returns the object as the API server stored it."""
        return json.loads(
            self.kubectl(
                "create", "-f", "-", "-o", "json", input=json.dumps(manifest), as_user=as_user
            ).stdout
        )

    def helm(
        self, *args: str, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        return self._run([str(self.binaries.helm), *args], input=None, check=check, timeout=timeout)

    def issue_server_cert(self, name: str, **sans: Sequence[str]) -> KeyPair:
        """A serving certificate signed by this control plane's CA (for a webhook it calls)."""
        if self.pki is None:
            raise ControlPlaneError("certificates can only be issued by the process that started it")
        return self.pki.issue_server_cert(name, **sans)

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the CA and presents the admin certificate."""
        ctx = ssl.create_default_context(cafile=str(self.ca.cert))
        ctx.load_cert_chain(str(self.admin.cert), str(self.admin.key))
        return ctx

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        """GET a raw API path (e.g. `/readyz`, `/version`) as admin."""
        return _https_get(self.server + path, self.ssl_context(), timeout)

    def _run(
        self, argv: list[str], *, input: str | None, check: bool, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise KubectlError(argv, done.returncode, done.stdout, done.stderr)
        return done

    # -- lifecycle

    def alive(self) -> bool:
        return all(p.alive() for p in self.processes)

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Stop kube-apiserver, then etcd; remove the working directory (data, certs, logs)."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        _stop_node(self.workdir, grace)
        for process in reversed(self.processes):
            process.stop(grace)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def save(self) -> None:
        state = {
            "owner": self.owner,
            "server": self.server,
            "etcd_url": self.etcd_url,
            "kubeconfig": str(self.kubeconfig),
            "ca": [str(self.ca.cert), str(self.ca.key)],
            "admin": [str(self.admin.cert), str(self.admin.key)],
            "binaries": [str(p) for p in self.binaries.all()],
            "processes": [p.to_json() for p in self.processes],
        }
        tmp = self.workdir / "state.json.tmp"
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.workdir / "state.json")

    @classmethod
    def load(cls, workdir: Path) -> ControlPlane | None:
        """The control plane recorded in `workdir/state.json`, or None when there is none."""
        try:
            state = json.loads((workdir / "state.json").read_text())
        except (OSError, ValueError):
            return None
        return cls(
            workdir=workdir,
            server=state["server"],
            etcd_url=state["etcd_url"],
            kubeconfig=Path(state["kubeconfig"]),
            ca=KeyPair(*map(Path, state["ca"])),
            admin=KeyPair(*map(Path, state["admin"])),
            binaries=Binaries(*map(Path, state["binaries"])),
            processes=[Process.from_json(p) for p in state["processes"]],
            owner=state["owner"],
        )


@dataclass(frozen=True)
class ApiServing:
    """Where kube-apiserver listens and what it runs with; the default is the node-less plane.

    A node (`support.node`) needs the API server on the pod bridge's host address (kube-apiserver
    binds one address), service accounts for pods, and the Node authorizer for the kubelet.
    """

    address: str = "127.0.0.1"
    cert_ips: tuple[str, ...] = ("127.0.0.1",)
    cert_dns: tuple[str, ...] = ("localhost",)
    for_node: bool = False
    """Pods get service-account tokens (the ServiceAccount admission plugin; the controller-manager
    makes the accounts), the kubelet is authorized by the Node authorizer and NodeRestriction, and
    the API server reaches kubelets with the admin client certificate (logs, exec)."""
    extra_args: tuple[str, ...] = ()
    before_start: Callable[[Path], None] | None = None
    """Runs with the working directory before etcd starts (a node makes its bridge there)."""


SERVICE_CIDR = "10.0.0.0/24"
"""Service cluster IPs; `kubernetes` is its first address."""


def start(
    *,
    binaries: Binaries | None = None,
    name: str | None = None,
    detached: bool = False,
    progress: Callable[[str], None] | None = None,
    attempts: int = 3,
    serving: ApiServing = ApiServing(),
) -> ControlPlane:
    """Start etcd and kube-apiserver on free 127.0.0.1 ports and wait until `/readyz` answers ok.

    `detached=False` (tests): the control plane belongs to this process, which stops it at exit
    (atexit) and whose death kills it. `detached=True` (`scripts/testenv up`): it keeps running
    until `stop_named`.
    A start that loses a port race is retried on new ports, up to `attempts` times.
    """
    binaries = binaries or Binaries.locate()
    say = progress or (lambda _msg: None)
    sweep_orphans()
    last: ControlPlaneError | None = None
    for _ in range(attempts):
        try:
            return _start_once(binaries, name=name, detached=detached, say=say, serving=serving)
        except _PortTakenError as e:
            last = e
            say(f"port race lost, retrying: {e}")
    raise ControlPlaneError(f"could not start the control plane: {last}")


class _PortTakenError(ControlPlaneError):
    pass


def _start_once(
    binaries: Binaries,
    *,
    name: str | None,
    detached: bool,
    say: Callable[[str], None],
    serving: ApiServing,
) -> ControlPlane:
    root = run_root()
    root.mkdir(parents=True, exist_ok=True)
    if name is None:
        workdir = Path(tempfile.mkdtemp(prefix=f"session-{os.getpid()}-", dir=root))
    else:
        workdir = root / name
        workdir.mkdir()
    pki = Pki(workdir / "pki")
    serving_cert = pki.issue_server_cert("apiserver", ips=serving.cert_ips, dns=serving.cert_dns)
    admin = pki.issue_client_cert("admin", user="distroguard-admin", groups=["system:masters"])
    sa = pki.service_account_keys()

    etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
    etcd_url = f"http://127.0.0.1:{etcd_port}"
    server = f"https://{serving.address}:{api_port}"
    kubeconfig = workdir / "kubeconfig"
    _write_kubeconfig(kubeconfig, server, pki.ca.cert, admin)

    plane = ControlPlane(
        workdir=workdir,
        server=server,
        etcd_url=etcd_url,
        kubeconfig=kubeconfig,
        ca=pki.ca,
        admin=admin,
        binaries=binaries,
        processes=[],
        pki=pki,
        owner=None if detached else os.getpid(),
    )
    if not detached:
        atexit.register(plane.stop)
    try:
        if serving.before_start is not None:
            serving.before_start(workdir)
        peer_url = f"http://127.0.0.1:{peer_port}"
        etcd_argv = [
            str(binaries.etcd),
            "--name=testenv",
            f"--data-dir={workdir / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=testenv={peer_url}",
            "--initial-cluster-state=new",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]
        say(f"starting etcd on {etcd_url}")
        etcd = spawn("etcd", etcd_argv, workdir / "etcd.log", detached=detached, cwd=workdir)
        plane.processes.append(etcd)
        plane.save()
        _wait_ready(etcd, f"{etcd_url}/health", None, b'"health":"true"')

        api_argv = [
            str(binaries.kube_apiserver),
            f"--etcd-servers={etcd_url}",
            f"--bind-address={serving.address}",
            f"--advertise-address={serving.address}",
            f"--secure-port={api_port}",
            f"--cert-dir={workdir / 'apiserver-certs'}",
            f"--tls-cert-file={serving_cert.cert}",
            f"--tls-private-key-file={serving_cert.key}",
            f"--client-ca-file={pki.ca.cert}",
            "--authorization-mode=Node,RBAC" if serving.for_node else "--authorization-mode=RBAC",
            f"--service-account-issuer={server}",
            f"--service-account-key-file={sa.cert}",
            f"--service-account-signing-key-file={sa.key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            *(
                [
                    "--enable-admission-plugins=NodeRestriction",
                    f"--kubelet-client-certificate={admin.cert}",
                    f"--kubelet-client-key={admin.key}",
                ]
                if serving.for_node
                else ["--disable-admission-plugins=ServiceAccount"]
            ),
            "--allow-privileged=true",
            "--profiling=false",
            "--v=1",
            *serving.extra_args,
        ]
        say(f"starting kube-apiserver on {server}")
        api = spawn(
            "kube-apiserver",
            api_argv,
            workdir / "kube-apiserver.log",
            detached=detached,
            cwd=workdir,
        )
        plane.processes.append(api)
        plane.save()
        _wait_ready(api, f"{server}/readyz", plane.ssl_context(), b"ok")
    except BaseException:
        plane.stop()
        raise
    say(f"ready: {server} (kubeconfig {kubeconfig})")
    return plane


def _write_kubeconfig(path: Path, server: str, ca: Path, admin: KeyPair) -> None:
    config = {  # JSON is YAML: kubectl and helm read it as a kubeconfig
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "testenv", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [
            {
                "name": "admin",
                "user": {"client-certificate": str(admin.cert), "client-key": str(admin.key)},
            }
        ],
        "contexts": [{"name": "testenv", "context": {"cluster": "testenv", "user": "admin"}}],
        "current-context": "testenv",
    }
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)


def _https_get(url: str, context: ssl.SSLContext | None, timeout: float) -> tuple[int, bytes]:
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(url, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _wait_ready(
    process: Process,
    url: str,
    context: ssl.SSLContext | None,
    expect: bytes,
    timeout: float = READY_TIMEOUT_SECONDS,
) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if not process.alive():
            tail = process.log_tail()
            error = _PortTakenError if "address already in use" in tail else ControlPlaneError
            raise error(f"{process.name} exited while starting; end of {process.log}:\n{tail}")
        try:
            status, body = _https_get(url, context, timeout=2.0)
        except OSError as e:
            last = str(e)
        else:
            if status == 200 and expect in body:
                return
            last = f"HTTP {status}: {body[:200]!r}"
        time.sleep(0.2)
    raise ControlPlaneError(
        f"{process.name} not ready after {timeout:.0f}s ({url}: {last}); end of {process.log}:\n"
        f"{process.log_tail()}"
    )


def _stop_node(workdir: Path, grace: float) -> None:
    """Tear down the node a control plane carries (`support.node`), before its API server goes."""
    if (workdir / NODE_DIR).exists():
        from support import node

        node.teardown(workdir / NODE_DIR, grace=grace)


def _owner_alive(owner: int | None) -> bool:
    if owner is None:
        return True  # left running on purpose by `scripts/testenv up`
    try:
        os.kill(owner, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_orphans() -> list[Path]:
    """Stop and remove control planes whose owning process is gone; returns their directories."""
    swept: list[Path] = []
    root = run_root()
    if not root.is_dir():
        return swept
    for workdir in sorted(root.iterdir()):
        plane = ControlPlane.load(workdir)
        if plane is None:
            owner = _owner_from_name(workdir.name)
            if owner is not None and not _owner_alive(owner):
                _stop_node(workdir, grace=2.0)
                shutil.rmtree(workdir, ignore_errors=True)
                swept.append(workdir)
            continue
        if not _owner_alive(plane.owner):
            plane.stop(grace=2.0)
            swept.append(workdir)
    return swept


def _owner_from_name(name: str) -> int | None:
    parts = name.split("-")
    if len(parts) >= 2 and parts[0] == "session" and parts[1].isdigit():
        return int(parts[1])
    return None


def live_planes() -> list[ControlPlane]:
    """The control planes recorded under the run directory (running or not)."""
    root = run_root()
    found = [ControlPlane.load(workdir) for workdir in sorted(root.iterdir())] if root.is_dir() else []
    return [plane for plane in found if plane is not None]


def find_named(name: str = UP_NAME) -> ControlPlane | None:
    return ControlPlane.load(run_root() / name)


def stop_named(name: str = UP_NAME) -> bool:
    """Stop the control plane left running under `name`; False when there was none."""
    plane = find_named(name)
    if plane is None:
        workdir = run_root() / name
        if workdir.exists():
            shutil.rmtree(workdir, ignore_errors=True)
        return False
    plane.stop()
    return True


# ------------------------------------------------------------------------------------------- pytest


@pytest.fixture(scope="session")
def kube() -> Iterator[ControlPlane]:
    """A real etcd + kube-apiserver for the whole session (started on first use, always stopped)."""
    try:
        binaries = Binaries.locate()
    except ControlPlaneError as e:
        pytest.fail(str(e), pytrace=False)
    plane = start(binaries=binaries, progress=lambda msg: print(f"[testenv] {msg}", file=sys.stderr))
    try:
        yield plane
    finally:
        plane.stop()
