"""`distroguard run --dev` as a child process of the tests, against the test control plane.

The process leads its own process group and dies with the test session (`setpriv --pdeathsig`, as the
registry fixture does). `stop()` sends SIGTERM (the operator removes its webhook configuration on the way
out), then SIGKILL after a grace period, and deletes the configuration itself in case the process could
not: a configuration left behind would send the API server's requests to a closed port.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from support.kube import ControlPlane
from support.scratch import Scratch, unique

STOP_GRACE_SECONDS = 15.0
RUN = "from distroguard.cli.main import main; main()"
NO_DOCKER_HUB = ("--registry-mirror", "docker.io=127.0.0.1:9")
"""Unless a test maps docker.io itself: an image named without a registry (`python:3.12`), left in the
cluster by any test and looked up by a later audit, goes to a loopback port where nothing listens, never
to Docker Hub (no test may reach an address off this machine, nor ask the machine's DNS for one)."""


NO_EOL_REFRESH = ("--eol-url", "")
"""Unless a test gives its own (a local endoflife.date): the audit role never asks the public API (no test
may reach an address off this machine), and leaves the cluster's EOLCatalog to the tests that make one."""


LOOPBACK_REGISTRIES = ("--registry-allow", "127.0.0.0/8")
"""The test registries listen on loopback, which `distroguard run` refuses by default (in a pod, loopback is
its own ports)."""


@dataclass
class OperatorProcess:
    kube: ControlPlane
    webhook_name: str
    namespace: str
    log: Path
    extra_args: Sequence[str] = ()
    dev: bool = True
    """With --dev (CRDs, certificates, webhook configuration); without, as in production."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Variables set for the process besides the control plane's (e.g. HTTP_PROXY)."""
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> OperatorProcess:
        argv = [
            sys.executable,
            "-c",
            RUN,
            "run",
            *(["--dev", "--webhook-name", self.webhook_name] if self.dev else []),
            "--kubeconfig",
            str(self.kube.kubeconfig),
            "--namespace",
            self.namespace,
            "--log-format",
            "plain",
            *self.extra_args,
            *(() if "--registry-mirror" in self.extra_args else NO_DOCKER_HUB),
            *(() if "--registry-allow" in self.extra_args else LOOPBACK_REGISTRIES),
            *(() if "--eol-url" in self.extra_args else NO_EOL_REFRESH),
        ]
        setpriv = shutil.which("setpriv")
        if setpriv:
            argv = [setpriv, "--pdeathsig", "KILL", "--", *argv]
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**self.kube.env(), **self.env},
                start_new_session=True,
            )
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def wait_registered(self, timeout: float = 90.0) -> None:
        """Until the process says its webhook configuration is registered."""
        self.wait_logged("registered ValidatingWebhookConfiguration", timeout)

    def wait_logged(self, text: str, timeout: float = 90.0) -> None:
        """Until the process logs `text`."""
        deadline = time.monotonic() + timeout
        while text not in self.log_text():
            if not self.alive():
                raise RuntimeError(f"distroguard run exited early:\n{self.log_text()[-4000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"distroguard run not ready after {timeout:.0f}s:\n{self.log_text()[-4000:]}"
                )
            time.sleep(0.2)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL; the webhook configuration is gone afterwards either way."""
        code = None
        if self.popen is not None:
            if self.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGTERM)
                try:
                    self.popen.wait(STOP_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.popen.pid, signal.SIGKILL)
                    self.popen.wait(STOP_GRACE_SECONDS)
            code = self.popen.returncode
        if self.dev:
            self.kube.kubectl(
                "delete",
                "validatingwebhookconfiguration",
                self.webhook_name,
                "--ignore-not-found",
                check=False,
            )
        return code


@contextlib.contextmanager
def running_operator(
    kube: ControlPlane,
    name: str,
    log_dir: Path,
    args: Sequence[str],
    *,
    namespace: str = "distroguard",
    ready_log: str | None = None,
    log_tail: int = 6000,
) -> Iterator[OperatorProcess]:
    """`distroguard run --dev` in a scratch namespace of its own, named `name` (made unique), registered and
    (with `ready_log`) past that log line; on the way out it is stopped, its log's tail printed, its
    namespace removed, and a stop that was not clean fails the fixture."""
    scratch = Scratch(kube)
    process = OperatorProcess(kube, unique(name), scratch.namespace(namespace), log_dir / "run.log", args)
    try:
        process.start()
        process.wait_registered()
        if ready_log is not None:
            process.wait_logged(ready_log)
        yield process
    finally:
        code = process.stop()
        print(process.log_text()[-log_tail:])
        scratch.close()
    assert code == 0, "distroguard run did not stop cleanly on SIGTERM"
