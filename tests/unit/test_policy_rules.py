"""Every rule kind, table-driven, on a frozen clock (TODAY) with a synthetic EOL catalog.

Each case: facts, one rule (and spec options), and the (reason, action) of each expected finding.
"""

from __future__ import annotations

from typing import Any

import pytest

from distroguard.eol import EolCatalog
from distroguard.model import ImageFacts, ReleaseCycle
from distroguard.model.lifecycle import PhaseEnd
from distroguard.policy import ContainerImage, EvaluationContext, evaluate
from support.lifecycles import NOW, cycle, days, facts, product
from support.lifecycles import catalog as make_catalog
from support.policies import policy

Expected = list[tuple[str, str]]


def debian(eol: PhaseEnd, *, eoes: PhaseEnd | None = None, eoas: PhaseEnd | None = None) -> EolCatalog:
    """Debian 12 with the given deadlines, and a supported Debian 13 to suggest."""
    return make_catalog(
        product(
            "debian",
            "Debian",
            cycle("13", eol=days(900), eoes=days(1600), codename="Trixie", released=days(-200)),
            cycle("12", eol=eol, eoes=eoes, eoas=eoas, codename="Bookworm", released=days(-1000)),
        ),
        product(
            "ubuntu",
            "Ubuntu",
            cycle("24.04", eol=days(1000), lts=True),
            cycle("24.10", eol=days(100)),
        ),
        product("fedora", "Fedora Linux", cycle("42", eol=days(60))),
        product(
            "python",
            "Python",
            cycle("3.13", eol=days(1300), released=days(-300)),
            cycle("3.12", eol=days(40), released=days(-700)),
            cycle("3.9", eol=days(-1), released=days(-2000)),
            category="lang",
        ),
        product(
            "nodejs",
            "Node.js",
            cycle("23", eol=days(20), released=days(-100)),
            cycle("22", eol=days(600), lts=days(-300), released=days(-500)),
            category="framework",
        ),
    )


SUPPORTED = debian(days(500))


def run(
    image_facts: ImageFacts | None,
    rule: dict[str, Any],
    catalog: EolCatalog = SUPPORTED,
    **spec: Any,
) -> Expected:
    container = ContainerImage("app", image_facts.reference if image_facts else "app:1", image_facts)
    decision = evaluate(
        [container],
        [policy("p", {"name": "r", **rule}, **spec)],
        EvaluationContext(now=NOW),
        catalog,
    )
    return [(f.reason, f.action) for f in decision.findings]


SUPPORT_CASES: list[tuple[str, EolCatalog, dict[str, Any], dict[str, Any], Expected]] = [
    ("eol far away", debian(days(500)), {}, {}, []),
    ("eol tomorrow, no warning asked", debian(days(1)), {}, {}, []),
    (
        "eol tomorrow, within warnDaysBefore",
        debian(days(1)),
        {"warnDaysBefore": 30},
        {},
        [("eol-soon", "warn")],
    ),
    (
        "eol in 30 days, warn 30",
        debian(days(30)),
        {"warnDaysBefore": 30},
        {},
        [("eol-soon", "warn")],
    ),
    ("eol in 31 days, warn 30", debian(days(31)), {"warnDaysBefore": 30}, {}, []),
    ("eol today", debian(days(0)), {"warnDaysBefore": 30}, {}, [("eol", "deny")]),
    ("eol yesterday", debian(days(-1)), {}, {}, [("eol", "deny")]),
    ("eol yesterday, grace 7", debian(days(-1)), {"graceDays": 7}, {}, [("eol-grace", "warn")]),
    ("eol 6 days ago, grace 7", debian(days(-6)), {"graceDays": 7}, {}, [("eol-grace", "warn")]),
    ("eol 7 days ago, grace 7", debian(days(-7)), {"graceDays": 7}, {}, [("eol", "deny")]),
    ("eol known, date unknown", debian(True), {"graceDays": 7}, {}, [("eol", "deny")]),
    ("no eol announced", debian(False), {"warnDaysBefore": 30}, {}, []),
    (
        "extended support not counted",
        debian(days(-1), eoes=days(300)),
        {},
        {},
        [("eol", "deny")],
    ),
    (
        "within extended support",
        debian(days(-1), eoes=days(300)),
        {"countExtendedSupport": True},
        {},
        [("extended-support", "warn")],
    ),
    (
        "extended support ends today",
        debian(days(-300), eoes=days(0)),
        {"countExtendedSupport": True},
        {},
        [("eol", "deny")],
    ),
    (
        "extended support ends in 10 days",
        debian(days(-300), eoes=days(10)),
        {"countExtendedSupport": True, "warnDaysBefore": 90},
        {},
        [("eol-soon", "warn")],
    ),
    (
        "regular support ends soon, extended follows",
        debian(days(10), eoes=days(700)),
        {"countExtendedSupport": True, "warnDaysBefore": 90},
        {},
        [("eol-soon", "warn")],
    ),
    (
        "active support over, not required",
        debian(days(300), eoas=days(-1)),
        {},
        {},
        [],
    ),
    (
        "active support over, required",
        debian(days(300), eoas=days(-1)),
        {"requireActive": True},
        {},
        [("active-support-ended", "deny")],
    ),
    ("audit policy: eol is audited", debian(days(-1)), {}, {"action": "audit"}, [("eol", "audit")]),
    (
        "audit policy: a warning stays audit",
        debian(days(5)),
        {"warnDaysBefore": 30},
        {"action": "audit"},
        [("eol-soon", "audit")],
    ),
    ("warn policy: eol warns", debian(days(-1)), {}, {"action": "warn"}, [("eol", "warn")]),
]


