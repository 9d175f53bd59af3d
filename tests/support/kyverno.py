"""Kyverno, the policy engine, for the end-to-end test and benchmark that run it beside distroguard.

`scripts/testenv build --kyverno` builds it from Kyverno's Go module (`tools/kyverno/`) into the
test-environment cache; this module finds and runs it.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
import shutil
import ssl
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from support import gotools, kube

KYVERNO_VERSION = "v1.19.1"
"""The Kyverno release that `tools/kyverno/go.mod` requires (`github.com/kyverno/kyverno`)."""
KYVERNO_MODULE = "github.com/kyverno/kyverno"


class KyvernoError(RuntimeError):
    """Kyverno is not built, or did not start or become ready (the message says which and why)."""


def version_dir(version: str = KYVERNO_VERSION) -> Path:
    return kube.cache_root() / f"kyverno-{version}"


def bin_dir(version: str = KYVERNO_VERSION) -> Path:
    return version_dir(version) / "bin"


@dataclass(frozen=True)
class KyvernoBinaries:
    """The admission controller and the CLI of one cached version."""

    kyverno: Path
    cli: Path
    """`kubectl-kyverno`, the `kyverno` command line (`kyverno test`, `kyverno apply`)."""

    @classmethod
    def at(cls, directory: Path) -> KyvernoBinaries:
        return cls(directory / "kyverno", directory / "kubectl-kyverno")

    @classmethod
    def locate(cls, version: str = KYVERNO_VERSION) -> KyvernoBinaries:
        """The cached binaries; `KyvernoError` naming the build command when one is missing."""
        gotools.wait_for_background_build()
        found = cls.at(bin_dir(version))
        missing = [p.name for p in found.all() if not os.access(p, os.X_OK)]
        if missing:
            raise KyvernoError(
                f"Kyverno {version} not built ({', '.join(missing)} missing in {bin_dir(version)}): "
                f"run `scripts/testenv build --kyverno`{gotools.missing_hint()}"
            )
        return found

    def all(self) -> tuple[Path, ...]:
        return (self.kyverno, self.cli)


# ------------------------------------------------------------------------------------------ running

NAMESPACE = "kyverno"
"""Kyverno's own namespace (its Secrets, its Lease): `KYVERNO_NAMESPACE`."""
CA_SECRET = "kyverno-svc.kyverno.svc.kyverno-tls-ca"
TLS_SECRET = "kyverno-svc.kyverno.svc.kyverno-tls-pair"
"""The Secrets Kyverno's certificate controller fills (the names its Helm chart gives them)."""
MANAGED_LABEL = "webhook.kyverno.io/managed-by=kyverno"
"""On every webhook configuration Kyverno registers."""
READY_WEBHOOKS = ("kyverno-policy-validating-webhook-cfg", "kyverno-resource-validating-webhook-cfg")
"""Registered once Kyverno has its certificate and leads: it validates policies and resources."""
METADATA_BLOCKLIST = (
    "169.254.169.254/32",
    "169.254.169.253/32",
    "fd00:ec2::254/128",
    "metadata.google.internal",
)
"""Kyverno's default `--httpBlocklist` without loopback, which it blocks by default: the policies' API
calls here go to distroguard on 127.0.0.1, and `--httpAllowlist` narrows them to its URL."""
READINESS_PATH = "/health/readiness"
READY_TIMEOUT_SECONDS = 180.0
STOP_GRACE_SECONDS = 15.0


def crd_dir(version: str = KYVERNO_VERSION) -> Path:
    """Kyverno's CRDs, copied from its module's `config/crds` by `scripts/testenv build --kyverno`."""
    return version_dir(version) / "crds"


