"""The project's image, built by `scripts/build-image`, and run by Debian's buildah as a pod would run it.

    built = build_image(push_to="127.0.0.1:5000/distroguard:test", mirror="127.0.0.1:5000")
    built.seconds, built.size, built.pushed        # what the script printed
    with Buildah.temporary() as buildah:           # an image store of its own, removed afterwards
        container = buildah.from_image(built.pushed)
        done = buildah.run_read_only(container, ["distroguard", "--version"], user="65532:65532")

`run_read_only` runs the command with chroot isolation and a read-only root. buildah has no option for
that: `buildah run` has no `--read-only`, and its chroot isolation never makes the root read-only (its
chroot/run_common.go says so: "not doing because we don't set it in the config: setting rootfs
read-only"). So the root is made read-only the way a runtime does it, below buildah: in a private mount
namespace (unshare), the container's root file system is bind-mounted onto itself and remounted
read-only; buildah's own bind of it for the chroot inherits the flag. As a runtime creates the mount
points of a container's files (/etc/hosts, /etc/hostname, /etc/resolv.conf) before it makes the root
read-only, one writable run of `python -c pass` lets buildah create them first. /run gets a small tmpfs
of its own, as `podman run --read-only` gives it: buildah writes its /run/.containerenv there, and
removes it again after the command. Nothing of this outlives the namespace.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPOSITORY / "scripts" / "build-image"
#: A cold build downloads the dependencies from PyPI and copies whole file systems (vfs): be generous.
BUILD_TIMEOUT = 1800.0
RUN_TIMEOUT = 300.0


class BuildError(RuntimeError):
    """scripts/build-image or a buildah command failed; the message holds its output."""


@dataclass(frozen=True)
class BuiltImage:
    seconds: float
    """The build time the script printed (the `buildah bud` alone, without the push)."""
    size: int
    """The image's layers, uncompressed (what `docker images` shows)."""
    pushed: str
    """`REGISTRY/REPO:TAG@sha256:...`, as pushed."""
    output: str


def _fields(output: str) -> dict[str, str]:
    fields = {}
    for line in output.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key in ("build-time-seconds", "image-size-bytes", "pushed"):
            fields[key] = value.strip()
    return fields


def build_image(
    *,
    push_to: str,
    mirror: str,
    tag: str = "localhost/distroguard:test",
    insecure: Sequence[str] = (),
    store: Path | None = None,
) -> BuiltImage:
    """`scripts/build-image --registry-mirror docker.io=MIRROR [--insecure-registry H ...] [--store DIR]
    --push PUSH_TO`: what it printed."""
    command = [str(BUILD_SCRIPT), "--tag", tag, "--registry-mirror", f"docker.io={mirror}", "--push", push_to]
    for host in insecure:
        command += ["--insecure-registry", host]
    if store is not None:
        command += ["--store", str(store)]
    try:
        done = subprocess.run(
            command, cwd=REPOSITORY, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BuildError(
            f"scripts/build-image took more than {BUILD_TIMEOUT:.0f} s: {exc.stdout!r}"
        ) from None
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise BuildError(f"scripts/build-image exited {done.returncode}:\n{output[-6000:]}")
    fields = _fields(done.stdout)
    missing = {"build-time-seconds", "image-size-bytes", "pushed"} - set(fields)
    if missing:
        raise BuildError(f"scripts/build-image printed no {sorted(missing)}:\n{done.stdout[-3000:]}")
    return BuiltImage(
        seconds=float(fields["build-time-seconds"]),
        size=int(fields["image-size-bytes"]),
        pushed=fields["pushed"],
        output=output,
    )


@dataclass(frozen=True)
class Buildah:
    """buildah with an image store in `root` (vfs) and a configuration of its own: nothing of the
    machine's container configuration is read or written.
    """

    root: Path

    @classmethod
    @contextmanager
    def temporary(cls) -> Iterator[Buildah]:
        """A store in a fresh temporary directory, removed with every container in it at the end."""
        root = Path(tempfile.mkdtemp(prefix="distroguard-buildah-"))
        buildah = cls(root)
        buildah._configure()
        try:
            yield buildah
        finally:
            subprocess.run(buildah.command("rm", "--all"), env=buildah.env, capture_output=True, check=False)
            shutil.rmtree(root, ignore_errors=True)

    def _configure(self) -> None:
        config = self.root / "config"
        (config / "registries.conf.d").mkdir(parents=True)
        (config / "registries.conf").write_text("")
        (config / "containers.conf").write_text("")
        (config / "storage.conf").write_text(
            f'[storage]\ndriver = "vfs"\n'
            f'graphroot = "{self.root / "storage"}"\nrunroot = "{self.root / "run"}"\n'
        )
        (config / "policy.json").write_text('{"default": [{"type": "insecureAcceptAnything"}]}\n')

    @property
    def env(self) -> dict[str, str]:
        config = self.root / "config"
        return {
            **os.environ,
            "CONTAINERS_REGISTRIES_CONF": str(config / "registries.conf"),
            "CONTAINERS_CONF": str(config / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(config / "storage.conf"),
        }

    def command(self, *args: str) -> list[str]:
        return [
            "buildah",
            "--storage-driver",
            "vfs",
            "--root",
            str(self.root / "storage"),
            "--runroot",
            str(self.root / "run"),
            "--registries-conf-dir",
            str(self.root / "config" / "registries.conf.d"),
            *args,
        ]

    def _run(self, command: Sequence[str]) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                list(command), env=self.env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired:
            raise BuildError(f"`{' '.join(command)}` took more than {RUN_TIMEOUT:.0f} s") from None

    def _checked(self, *args: str) -> str:
        done = self._run(self.command(*args))
        if done.returncode != 0:
            raise BuildError(f"buildah {args[0]} exited {done.returncode}: {done.stderr.strip()}")
        return done.stdout.strip()

    def from_image(self, reference: str) -> str:
        """A working container of `reference`, pulled over plain HTTP (a loopback test registry)."""
        policy = str(self.root / "config" / "policy.json")
        return self._checked("from", "--tls-verify=false", "--signature-policy", policy, "--quiet", reference)

    def run(self, container: str, command: Sequence[str], *, user: str) -> subprocess.CompletedProcess[str]:
        """`buildah run --isolation chroot --user USER CONTAINER -- COMMAND`, root writable."""
        return self._run(
            self.command("run", "--isolation", "chroot", "--user", user, container, "--", *command)
        )

    def run_read_only(
        self, container: str, command: Sequence[str], *, user: str
    ) -> subprocess.CompletedProcess[str]:
        """`buildah run --isolation chroot --user USER`, with the container's root read-only (module doc)."""
        prepared = self.run(container, ["python", "-c", "pass"], user=user)
        if prepared.returncode != 0:
            raise BuildError(f"the writable run that creates the mount points failed: {prepared.stderr}")
        rootfs = self._checked("mount", container)
        script = (
            'set -e; root=$1; shift; mount --bind "$root" "$root"; mount -o remount,bind,ro "$root"; '
            'mount -t tmpfs -o size=1m,mode=0755 buildah-run "$root/run"; exec "$@"'
        )
        inner = self.command("run", "--isolation", "chroot", "--user", user, container, "--", *command)
        return self._run(
            ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", rootfs, *inner]
        )