@pytest.mark.parametrize(
    ("catalog", "options", "spec", "expected"),
    [c[1:] for c in SUPPORT_CASES],
    ids=[c[0] for c in SUPPORT_CASES],
)
def test_support(
    catalog: EolCatalog, options: dict[str, Any], spec: dict[str, Any], expected: Expected
) -> None:
    assert run(facts("debian", "12"), {"support": options}, catalog, **spec) == expected


@pytest.mark.parametrize(
    ("image_facts", "on_unresolved", "expected"),
    [
        (facts("debian", "99"), "warn", [("lifecycle-unknown", "warn")]),
        (facts("debian", "99"), "deny", [("lifecycle-unknown", "deny")]),
        (facts("debian", "99"), "allow", [("lifecycle-unknown", "audit")]),
        (facts("debian", None), "warn", [("lifecycle-unknown", "warn")]),
        (facts("bottlerocket", "1.34.0"), "warn", [("lifecycle-unknown", "warn")]),
        (facts("wolfi", "20230201"), "deny", []),
        (facts(None, None, libc="none", libc_version=None), "deny", []),
    ],
    ids=[
        "unknown-cycle",
        "unknown-deny",
        "unknown-allow",
        "sid",
        "not-covered",
        "rolling",
        "no-os",
    ],
)
def test_support_never_treats_unknown_as_supported(
    image_facts: ImageFacts, on_unresolved: str, expected: Expected
) -> None:
    assert run(image_facts, {"support": {}}, onUnresolved=on_unresolved) == expected


DISTRO_CASES: list[tuple[str, ImageFacts, dict[str, Any], Expected]] = [
    (
        "deny alpine",
        facts("alpine", "3.19.1", libc="musl"),
        {"denyDistros": ["alpine"]},
        [("distro-denied", "deny")],
    ),
    ("deny alpine, debian passes", facts("debian", "12"), {"denyDistros": ["alpine"]}, []),
    (
        "deny old alpine only",
        facts("alpine", "3.19.1", libc="musl"),
        {"denyDistros": [{"id": "alpine", "maxVersion": "3.18"}]},
        [],
    ),
    (
        "deny old alpine: 3.18.4 is within 3.18",
        facts("alpine", "3.18.4", libc="musl"),
        {"denyDistros": [{"id": "alpine", "maxVersion": "3.18"}]},
        [("distro-denied", "deny")],
    ),
    (
        "allow debian >= 12",
        facts("debian", "12"),
        {"allowDistros": [{"id": "debian", "minVersion": "12"}]},
        [],
    ),
    (
        "allow debian >= 12: 11 fails",
        facts("debian", "11"),
        {"allowDistros": [{"id": "debian", "minVersion": "12"}]},
        [("distro-not-allowed", "deny")],
    ),
    (
        "allow ubuntu LTS versions",
        facts("ubuntu", "22.04"),
        {"allowDistros": [{"id": "ubuntu", "versions": ["22.04", "24.04"]}]},
        [],
    ),
    (
        "allow ubuntu LTS versions: 23.10 fails",
        facts("ubuntu", "23.10"),
        {"allowDistros": [{"id": "ubuntu", "versions": ["22.04", "24.04"]}]},
        [("distro-not-allowed", "deny")],
    ),
    (
        "a bound never covers an OS without a version",
        facts("debian", None),
        {"allowDistros": [{"id": "debian", "minVersion": "12"}]},
        [("distro-not-allowed", "deny")],
    ),
    (
        "no OS is requireKnownOS's business",
        facts(None, None, libc="none", libc_version=None),
        {"allowDistros": ["debian"]},
        [],
    ),
]


@pytest.mark.parametrize(
    ("image_facts", "rule", "expected"),
    [c[1:] for c in DISTRO_CASES],
    ids=[c[0] for c in DISTRO_CASES],
)
def test_distros(image_facts: ImageFacts, rule: dict[str, Any], expected: Expected) -> None:
    assert run(image_facts, rule) == expected