def install_crds(plane: kube.ControlPlane, directory: Path | None = None) -> list[str]:
    """Create each CRD of Kyverno's that the API server does not have yet (server-side: some are too large
    for the last-applied annotation; one already there, such as the PolicyReport CRD distroguard installs,
    is left as it is) and wait until all are established; their names."""
    directory = directory or crd_dir()
    files = sorted(directory.rglob("*.yaml"))
    if not files:
        raise KyvernoError(f"no CRDs in {directory}: run `scripts/testenv build --kyverno`")
    present = set(plane.kubectl("get", "crd", "-o", "name").stdout.split())
    names = []
    for path in files:
        crd = yaml.safe_load(path.read_text())["metadata"]["name"]
        name = f"customresourcedefinition.apiextensions.k8s.io/{crd}"
        if name not in present:
            plane.kubectl("apply", "--server-side", "-f", str(path))
        names.append(name)
    plane.kubectl("wait", "--for=condition=Established", "--timeout=120s", *names, timeout=150)
    return names


@dataclass(frozen=True)
class Connection:
    """One connect(2) Kyverno made: its address family, address and port."""

    family: str
    address: str
    port: int

    @property
    def loopback(self) -> bool:
        """To this machine's loopback (an IPv4-mapped IPv6 address counts as its IPv4 address)."""
        address = ipaddress.ip_address(self.address)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return address.ipv4_mapped.is_loopback
        return address.is_loopback


_CONNECT = re.compile(
    r"connect\(\d+, \{sa_family=(?P<family>AF_INET6?),\s*sin6?_port=htons\((?P<port>\d+)\),"
    r'.*?(?:inet_addr\("(?P<v4>[^"]+)"\)|inet_pton\(AF_INET6,\s*"(?P<v6>[^"]+)")'
)


def parse_connects(trace: str) -> list[Connection]:
    """The IPv4 and IPv6 connect(2) calls in an `strace -e trace=connect` log (local sockets left out)."""
    found = []
    for match in _CONNECT.finditer(trace):
        address = match.group("v4") or match.group("v6") or ""
        found.append(Connection(match.group("family"), address, int(match.group("port"))))
    return found


