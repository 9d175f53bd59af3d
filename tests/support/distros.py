"""Image roots laid out like real distributions' images, for tests and the sample image.

File contents are small stand-ins with the real structure (os-release lines, dpkg and apk database
stanzas, glibc's version banner inside an ELF-looking body); paths and symlinks are the real ones.
"""

from __future__ import annotations

from support.images import BuiltImage, Entry, ImageBuilder, Symlink

Link = Symlink
Files = dict[str, bytes | Entry]

ELF = b"\x7fELF\x02\x01\x01" + b"\x00" * 200


def banner(text: str) -> bytes:
    """A libc.so.6 body: padding, then glibc's version text, then more padding."""
    return ELF + b"x" * 1000 + text.encode() + b"\nCopyright (C) 2023\x00" + b"y" * 500


DEBIAN_GLIBC = banner("GNU C Library (Debian GLIBC 2.36-9+deb12u4) stable release version 2.36.")
UBUNTU_GLIBC = banner("GNU C Library (Ubuntu GLIBC 2.39-0ubuntu8.3) stable release version 2.39.")
RHEL_GLIBC = banner("GNU C Library (GNU libc) stable release version 2.34.")


def dpkg(name: str, version: str, status: str = "install ok installed") -> bytes:
    return (
        f"Package: {name}\nStatus: {status}\nPriority: optional\nArchitecture: amd64\n"
        f"Version: {version}\nDescription: {name}\n a description\n .\n continued\n"
    ).encode()


def distroless_status(name: str, version: str) -> bytes:
    # Distroless status.d entries have no Status field.
    return f"Package: {name}\nVersion: {version}\nArchitecture: amd64\n".encode()


def apk(name: str, version: str) -> bytes:
    return (
        f"C:Q1abcdef=\nP:{name}\nV:{version}\nA:x86_64\nS:1000\nI:2000\nT:{name}\n"
        f"F:usr/lib\nR:lib{name}.so\nZ:Q1xyz=\n"
    ).encode()


def database(*stanzas: bytes) -> bytes:
    return b"\n".join(stanzas)


def os_release(text: str) -> bytes:
    return text.encode()


DEBIAN_12 = os_release('ID=debian\nVERSION_ID="12"\nVERSION="12 (bookworm)"\n')
UBUNTU_2404 = os_release('ID=ubuntu\nVERSION_ID="24.04"\nVERSION_CODENAME=noble\n')
ALPINE_319 = os_release("ID=alpine\nVERSION_ID=3.19.1\n")
WOLFI = os_release('ID=wolfi\nVERSION_ID="20230201"\n')

