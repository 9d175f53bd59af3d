"""The C library each distribution release ships: a fallback for when an image's files do not say.

Facts, not guesses: every version below is the upstream version of the distribution's own libc
package in that release, which a release keeps for its whole life (security fixes are backported,
the upstream version does not move). Where a release is missing, the lookup gives the family alone.
Rolling distributions (Wolfi, Arch, Tumbleweed, Alpine edge) have no version row by nature.

Sources, checked against each distribution's package archive:
- Debian: packages.debian.org / snapshot.debian.org, source package glibc per suite.
- Ubuntu: launchpad.net/ubuntu/+source/glibc (eglibc before 14.10), version per series.
- RHEL and rebuilds: the glibc package of each major release (Red Hat's package manifests, the
  AlmaLinux / Rocky / Oracle BaseOS repositories); RHEL keeps one glibc version per major release.
- Fedora: src.fedoraproject.org/rpms/glibc, the branch of each release.
- Amazon Linux: the AL1, AL2 and AL2023 package lists (glibc 2.17, 2.26, 2.34).
- SUSE: the glibc package of each SLE 15 service pack (2.26 up to SP2, 2.31 for SP3-SP5, 2.38 for
  SP6-SP7; release numbers 150000 / 150300 / 150600), SLE 12 (2.19, 2.22 from SP2), SLE/Leap 16
  (2.40); openSUSE Leap follows the service pack it is built from (42.x on SLE 12, 15.x on SLE 15).
- Alpine: pkgs.alpinelinux.org, package musl per branch, and the release notes (musl 1.2 arrived
  in 3.13, 1.2.4 in 3.18).
- Photon OS: the glibc spec of each vmware/photon release branch.
- CBL-Mariner / Azure Linux: the glibc spec of each microsoft/azurelinux release branch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from distroguard.model import LibcFamily, OSRelease


@dataclass(frozen=True, slots=True)
class Shipped:
    """What a distribution release ships: the family always, the version where the table has it."""

    family: LibcFamily
    version: str | None
    release: str
    """The release in words, for evidence: "Debian 12", "Alpine Linux 3.19", "Wolfi"."""


# -- versions by release --------------------------------------------------------------------------

_DEBIAN = {
    "6": "2.11",
    "7": "2.13",
    "8": "2.19",
    "9": "2.24",
    "10": "2.28",
    "11": "2.31",
    "12": "2.36",
    "13": "2.41",
}
_UBUNTU = {
    "10.04": "2.11",
    "12.04": "2.15",
    "12.10": "2.15",
    "13.04": "2.17",
    "13.10": "2.17",
    "14.04": "2.19",
    "14.10": "2.19",
    "15.04": "2.21",
    "15.10": "2.21",
    "16.04": "2.23",
    "16.10": "2.24",
    "17.04": "2.24",
    "17.10": "2.26",
    "18.04": "2.27",
    "18.10": "2.28",
    "19.04": "2.29",
    "19.10": "2.30",
    "20.04": "2.31",
    "20.10": "2.32",
    "21.04": "2.33",
    "21.10": "2.34",
    "22.04": "2.35",
    "22.10": "2.36",
    "23.04": "2.37",
    "23.10": "2.38",
    "24.04": "2.39",
    "24.10": "2.40",
    "25.04": "2.41",
    "25.10": "2.42",
    "26.04": "2.43",
}
# Enterprise Linux, by major release: RHEL and every rebuild of it.
_EL = {"5": "2.5", "6": "2.12", "7": "2.17", "8": "2.28", "9": "2.34", "10": "2.39"}
_FEDORA = {
    str(release): f"2.{minor}"
    for release, minor in (
        (19, 17),
        (20, 18),
        (21, 20),
        (22, 21),
        (23, 22),
        (24, 23),
        (25, 24),
        (26, 25),
        (27, 26),
        (28, 27),
        (29, 28),
        (30, 29),
        (31, 30),
        (32, 31),
        (33, 32),
        (34, 33),
        (35, 34),
        (36, 35),
        (37, 36),
        (38, 37),
        (39, 38),
        (40, 39),
        (41, 40),
        (42, 41),
        (43, 42),
        (44, 43),
    )
}
# Amazon Linux AMI (AL1) releases are named by date and all carry glibc 2.17 from 2014.09 on;
# AL2023's system-release says "2023.5.20240722", found by its major.
_AMAZON = {
    "2": "2.26",
    "2023": "2.34",
    **dict.fromkeys(
        ("2014.09", "2015.03", "2015.09", "2016.03", "2016.09", "2017.03", "2017.09", "2018.03"),
        "2.17",
    ),
}
# SLE by "major.service pack"; openSUSE Leap 15.x and 16.0 share SLE's numbers, Leap 42.x is SLE 12.
_SUSE = {
    "12.0": "2.19",
    "12.1": "2.19",
    "12.2": "2.22",
    "12.3": "2.22",
    "12.4": "2.22",
    "12.5": "2.22",
    "15.0": "2.26",
    "15.1": "2.26",
    "15.2": "2.26",
    "15.3": "2.31",
    "15.4": "2.31",
    "15.5": "2.31",
    "15.6": "2.38",
    "15.7": "2.38",
    "16.0": "2.40",
}
_LEAP_42 = {"42.1": "2.19", "42.2": "2.22", "42.3": "2.22"}
_ALPINE_MUSL = {
    "3.3": "1.1.12",
    "3.4": "1.1.14",
    "3.5": "1.1.15",
    "3.6": "1.1.16",
    "3.7": "1.1.18",
    "3.8": "1.1.19",
    "3.9": "1.1.20",
    "3.10": "1.1.22",
    "3.11": "1.1.24",
    "3.12": "1.1.24",
    "3.13": "1.2.2",
    "3.14": "1.2.2",
    "3.15": "1.2.2",
    "3.16": "1.2.3",
    "3.17": "1.2.3",
    "3.18": "1.2.4",
    "3.19": "1.2.4",
    "3.20": "1.2.5",
    "3.21": "1.2.5",
    "3.22": "1.2.5",
}
_PHOTON = {"1.0": "2.22", "2.0": "2.26", "3.0": "2.28", "4.0": "2.32", "5.0": "2.36"}
_MARINER = {"1.0": "2.28", "2.0": "2.35"}
_AZURELINUX = {"3.0": "2.38"}

# -- distributions --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Distro:
    name: str
    family: LibcFamily
    versions: dict[str, str] | None = None
    key: Literal["major", "minor", "exact"] = "major"
    """How VERSION_ID becomes a table key: "major" (12.5 -> 12), "minor" (3.19.1 -> 3.19,
    15 -> 15.0) or "exact" (2018.03, falling back to the major: 2023.5.20240722 -> 2023)."""


_DISTROS: dict[str, _Distro] = {
    "debian": _Distro("Debian", "glibc", _DEBIAN),
    # Raspbian N is Debian N rebuilt for ARM, with Debian's glibc.
    "raspbian": _Distro("Raspbian", "glibc", _DEBIAN),
    "ubuntu": _Distro("Ubuntu", "glibc", _UBUNTU, "minor"),
    "rhel": _Distro("Red Hat Enterprise Linux", "glibc", _EL),
    "centos": _Distro("CentOS", "glibc", _EL),
    "rocky": _Distro("Rocky Linux", "glibc", _EL),
    "almalinux": _Distro("AlmaLinux", "glibc", _EL),
    "ol": _Distro("Oracle Linux", "glibc", _EL),
    "scientific": _Distro("Scientific Linux", "glibc", _EL),
    "fedora": _Distro("Fedora", "glibc", _FEDORA),
    "amzn": _Distro("Amazon Linux", "glibc", _AMAZON, "exact"),
    "sles": _Distro("SUSE Linux Enterprise Server", "glibc", _SUSE, "minor"),
    "sled": _Distro("SUSE Linux Enterprise Desktop", "glibc", _SUSE, "minor"),
    "opensuse-leap": _Distro("openSUSE Leap", "glibc", _SUSE, "minor"),
    # Before Leap 15, Leap (42.x) and Tumbleweed shared ID=opensuse; only Leap has versions here.
    "opensuse": _Distro("openSUSE", "glibc", _LEAP_42, "minor"),
    "opensuse-tumbleweed": _Distro("openSUSE Tumbleweed", "glibc"),
    "sle-micro": _Distro("SLE Micro", "glibc"),
    "sle-micro-rancher": _Distro("SLE Micro for Rancher", "glibc"),
    "sl-micro": _Distro("SUSE Linux Micro", "glibc"),
    "photon": _Distro("Photon OS", "glibc", _PHOTON, "minor"),
    "mariner": _Distro("CBL-Mariner", "glibc", _MARINER, "minor"),
    "azurelinux": _Distro("Azure Linux", "glibc", _AZURELINUX, "minor"),
    "alpine": _Distro("Alpine Linux", "musl", _ALPINE_MUSL, "minor"),
    "postmarketos": _Distro("postmarketOS", "musl"),
    "chimera": _Distro("Chimera Linux", "musl"),
    "adelie": _Distro("Adélie Linux", "musl"),
    # Wolfi and Chainguard OS are apk-based like Alpine but built on glibc.
    "wolfi": _Distro("Wolfi", "glibc"),
    "chainguard": _Distro("Chainguard OS", "glibc"),
    "arch": _Distro("Arch Linux", "glibc"),
    "kali": _Distro("Kali Linux", "glibc"),
    "linuxmint": _Distro("Linux Mint", "glibc"),
    "devuan": _Distro("Devuan", "glibc"),
    "vyos": _Distro("VyOS", "glibc"),
    "gentoo": _Distro("Gentoo", "glibc"),  # the default profile; musl profiles show a musl loader
    "exherbo": _Distro("Exherbo", "glibc"),
    "guix": _Distro("Guix System", "glibc"),
    "slackware": _Distro("Slackware", "glibc"),
    "clear-linux-os": _Distro("Clear Linux OS", "glibc"),
    "coreos": _Distro("CoreOS", "glibc"),
    "flatcar": _Distro("Flatcar Container Linux", "glibc"),
    "bottlerocket": _Distro("Bottlerocket", "glibc"),
    "hummingbird": _Distro("Hummingbird", "glibc"),
    "cloudlinux": _Distro("CloudLinux", "glibc"),
    "eurolinux": _Distro("EuroLinux", "glibc"),
    "virtuozzo": _Distro("Virtuozzo Linux", "glibc"),
    "mageia": _Distro("Mageia", "glibc"),
    "openeuler": _Distro("openEuler", "glibc"),
    "anolis": _Distro("Anolis OS", "glibc"),
}

_VERSION = re.compile(r"(\d+)(?:\.(\d+))?")


def _keys(version_id: str, how: Literal["major", "minor", "exact"]) -> tuple[str, ...]:
    """The table keys a VERSION_ID may be filed under, most specific first."""
    # A pre-release ("3.19_alpha20230901" is Alpine edge) is not the release it precedes.
    if any(tag in version_id for tag in ("_alpha", "_beta", "_rc")):
        return ()
    match = _VERSION.match(version_id)
    if match is None:
        return ()
    major, minor = match.group(1), match.group(2)
    if how == "exact":
        return (version_id, major)
    return (major,) if how == "major" else (f"{major}.{minor or '0'}",)


def lookup(os: OSRelease) -> Shipped | None:
    """The libc `os` ships; by its ID, else (family only) by the first ID_LIKE the table knows."""
    distro = _DISTROS.get(os.id)
    if distro is None:
        like = next((_DISTROS[i] for i in os.id_like if i in _DISTROS), None)
        if like is None:
            return None
        return Shipped(like.family, None, f"{os.id} (like {like.name})")
    if os.version_id and distro.versions:
        for key in _keys(os.version_id, distro.key):
            if key in distro.versions:
                return Shipped(distro.family, distro.versions[key], f"{distro.name} {key}")
    release = f"{distro.name} {os.version_id}" if os.version_id else distro.name
    return Shipped(distro.family, None, release)