LIBC_CASES: list[tuple[str, ImageFacts, dict[str, Any], Expected]] = [
    (
        "musl denied",
        facts("alpine", "3.19.1", libc="musl", libc_version="1.2.4"),
        {"denyLibc": ["musl"]},
        [("libc-denied", "deny")],
    ),
    # Alpine with gcompat: the scan reports musl, the C library the programs use.
    (
        "alpine with gcompat",
        facts("alpine", "3.19.1", libc="musl"),
        {"denyLibc": ["musl"]},
        [("libc-denied", "deny")],
    ),
    ("glibc passes", facts("debian", "12"), {"denyLibc": ["musl"]}, []),
    # A glibc image with a musl loader installed beside: the scan says glibc, and so does the rule.
    (
        "glibc with a musl loader beside",
        facts("debian", "12", libc="glibc"),
        {"denyLibc": ["musl"]},
        [],
    ),
    (
        "alpine, libc not determined: musl by distribution",
        facts("alpine", "3.19.1", libc="unknown", libc_version=None),
        {"denyLibc": ["musl"]},
        [("libc-denied", "deny")],
    ),
    (
        "libc not determined",
        facts("debian", "12", libc="unknown", libc_version=None),
        {"denyLibc": ["musl"]},
        [("libc-unknown", "warn")],
    ),
    (
        "static binary passes no-musl",
        facts(None, None, libc="none", libc_version=None),
        {"denyLibc": ["musl"]},
        [],
    ),
    (
        "no libc denied",
        facts(None, None, libc="none", libc_version=None),
        {"denyLibc": ["none"]},
        [("libc-denied", "deny")],
    ),
    ("glibc new enough", facts("debian", "12", libc_version="2.36"), {"minGlibc": "2.28"}, []),
    (
        "glibc exactly the minimum",
        facts("debian", "10", libc_version="2.28"),
        {"minGlibc": "2.28"},
        [],
    ),
    (
        "glibc too old",
        facts("centos", "7", libc_version="2.17"),
        {"minGlibc": "2.28"},
        [("glibc-too-old", "deny")],
    ),
    (
        "glibc version unknown",
        facts("debian", "12", libc_version=None),
        {"minGlibc": "2.28"},
        [("libc-version-unknown", "warn")],
    ),
    (
        "musl fails minGlibc",
        facts("alpine", "3.19.1", libc="musl", libc_version="1.2.4"),
        {"minGlibc": "2.28"},
        [("glibc-required", "deny")],
    ),
    (
        "static passes minGlibc",
        facts(None, None, libc="none", libc_version=None),
        {"minGlibc": "2.28"},
        [],
    ),
]


@pytest.mark.parametrize(
    ("image_facts", "rule", "expected"), [c[1:] for c in LIBC_CASES], ids=[c[0] for c in LIBC_CASES]
)
def test_libc(image_facts: ImageFacts, rule: dict[str, Any], expected: Expected) -> None:
    assert run(image_facts, rule) == expected


LTS_CASES: list[tuple[str, ImageFacts, dict[str, Any], Expected]] = [
    ("ubuntu LTS", facts("ubuntu", "24.04"), {}, []),
    ("ubuntu interim", facts("ubuntu", "24.10"), {}, [("not-lts", "deny")]),
    ("fedora", facts("fedora", "42"), {}, [("not-lts", "deny")]),
    ("debian counts as long-term", facts("debian", "12"), {}, []),
    ("rolling allowed", facts("wolfi", "20230201"), {}, []),
    ("rolling refused", facts("wolfi", "20230201"), {"allowRolling": False}, [("rolling", "deny")]),
    ("unknown cycle", facts("ubuntu", "99.04"), {}, [("lifecycle-unknown", "warn")]),
    ("unknown product", facts("bottlerocket", "1.34.0"), {}, [("lifecycle-unknown", "warn")]),
]


@pytest.mark.parametrize(
    ("image_facts", "options", "expected"),
    [c[1:] for c in LTS_CASES],
    ids=[c[0] for c in LTS_CASES],
)
def test_require_lts(image_facts: ImageFacts, options: dict[str, Any], expected: Expected) -> None:
    assert run(image_facts, {"requireLTS": options}) == expected


