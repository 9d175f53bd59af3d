"""Golden messages: what a person reads when a container is denied or warned about, and the hint."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from distroguard.eol import EolCatalog, bundled_snapshot
from distroguard.model import ImageFacts
from distroguard.policy import ContainerImage, EvaluationContext, evaluate
from support.lifecycles import NOW, cycle, days, facts, product
from support.lifecycles import catalog as make_catalog
from support.policies import policy

CATALOG = make_catalog(
    product(
        "debian",
        "Debian",
        cycle("13", eol=days(900), eoes=days(1600), codename="Trixie", released=days(-200)),
        cycle("12", eol=days(-1), eoes=days(800), codename="Bookworm", released=days(-1000)),
    ),
    product("alpine-linux", "Alpine Linux", cycle("3.21", eol=days(200)), cycle("3.18", eol=days(-300))),
    product("centos", "CentOS", cycle("7", eol=days(-600))),
    product(
        "ubuntu",
        "Ubuntu",
        cycle("26.04", eol=days(1800), lts=True, released=days(-100)),
        cycle("24.10", eol=days(100), released=days(-500)),
        cycle("24.04", eol=days(1000), lts=True, released=days(-700)),
    ),
    product(
        "python",
        "Python",
        cycle("3.13", eol=days(1300), released=days(-300)),
        cycle("3.12", eol=days(500), released=days(-700)),
        cycle("3.9", eol=days(-1), released=days(-2000)),
        category="lang",
    ),
    product(
        "nodejs",
        "Node.js",
        cycle("24", eol=days(900), lts=days(-20), released=days(-50)),
        cycle("23", eol=days(20), released=days(-100)),
        cycle("22", eol=days(600), lts=days(-300), released=days(-500)),
        category="framework",
    ),
    product("eclipse-temurin", "Eclipse Temurin", cycle("17", eol=days(600), lts=True), category="lang"),
)

DEBIAN_12 = facts("debian", "12", codename="bookworm")
ALPINE = facts("alpine", "3.21.0", libc="musl", libc_version="1.2.5")

GOLDEN: list[tuple[str, str, ImageFacts | None, dict[str, Any], dict[str, Any], str]] = [
    (
        "eol distro, official image",
        "python:3.12-slim-bookworm",
        facts("debian", "12", codename="bookworm", runtimes=(("python", "3.12.1"),)),
        {"support": {}},
        {},
        'container "app" uses python:3.12-slim-bookworm (Debian 12 (bookworm), glibc 2.36): '
        "Debian 12 (bookworm) is past the end of security support (since 2026-03-09), which policy "
        "base-images/r does not allow; use an image on a supported release such as "
        "python:3.12-slim-trixie (supported until 2027-07-23)",
    ),
    (
        "within extended support",
        "debian:bookworm-slim",
        DEBIAN_12,
        {"support": {"countExtendedSupport": True}},
        {},
        'container "app" uses debian:bookworm-slim (Debian 12 (bookworm), glibc 2.36): Debian 12 '
        "(bookworm) is past regular security support (ended 2026-03-09) and only within extended "
        "support until 2028-05-18; policy base-images/r warns; use an image on a supported release "
        "such as debian:trixie-slim (supported until 2028-08-26)",
    ),
    (
        "eol soon, own image: no release newer than its own to suggest",
        "registry.example.com/team/app:1",
        facts("debian", "13", codename="trixie"),
        {"support": {"warnDaysBefore": 1000}},
        {},
        'container "app" uses registry.example.com/team/app:1 (Debian 13 (trixie), glibc 2.36): '
        "Debian 13 (trixie) reaches the end of security support on 2028-08-26, in 900 days "
        "(policy base-images/r warns 1000 days ahead)",
    ),
    (
        "eol python",
        "python:3.9-slim",
        facts("debian", "13", codename="trixie", runtimes=(("python", "3.9.18"),)),
        {"runtimes": {}},
        {},
        'container "app" uses python:3.9-slim (Debian 13 (trixie), glibc 2.36): Python 3.9.18 is '
        "past its end of life (since 2026-03-09), which policy base-images/r does not allow; use a "
        "supported image such as python:3.13-slim-trixie (supported until 2028-08-26)",
    ),
    (
        "node near eol: the newer LTS release is suggested, never the older 22",
        "node:23-alpine",
        facts("alpine", "3.21.0", libc="musl", libc_version="1.2.5", runtimes=(("nodejs", "23.1.0"),)),
        {"runtimes": {"warnDaysBefore": 30}},
        {},
        'container "app" uses node:23-alpine (Alpine Linux 3.21.0, musl 1.2.5): Node.js 23.1.0 '
        "reaches its end of life on 2026-03-30, in 20 days (policy base-images/r warns 30 days "
        "ahead); use a supported image such as node:24-trixie-slim (supported until 2028-08-26)",
    ),
    (
        "interim ubuntu: the next LTS, never the older 24.04",
        "ubuntu:24.10",
        facts("ubuntu", "24.10", codename="oracular"),
        {"requireLTS": {}},
        {},
        'container "app" uses ubuntu:24.10 (Ubuntu 24.10 (oracular), glibc 2.36): Ubuntu 24.10 '
        "(oracular) is a short-lived release (Ubuntu marks LTS releases, the .04 release of even "
        "years; interim releases get 9 months); policy base-images/r requires long-term releases; "
        "use an LTS release such as Ubuntu 26.04 (supported until 2031-02-12)",
    ),
    (
        "static binary on scratch",
        "ghcr.io/acme/tool:2",
        facts(None, None, libc="none", libc_version=None),
        {"requireKnownOS": {}},
        {},
        'container "app" uses ghcr.io/acme/tool:2 (no OS, no C library): it has no OS and no C '
        "library (a static binary FROM scratch?); policy base-images/r requires a known OS; if it "
        "is a static binary, allow it with requireKnownOS: {allowStatic: true}",
    ),
    (
        "unresolved image",
        "ghcr.io/acme/tool:2",
        None,
        {"requireKnownOS": {}},
        {"onUnresolved": "deny"},
        'container "app" uses ghcr.io/acme/tool:2 (facts unknown): its image could not be '
        "inspected (deadline exceeded after 2.5 s); policy base-images denies images it cannot inspect "
        "(onUnresolved: deny)",
    ),
    (
        "the rule's own message",
        "python:3.12-alpine",
        ALPINE,
        {
            "denyLibc": ["musl"],
            "message": "{container}: {image} is built on musl ({facts}), see "
            "https://wiki.example.com/base-images [{policy}/{rule}, {action}]: {suggestion}",
        },
        {},
        "app: python:3.12-alpine is built on musl (Alpine Linux 3.21.0, musl 1.2.5), see "
        "https://wiki.example.com/base-images [base-images/r, deny]: use a glibc-based image such "
        "as python:3.12-slim-trixie (supported until 2027-07-23)",
    ),
    (
        "java on alpine",
        "openjdk:17-jdk-alpine",
        facts("alpine", "3.18.4", libc="musl", libc_version="1.2.4", runtimes=(("java", "17.0.2"),)),
        {"denyLibc": ["musl"]},
        {},
        'container "app" uses openjdk:17-jdk-alpine (Alpine Linux 3.18.4, musl 1.2.4): musl is not '
        "allowed by policy base-images/r; use a glibc-based image such as eclipse-temurin:17-jdk "
        "(supported until 2027-10-31)",
    ),
    (
        "nginx on alpine",
        "nginx:1.25-alpine",
        facts("alpine", "3.18.4", libc="musl", libc_version="1.2.4"),
        {"denyLibc": ["musl"]},
        {},
        'container "app" uses nginx:1.25-alpine (Alpine Linux 3.18.4, musl 1.2.4): musl is not '
        "allowed by policy base-images/r; use a glibc-based image such as nginx:1.25",
    ),
    (
        "own image on alpine shipping python: the official image of its runtime",
        "registry.example.com/team/api:7",
        facts("alpine", "3.21.0", libc="musl", libc_version="1.2.5", runtimes=(("python", "3.12.4"),)),
        {"denyLibc": ["musl"]},
        {},
        'container "app" uses registry.example.com/team/api:7 (Alpine Linux 3.21.0, musl 1.2.5): musl is '
        "not allowed by policy base-images/r; use a glibc-based image such as python:3.12-slim-trixie "
        "(supported until 2027-07-23)",
    ),
    (
        "own image on alpine with no runtime: general terms",
        "registry.example.com/team/tool:7",
        ALPINE,
        {"denyLibc": ["musl"]},
        {},
        'container "app" uses registry.example.com/team/tool:7 (Alpine Linux 3.21.0, musl 1.2.5): musl is '
        "not allowed by policy base-images/r; use a glibc-based base image (for example a Debian slim "
        "image) and rebuild",
    ),
    (
        "alpine itself denied",
        "alpine:3.18",
        facts("alpine", "3.18.4", libc="musl", libc_version="1.2.4"),
        {"denyDistros": ["alpine"]},
        {},
        'container "app" uses alpine:3.18 (Alpine Linux 3.18.4, musl 1.2.4): Alpine Linux 3.18.4 '
        "is not allowed by policy base-images/r; use an image on another distribution such as "
        "debian:trixie-slim (supported until 2028-08-26)",
    ),
    (
        "glibc too old",
        "centos:7",
        facts("centos", "7", libc_version="2.17"),
        {"minGlibc": "2.28"},
        {},
        'container "app" uses centos:7 (CentOS 7, glibc 2.17): glibc 2.17 is older than 2.28, the '
        "minimum set by policy base-images/r; use a base image with a newer glibc (a supported "
        "Debian or Ubuntu LTS)",
    ),
    (
        "image too large",
        "registry.example.com/ml/train:5",
        facts("debian", "13", size=3 * 2**30),
        {"maxImageSize": "1Gi"},
        {},
        'container "app" uses registry.example.com/ml/train:5 (Debian 13, glibc 2.36): the image '
        "is 3.0 GiB, above the 1.0 GiB allowed by policy base-images/r; use a slim base image and "
        "a multi-stage build",
    ),
]


@pytest.mark.parametrize(
    ("image", "image_facts", "rule", "spec", "message"),
    [g[1:] for g in GOLDEN],
    ids=[g[0] for g in GOLDEN],
)
def test_golden_message(
    image: str,
    image_facts: ImageFacts | None,
    rule: dict[str, Any],
    spec: dict[str, Any],
    message: str,
) -> None:
    why = "" if image_facts else "deadline exceeded after 2.5 s"
    container = ContainerImage("app", image, image_facts, why)
    decision = evaluate(
        [container],
        [policy("base-images", {"name": "r", **rule}, **spec)],
        EvaluationContext(now=NOW),
        CATALOG,
    )
    assert [f.message for f in decision.findings] == [message]


def test_the_issue_example_with_the_bundled_catalog() -> None:
    python37 = facts("alpine", "3.9", libc="musl", libc_version="1.1.20", runtimes=(("python", "3.7.17"),))
    decision = evaluate(
        [ContainerImage("app", "python:3.7-alpine", python37)],
        [policy("python-base-images", {"name": "no-musl", "denyLibc": ["musl"]})],
        EvaluationContext(now=datetime(2026, 8, 22, tzinfo=UTC)),
        EolCatalog(bundled_snapshot()),
    )
    (finding,) = decision.findings
    assert finding.message == (
        'container "app" uses python:3.7-alpine (Alpine Linux 3.9, musl 1.1.20): musl is not '
        "allowed by policy python-base-images/no-musl; use a glibc-based image such as "
        "python:3.7-slim-bookworm (its support ended on 2023-06-27)"
    )
    assert finding.suggestion == (
        "use a glibc-based image such as python:3.7-slim-bookworm (its support ended on 2023-06-27)"
    )
    assert finding.facts == {"libc": "musl 1.1.20"}
    assert (finding.policy, finding.rule, finding.action, finding.severity) == (
        "python-base-images",
        "no-musl",
        "deny",
        "high",
    )


# -- suggestions never move backwards ---------------------------------------------------------------


def _suggestion(image: str, image_facts: ImageFacts, rule: dict[str, Any]) -> str | None:
    decision = evaluate(
        [ContainerImage("app", image, image_facts)],
        [policy("base-images", {"name": "r", **rule})],
        EvaluationContext(now=NOW),
        CATALOG,
    )
    (finding,) = decision.findings
    return finding.suggestion


def test_a_runtime_newer_than_every_lts_is_not_sent_back_to_the_lts() -> None:
    """Node.js 23 near its end: 22 is an LTS but older; 24 is the answer (and with only 22 known, none)."""
    node23 = facts("debian", "13", codename="trixie", runtimes=(("nodejs", "23.1.0"),))
    assert _suggestion("registry.example.com/app:1", node23, {"runtimes": {"warnDaysBefore": 30}}) == (
        "upgrade Node.js to a supported release such as 24 (supported until 2028-08-26)"
    )
    without_24 = make_catalog(
        product(
            "nodejs",
            "Node.js",
            cycle("23", eol=days(20), released=days(-100)),
            cycle("22", eol=days(600), lts=days(-300), released=days(-500)),
            category="framework",
        )
    )
    decision = evaluate(
        [ContainerImage("app", "node:23-bookworm", node23)],
        [policy("base-images", {"name": "r", "runtimes": {"warnDaysBefore": 30}})],
        EvaluationContext(now=NOW),
        without_24,
    )
    (finding,) = decision.findings
    assert finding.suggestion == "upgrade Node.js once a supported release newer than 23.1.0 exists"
    assert "22" not in (finding.suggestion or "")


def test_a_distribution_newer_than_the_suggestion_is_not_sent_back() -> None:
    """An image on Debian 13 whose Python is past its end: the tag must stay on Debian 13 or newer, so the
    runtime moves up rather than the distribution down."""
    python39_trixie = facts("debian", "13", codename="trixie", runtimes=(("python", "3.9.18"),))
    suggestion = _suggestion("python:3.9-slim-trixie", python39_trixie, {"runtimes": {}})
    assert suggestion == "use a supported image such as python:3.13-slim-trixie (supported until 2028-08-26)"
    newest = facts("debian", "14", codename="forky")
    assert _suggestion("debian:forky", newest, {"denyDistros": ["debian"]}) is not None
    assert "trixie" not in (_suggestion("debian:forky", newest, {"denyDistros": ["debian"]}) or "")


def test_an_ubuntu_newer_than_every_lts_gets_no_older_lts() -> None:
    ubuntu = make_catalog(
        product(
            "ubuntu",
            "Ubuntu",
            cycle("26.10", eol=days(270), released=days(-30)),
            cycle("26.04", eol=days(1800), lts=True, released=days(-200)),
        )
    )
    decision = evaluate(
        [ContainerImage("app", "ubuntu:26.10", facts("ubuntu", "26.10", codename="questing"))],
        [policy("base-images", {"name": "r", "requireLTS": {}})],
        EvaluationContext(now=NOW),
        ubuntu,
    )
    (finding,) = decision.findings
    # No LTS release newer than 26.10 exists yet: the general advice, never "Ubuntu 26.04".
    assert (
        finding.suggestion == "use a long-term release (for example Debian stable or an Ubuntu LTS release)"
    )