@dataclass
class Kyverno:
    """A Kyverno admission controller running outside the cluster against a test control plane."""

    plane: kube.ControlPlane
    process: kube.Process
    port: int
    """Its webhook server's port on 127.0.0.1 (`--serverIP`: the URL its webhook configurations name)."""
    workdir: Path
    trace: Path | None
    """The strace log of its connect(2) calls, when started with `trace_connections`."""

    def log_tail(self, lines: int = 60) -> str:
        return self.process.log_tail(lines)

    def webhook_configurations(self) -> dict[str, dict[str, Any]]:
        """Kyverno's validating and mutating webhook configurations, by name."""
        found: dict[str, dict[str, Any]] = {}
        for kind in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"):
            listed = self.plane.kubectl_json("get", kind, "-l", MANAGED_LABEL)
            found.update({item["metadata"]["name"]: item for item in listed["items"]})
        return found

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Until the webhook configurations in `READY_WEBHOOKS` are registered and Kyverno's webhook server
        answers its readiness probe over TLS, verified with their caBundle (the server loads its certificate
        from a Secret, which it may not have read yet when the configurations appear)."""
        deadline = time.monotonic() + timeout
        registered: dict[str, dict[str, Any]] = {}
        last = "no answer yet"
        while True:
            if not self.process.alive():
                raise KyvernoError(f"kyverno exited early:\n{self.log_tail()}")
            if not all(name in registered for name in READY_WEBHOOKS):
                registered = self.webhook_configurations()
            if all(name in registered for name in READY_WEBHOOKS):
                ca = base64.b64decode(
                    registered[READY_WEBHOOKS[0]]["webhooks"][0]["clientConfig"]["caBundle"]
                )
                last = self._probe(ca.decode())
                if last == "ready":
                    return
            if time.monotonic() > deadline:
                raise KyvernoError(
                    f"kyverno not ready after {timeout:.0f}s (webhooks {sorted(registered)}, "
                    f"probe: {last}):\n{self.log_tail()}"
                )
            time.sleep(0.5)

    def _probe(self, ca_pem: str) -> str:
        """ "ready", or why not: GET /health/readiness on the webhook server, trusting only `ca_pem`."""
        context = ssl.create_default_context(cadata=ca_pem)
        url = f"https://127.0.0.1:{self.port}{READINESS_PATH}"
        direct = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )
        try:
            with direct.open(url, timeout=5) as response:
                return "ready" if response.status == 200 else f"HTTP {response.status}"
        except (OSError, ssl.SSLError) as e:
            return f"{type(e).__name__}: {e}"

    def connections(self) -> list[Connection]:
        """Every IPv4/IPv6 connect(2) so far (needs `trace_connections`)."""
        if self.trace is None:
            raise KyvernoError("kyverno was started without trace_connections")
        try:
            return parse_connects(self.trace.read_text(errors="replace"))
        except FileNotFoundError:
            return []

    def stop(self) -> None:
        """Stop the process, then remove the webhook configurations it registered (a configuration left
        behind would send the API server's requests to a closed port)."""
        self.process.stop(STOP_GRACE_SECONDS)
        for kind in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"):
            self.plane.kubectl("delete", kind, "-l", MANAGED_LABEL, "--ignore-not-found", check=False)


def start(
    plane: kube.ControlPlane,
    workdir: Path,
    *,
    binaries: KyvernoBinaries | None = None,
    http_allowlist: Sequence[str] = (),
    trace_connections: bool = False,
    extra_args: Sequence[str] = (),
) -> Kyverno:
    """Start Kyverno against `plane` (its CRDs installed first), serving on 127.0.0.1; not yet ready
    (`Kyverno.wait_ready`). It talks to the API server only; TUF, credential helpers, reports, metrics,
    tracing and profiling are off. With `trace_connections`, it runs under strace, which logs every
    connect(2) it makes."""
    binaries = binaries or KyvernoBinaries.locate()
    workdir.mkdir(parents=True, exist_ok=True)
    install_crds(plane)
    plane.kubectl("create", "namespace", NAMESPACE, check=False)
    port = kube.free_port()
    argv = [
        str(binaries.kyverno),
        f"--kubeconfig={plane.kubeconfig}",
        f"--serverIP=127.0.0.1:{port}",
        "--webhookServerHost=127.0.0.1",
        f"--webhookServerPort={port}",
        f"--caSecretName={CA_SECRET}",
        f"--tlsSecretName={TLS_SECRET}",
        "--enableTuf=false",
        "--registryCredentialHelpers=",
        "--admissionReports=false",
        "--enableReporting=",
        "--disableMetrics=true",
        "--metricsHost=127.0.0.1",
        f"--metricsPort={kube.free_port()}",
        "--controllerRuntimeMetricsAddress=0",
        "--autoMemLimitEnabled=false",
        "--loggingFormat=text",
        "--disableLogColor=true",
        f"--httpBlocklist={','.join(METADATA_BLOCKLIST)}",
        *([f"--httpAllowlist={','.join(http_allowlist)}"] if http_allowlist else []),
        *extra_args,
    ]
    trace = workdir / "connect.strace" if trace_connections else None
    if trace is not None:
        strace = shutil.which("strace")
        if strace is None:
            raise KyvernoError("trace_connections needs strace (apt-get install strace)")
        argv = [strace, "-f", "-qq", "-e", "trace=connect", "-e", "signal=none", "-o", str(trace), *argv]
    env = {
        "KYVERNO_NAMESPACE": NAMESPACE,
        "KYVERNO_POD_NAME": "kyverno-local",
        "KYVERNO_SERVICEACCOUNT_NAME": "kyverno",
        "KYVERNO_DEPLOYMENT": "kyverno",
        "INIT_CONFIG": "kyverno",
        "METRICS_CONFIG": "kyverno-metrics",
        "KUBECACHEDIR": str(workdir / "kube-cache"),
        "HOME": str(workdir),
    }
    process = kube.spawn(
        "kyverno",
        argv,
        workdir / "kyverno.log",
        detached=False,
        cwd=workdir,
        exe=binaries.kyverno,
        env=env,
    )
    return Kyverno(plane, process, port, workdir, trace)