# Debian 12 as the image ships it: merged /usr, the loader reached through /lib64.
DEBIAN_12_ROOT: Files = {
    "/etc/os-release": Link("../usr/lib/os-release"),
    "/usr/lib/os-release": DEBIAN_12,
    "/etc/debian_version": b"12.5\n",
    "/lib": Link("usr/lib"),
    "/lib64": Link("usr/lib64"),
    "/usr/lib64/ld-linux-x86-64.so.2": Link("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
    "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": ELF,
    "/usr/lib/x86_64-linux-gnu/libc.so.6": DEBIAN_GLIBC,
    "/var/lib/dpkg/status": database(
        dpkg("base-files", "12.4+deb12u5"),
        dpkg("libc6", "2.36-9+deb12u4"),
        dpkg("zlib1g", "1:1.2.13.dfsg-1"),
    ),
}

# Alpine 3.19: musl's loader, with libc.musl-<arch>.so.1 a link to it.
ALPINE_ROOT: Files = {
    "/etc/os-release": ALPINE_319,
    "/lib/ld-musl-x86_64.so.1": ELF,
    "/lib/libc.musl-x86_64.so.1": Link("ld-musl-x86_64.so.1"),
    "/lib/apk/db/installed": database(
        apk("musl", "1.2.4_git20230717-r4"), apk("busybox", "1.36.1-r15"), apk("zlib", "1.3.1-r0")
    ),
}

# gcompat / libc6-compat put glibc's names on disk; they are shims over musl.
ALPINE_GCOMPAT_ROOT: Files = {
    **ALPINE_ROOT,
    "/lib/ld-linux-x86-64.so.2": Link("/lib/ld-musl-x86_64.so.1"),
    "/lib/libgcompat.so.0": ELF,
    "/lib/libc.so.6": ELF + b"not glibc, no banner",
    "/lib64/ld-linux-x86-64.so.2": Link("/lib/ld-linux-x86-64.so.2"),
    "/lib/apk/db/installed": database(
        apk("musl", "1.2.4_git20230717-r4"),
        apk("gcompat", "1.1.0-r4"),
        apk("libc6-compat", "1.2.4_git20230717-r4"),
    ),
}

# Distroless static: Debian's os-release, dpkg status.d without libc6, no libc file at all.
DISTROLESS_STATIC_ROOT: Files = {
    "/etc/os-release": os_release(
        'PRETTY_NAME="Distroless"\nNAME="Debian GNU/Linux"\nID="debian"\nVERSION_ID="12"\n'
    ),
    "/etc/debian_version": b"12.5\n",
    "/var/lib/dpkg/status.d/base-files": distroless_status("base-files", "12.4+deb12u5"),
    "/var/lib/dpkg/status.d/base-files.md5sums": b"d41d8cd98f00b204e9800998ecf8427e  etc/x\n",
    "/var/lib/dpkg/status.d/netbase": distroless_status("netbase", "6.4"),
    "/var/lib/dpkg/status.d/tzdata": distroless_status("tzdata", "2024a-0+deb12u1"),
    "/etc/ssl/certs/ca-certificates.crt": b"-----BEGIN CERTIFICATE-----\n",
}

# Ubuntu 24.04 with the `musl` package: a musl loader on a glibc system.
UBUNTU_MUSL_ROOT: Files = {
    "/etc/os-release": UBUNTU_2404,
    "/lib": Link("usr/lib"),
    "/usr/lib/x86_64-linux-gnu/libc.so.6": UBUNTU_GLIBC,
    "/usr/lib/ld-musl-x86_64.so.1": Link("/usr/lib/x86_64-linux-musl/libc.so"),
    "/usr/lib/x86_64-linux-musl/libc.so": ELF,
    "/var/lib/dpkg/status": database(dpkg("libc6", "2.39-0ubuntu8.3"), dpkg("musl", "1.2.4-2")),
}

# Ubuntu 24.04 LTS (noble), in regular support until 2029: merged /usr, glibc 2.39.
UBUNTU_2404_ROOT: Files = {
    "/etc/os-release": Link("../usr/lib/os-release"),
    "/usr/lib/os-release": UBUNTU_2404,
    "/lib": Link("usr/lib"),
    "/lib64": Link("usr/lib64"),
    "/usr/lib64/ld-linux-x86-64.so.2": Link("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
    "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": ELF,
    "/usr/lib/x86_64-linux-gnu/libc.so.6": UBUNTU_GLIBC,
    "/var/lib/dpkg/status": database(dpkg("base-files", "13ubuntu10.1"), dpkg("libc6", "2.39-0ubuntu8.3")),
}

# Debian 11, for images whose upper layer upgrades the distribution.
DEBIAN_11_ROOT: Files = {
    **DEBIAN_12_ROOT,
    "/usr/lib/os-release": os_release('ID=debian\nVERSION_ID="11"\nVERSION="11 (bullseye)"\n'),
    "/etc/debian_version": b"11.9\n",
    "/usr/lib/x86_64-linux-gnu/libc.so.6": banner(
        "GNU C Library (Debian GLIBC 2.31-13+deb11u8) stable release version 2.31."
    ),
    "/var/lib/dpkg/status": database(dpkg("base-files", "11.1+deb11u9"), dpkg("libc6", "2.31-13+deb11u8")),
}

# Debian 9 (stretch), long past all support: before merged /usr, libc and the loader under /lib.
DEBIAN_9_ROOT: Files = {
    "/etc/os-release": Link("../usr/lib/os-release"),
    "/usr/lib/os-release": os_release(
        'PRETTY_NAME="Debian GNU/Linux 9 (stretch)"\nNAME="Debian GNU/Linux"\nVERSION_ID="9"\n'
        'VERSION="9 (stretch)"\nVERSION_CODENAME=stretch\nID=debian\n'
    ),
    "/etc/debian_version": b"9.13\n",
    "/lib64/ld-linux-x86-64.so.2": Link("/lib/x86_64-linux-gnu/ld-2.24.so"),
    "/lib/x86_64-linux-gnu/ld-2.24.so": ELF,
    "/lib/x86_64-linux-gnu/libc.so.6": Link("libc-2.24.so"),
    "/lib/x86_64-linux-gnu/libc-2.24.so": banner(
        "GNU C Library (Debian GLIBC 2.24-11+deb9u4) stable release version 2.24, by Roland McGrath et al."
    ),
    "/var/lib/dpkg/status": database(dpkg("base-files", "9.9+deb9u13"), dpkg("libc6", "2.24-11+deb9u4")),
}

# FROM scratch with one static binary: no OS, no C library.
SCRATCH_STATIC_ROOT: Files = {
    "/app": ELF + b"statically linked Go program",
}


def debian_python_image() -> BuiltImage:
    """Debian 12 with a Python 3.12 layer on top, as the official `python:3.12` images are laid out."""
    return (
        ImageBuilder()
        .layer(DEBIAN_12_ROOT)
        .layer({"usr/local/bin/python3.12": ELF})
        .env("PYTHON_VERSION=3.12.8")
        .build()
    )
