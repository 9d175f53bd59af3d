"""Which endoflife.date product an os-release `ID` or a runtime name belongs to, and how each
product's releases count for `requireLTS`.

Only what is listed here is matched. An unknown `ID` is reported unknown even when its `ID_LIKE`
names a known distribution: a derivative's lifecycle is its own (Raspbian, Linux Mint, ...), and
guessing would report an unsupported release as supported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# os-release ID -> endoflife.date product. Distroless images carry ID=debian: they follow their
# Debian base.
OS_PRODUCTS: dict[str, str] = {
    "alpine": "alpine-linux",
    "almalinux": "almalinux",
    "amzn": "amazon-linux",
    "centos": "centos",  # CentOS Stream has ID=centos too: told apart by its name (see match.py)
    "debian": "debian",
    "devuan": "devuan",
    "fedora": "fedora",
    "linuxmint": "linuxmint",
    "ol": "oracle-linux",
    "opensuse": "opensuse",  # Leap 42.x; old Tumbleweed also used ID=opensuse (see match.py)
    "opensuse-leap": "opensuse",
    "photon": "vmware-photon",
    "rhel": "rhel",
    "rocky": "rocky-linux",
    "sl-micro": "suse-linux-micro",
    "sle-micro": "suse-linux-micro",
    "sles": "sles",
    "ubuntu": "ubuntu",
}

# Rolling distributions: packages are updated continuously, there are no releases to reach end of
# life.
ROLLING: dict[str, str] = {
    "arch": "Arch Linux",
    "chainguard": "Chainguard OS",
    "gentoo": "Gentoo",
    "opensuse-tumbleweed": "openSUSE Tumbleweed",
    "wolfi": "Wolfi",
}

# Known to exist but not covered by endoflife.date: said so instead of a bare "unknown".
NOT_COVERED: dict[str, str] = {
    "azurelinux": "Azure Linux",
    "bottlerocket": "Bottlerocket",
    "busybox": "BusyBox",
    "mariner": "CBL-Mariner",
}

# Runtime names as image facts spell them (PYTHON_VERSION -> python, NODE_VERSION -> node, ...).
RUNTIME_PRODUCTS: dict[str, str] = {
    "bun": "bun",
    "deno": "deno",
    "dotnet": "dotnet",
    "go": "go",
    "golang": "go",
    # JAVA_VERSION is set by Eclipse Temurin images (and the deprecated `openjdk` ones): Temurin's
    # lifecycle, which supports LTS releases for years, is the one that applies to most Java images.
    "java": "eclipse-temurin",
    "temurin": "eclipse-temurin",
    "eclipse-temurin": "eclipse-temurin",
    "openjdk": "openjdk-builds-from-oracle",
    "node": "nodejs",
    "nodejs": "nodejs",
    "perl": "perl",
    "php": "php",
    "python": "python",
    "ruby": "ruby",
    "rust": "rust",
}

JAVA_PRODUCTS = frozenset({"eclipse-temurin", "openjdk-builds-from-oracle"})

LtsNotion = Literal["flag", "long", "short"]


@dataclass(frozen=True, slots=True)
class LtsPolicy:
    """How a product's releases count for `requireLTS`, and the sentence that says so."""

    notion: LtsNotion
    basis: str


# Products that mark LTS releases use the mark; the others are classified by how long a release
# lives.
LTS_POLICIES: dict[str, LtsPolicy] = {
    "ubuntu": LtsPolicy(
        "flag",
        "Ubuntu marks LTS releases, the .04 release of even years; interim releases get 9 months",
    ),
    "linuxmint": LtsPolicy("flag", "Linux Mint marks LTS releases"),
    "fedora": LtsPolicy("short", "Fedora has no LTS: every release is supported for about 13 months"),
    "alpine-linux": LtsPolicy(
        "long",
        "Alpine has no LTS: every stable branch gets about 2 years of security fixes, counted as long-term",
    ),
    "debian": LtsPolicy(
        "long",
        "Debian has no LTS mark: every stable release gets about 3 years of security support plus Debian LTS",
    ),
    "devuan": LtsPolicy("long", "Devuan follows Debian: every stable release is long-term"),
    "rhel": LtsPolicy("long", "every RHEL major release is supported for 10 years"),
    "rocky-linux": LtsPolicy("long", "every Rocky Linux major release follows RHEL's 10-year lifecycle"),
    "almalinux": LtsPolicy("long", "every AlmaLinux major release follows RHEL's 10-year lifecycle"),
    "oracle-linux": LtsPolicy("long", "every Oracle Linux major release is supported for 10 years"),
    "centos": LtsPolicy("long", "every CentOS Linux major release followed RHEL's lifecycle"),
    "centos-stream": LtsPolicy("long", "every CentOS Stream major release lives about 5 years"),
    "amazon-linux": LtsPolicy("long", "Amazon Linux 2 and 2023 are long-term releases (5 years or more)"),
    "opensuse": LtsPolicy(
        "long", "openSUSE Leap has no LTS mark: a Leap major line lasts years, counted as long-term"
    ),
    "sles": LtsPolicy("long", "SLES service packs belong to a 10-year major release, counted as long-term"),
    "suse-linux-micro": LtsPolicy(
        "long", "SUSE Linux Micro releases get about 4 years, counted as long-term"
    ),
    "vmware-photon": LtsPolicy("long", "Photon OS major releases get about 5 years, counted as long-term"),
}