PY = (("python", "3.12.1"),)
RUNTIME_CASES: list[tuple[str, ImageFacts, dict[str, Any], Expected]] = [
    ("supported python", facts(runtimes=(("python", "3.13.1"),)), {}, []),
    (
        "python eol yesterday",
        facts(runtimes=(("python", "3.9.18"),)),
        {},
        [("runtime-eol", "deny")],
    ),
    (
        "python eol in 40 days, warn 90",
        facts(runtimes=PY),
        {"warnDaysBefore": 90},
        [("runtime-eol-soon", "warn")],
    ),
    ("python eol in 40 days, warn 30", facts(runtimes=PY), {"warnDaysBefore": 30}, []),
    # The boundary: support ends in exactly warnDaysBefore days: that warns; one day more does not.
    (
        "python eol in 40 days, warn 40",
        facts(runtimes=PY),
        {"warnDaysBefore": 40},
        [("runtime-eol-soon", "warn")],
    ),
    ("python eol in 40 days, warn 39", facts(runtimes=PY), {"warnDaysBefore": 39}, []),
    (
        "python eol yesterday, grace 7",
        facts(runtimes=(("python", "3.9.18"),)),
        {"graceDays": 7},
        [("runtime-eol-grace", "warn")],
    ),
    (
        "minimum version",
        facts(runtimes=PY),
        {"minVersions": {"python": "3.13"}},
        [("runtime-too-old", "deny")],
    ),
    ("minimum version met", facts(runtimes=PY), {"minVersions": {"python": "3.12"}}, []),
    (
        "minimum only",
        facts(runtimes=(("python", "3.9.18"),)),
        {"requireSupported": False, "minVersions": {"python": "3.9"}},
        [],
    ),
    (
        "names filter skips node",
        facts(runtimes=(("nodejs", "23.1.0"),)),
        {"names": ["python"], "warnDaysBefore": 30},
        [],
    ),
    (
        "names by product",
        facts(runtimes=(("node", "23.1.0"),)),
        {"names": ["nodejs"], "warnDaysBefore": 30},
        [("runtime-eol-soon", "warn")],
    ),
    (
        "several runtimes, several findings",
        facts(runtimes=(("python", "3.9.18"), ("nodejs", "23.1.0"))),
        {"warnDaysBefore": 30},
        [("runtime-eol", "deny"), ("runtime-eol-soon", "warn")],
    ),
    (
        "pre-release is unknown",
        facts(runtimes=(("python", "3.14.0rc1"),)),
        {},
        [("runtime-lifecycle-unknown", "warn")],
    ),
    ("untracked runtime skipped", facts(runtimes=(("bash", "5.2"),)), {}, []),
    (
        "untracked runtime asked for by name",
        facts(runtimes=(("bash", "5.2"),)),
        {"names": ["bash"]},
        [("runtime-lifecycle-unknown", "warn")],
    ),
    ("no runtimes", facts(), {}, []),
]


@pytest.mark.parametrize(
    ("image_facts", "options", "expected"),
    [c[1:] for c in RUNTIME_CASES],
    ids=[c[0] for c in RUNTIME_CASES],
)
def test_runtimes(image_facts: ImageFacts, options: dict[str, Any], expected: Expected) -> None:
    assert run(image_facts, {"runtimes": options}) == expected


IMAGE_CASES: list[tuple[str, ImageFacts, dict[str, Any], Expected]] = [
    ("known OS", facts("debian", "12"), {"requireKnownOS": {}}, []),
    (
        "scratch static binary",
        facts(None, None, libc="none", libc_version=None),
        {"requireKnownOS": {}},
        [("unknown-os", "deny")],
    ),
    (
        "static binaries allowed",
        facts(None, None, libc="none", libc_version=None),
        {"requireKnownOS": {"allowStatic": True}},
        [],
    ),
    (
        "no OS but a C library",
        facts(None, None, libc="glibc"),
        {"requireKnownOS": {"allowStatic": True}},
        [("unknown-os", "deny")],
    ),
    ("small enough", facts(size=100 * 2**20), {"maxImageSize": "500Mi"}, []),
    ("exactly the limit", facts(size=500 * 2**20), {"maxImageSize": "500Mi"}, []),
    (
        "too large",
        facts(size=600 * 2**20),
        {"maxImageSize": "500Mi"},
        [("image-too-large", "deny")],
    ),
    ("size unknown", facts(size=0), {"maxImageSize": 1000}, [("size-unknown", "warn")]),
]


@pytest.mark.parametrize(
    ("image_facts", "rule", "expected"),
    [c[1:] for c in IMAGE_CASES],
    ids=[c[0] for c in IMAGE_CASES],
)
def test_image_rules(image_facts: ImageFacts, rule: dict[str, Any], expected: Expected) -> None:
    assert run(image_facts, rule) == expected


def test_rule_action_overrides_the_policy_action() -> None:
    musl = facts("alpine", "3.19.1", libc="musl")
    assert run(musl, {"denyLibc": ["musl"], "action": "warn"}, action="deny") == [("libc-denied", "warn")]
    assert run(musl, {"denyLibc": ["musl"], "action": "deny"}, action="audit") == [("libc-denied", "deny")]


def test_cycle_helper_defaults() -> None:
    made: ReleaseCycle = cycle("1", eol=days(1))
    assert made.state(days(0)) == "active"
    assert made.state(days(1)) == "eol"
