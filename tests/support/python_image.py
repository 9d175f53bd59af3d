"""The stand-in for Docker Hub's `python:3.13-slim-trixie`, built from real Debian trixie packages.

Docker Hub is out of reach here, so the image is layered the way the official one is:

    layer 1  debian:trixie-slim's part: base-files (its os-release and the merged-/usr links), base-passwd
             (/etc/passwd and /etc/group, as its postinst writes them), dash (/bin/sh for RUN steps), libc6;
    layer 2  the Python image's part: the interpreter with its standard library, venv and the pip and
             setuptools wheels that ensurepip installs, ca-certificates (the bundle that
             update-ca-certificates would write, for pip's TLS), netbase and tzdata; `python`, `python3`
             and `python3.13` in /usr/local/bin as the official image names them;
    config   the official image's Env (PATH with /usr/local/bin first, LANG, PYTHON_VERSION) and Cmd.

Each layer holds every package its roots need, as apt resolves them (support.debian_packages), and
/var/lib/dpkg/status records what is installed, so the OS and libc facts come from the same files as in
the real image. The official image compiles Python into /usr/local; this one runs Debian's build of the
same minor version from /usr, which is what `python -m venv` and pip need in a Dockerfile's RUN step.

    image = python_slim()                     # BuiltImage; the .debs are cached under .cache/debian/
    await push(registry.url, "library/python", "3.13-slim-trixie", image)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from support.debian_packages import (
    DebPackage,
    dependency_closure,
    dpkg_status,
    fetch_packages,
    read_deb,
    rootfs_tar,
)
from support.images import BuiltImage, ImageBuilder

SUITE = "trixie"
REPOSITORY = "library/python"
TAG = "3.13-slim-trixie"
#: The roots of each layer; their dependencies come along.
OS_ROOTS = ("base-files", "base-passwd", "dash", "libc6")
PYTHON_ROOTS = ("python3.13", "python3.13-venv", "ca-certificates", "netbase", "tzdata")
#: Where update-ca-certificates writes the bundle of every certificate it enables (all, by default).
CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"
CA_SOURCE = "usr/share/ca-certificates/"


def upstream(version: str) -> str:
    """`2.41-12+deb13u5` → `2.41`, `1:3.13.5-2` → `3.13.5`: the upstream part of a Debian version."""
    return version.partition(":")[2 if ":" in version else 0].rpartition("-")[0] or version


@dataclass(frozen=True)
class PythonSlim:
    """The built image and the packages it was built from (what the facts about it must match)."""

    image: BuiltImage
    packages: Mapping[str, DebPackage]

    @property
    def python_version(self) -> str:
        return upstream(self.packages["python3.13-minimal"].version)

    @property
    def glibc_version(self) -> str:
        return upstream(self.packages["libc6"].version)

    @property
    def os_release(self) -> str:
        return self.packages["base-files"].read("usr/lib/os-release").decode()


@cache
def python_slim() -> PythonSlim:
    """The stand-in image (built once per process; the .debs are downloaded once per cache)."""
    os_names = dependency_closure(SUITE, OS_ROOTS)
    everything_names = dependency_closure(SUITE, OS_ROOTS + PYTHON_ROOTS)
    python_names = [name for name in everything_names if name not in os_names]
    debs = fetch_packages(SUITE, [*os_names, *python_names])
    packages = {name: read_deb(path) for name, path in debs.items()}
    os_layer = [packages[name] for name in os_names]
    python_layer = [packages[name] for name in python_names]
    everything = [*os_layer, *python_layer]
    base = rootfs_tar(
        os_layer,
        extra={
            "var/lib/dpkg/status": dpkg_status(os_layer),
            "etc/passwd": packages["base-passwd"].read("usr/share/base-passwd/passwd.master"),
            "etc/group": packages["base-passwd"].read("usr/share/base-passwd/group.master"),
        },
    )
    python = rootfs_tar(
        python_layer,
        extra={"var/lib/dpkg/status": dpkg_status(everything), CA_BUNDLE: _ca_bundle(python_layer)},
        symlinks={
            "usr/local/bin/python3.13": "/usr/bin/python3.13",
            "usr/local/bin/python3": "python3.13",
            "usr/local/bin/python": "python3",
        },
    )
    python_version = upstream(packages["python3.13-minimal"].version)
    image = (
        ImageBuilder()
        .raw_layer(base, "gzip", created_by=f"debian:{SUITE}-slim rootfs ({', '.join(os_names)})")
        .raw_layer(python, "gzip", created_by=f"python {python_version} ({', '.join(PYTHON_ROOTS)})")
        .env(
            "PATH=/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG=C.UTF-8",
            f"PYTHON_VERSION={python_version}",
        )
        .config_fields(Cmd=["python3"])
        .build()
    )
    return PythonSlim(image=image, packages=packages)


def _ca_bundle(packages: Sequence[DebPackage]) -> bytes:
    """The certificates ca-certificates ships, concatenated in name order as update-ca-certificates does."""
    (ca,) = [package for package in packages if package.name == "ca-certificates"]
    certificates = sorted(path for path in ca.paths() if path.startswith(CA_SOURCE) and path.endswith(".crt"))
    if not certificates:
        raise ValueError("ca-certificates ships no certificate under /usr/share/ca-certificates")
    return b"".join(ca.read(path).rstrip(b"\n") + b"\n" for path in certificates)
