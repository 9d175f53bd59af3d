"""Turn a finding into a next step a person can take.

For Docker Official Images (python, node, ruby, golang, perl, rust, openjdk/eclipse-temurin, nginx,
php...) the hint is a concrete tag on a supported glibc base, usually Debian slim:
`python:3.7-alpine` -> `python:3.7-slim-bookworm`. The Debian release chosen is the newest one that
existed while the image's runtime was still maintained (no images of an EOL runtime are built for
later Debian releases), so the tag exists. Other images get a hint naming a supported release. Hints
are computed only for findings.

A suggestion never moves backwards: the release it names is never older than the image's own, neither the
distribution's nor the runtime's (`node:23` is not sent to Node.js 22 because 22 is the LTS; `ubuntu:24.10`
is not sent to 24.04). When no release at least as new is supported, the hint says what to do in general
terms instead. A named release comes with the day its support ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from distroguard.model.facts import Runtime
from distroguard.model.lifecycle import LifecycleLookup, ReleaseCycle, end_date
from distroguard.model.version import version_parts
from distroguard.policy.images import parse_image
from distroguard.policy.problem import Problem
from distroguard.policy.subject import Subject

_TAG_VERSION = re.compile(r"^\d+(?:\.\d+)*")
_ALPINE_PART = re.compile(r"-?alpine[\d.]*")


@dataclass(frozen=True, slots=True)
class _Family:
    runtime: str
    """endoflife.date product of the runtime the image ships."""
    template: str
    """Tag of the Debian slim equivalent; {version} may be empty, {codename} is a Debian
    codename."""


_RUNTIME_IMAGES: dict[str, _Family] = {
    "python": _Family("python", "{version}-slim-{codename}"),
    "node": _Family("nodejs", "{version}-{codename}-slim"),
    "ruby": _Family("ruby", "{version}-slim-{codename}"),
    "golang": _Family("go", "{version}-{codename}"),
    "perl": _Family("perl", "{version}-slim-{codename}"),
    "rust": _Family("rust", "{version}-slim-{codename}"),
}
# Java: Eclipse Temurin's default tags are glibc (Ubuntu LTS) based; the `openjdk` images are
# deprecated.
_JAVA_IMAGES = frozenset({"openjdk", "eclipse-temurin"})
# Official images whose default tags are Debian-based: dropping `-alpine` gives the glibc
# equivalent.
_DEBIAN_DEFAULT = frozenset({"nginx", "php", "httpd", "redis", "postgres", "memcached", "haproxy"})
_OS_IMAGES = frozenset({"alpine", "debian", "ubuntu"})

_LEADS = {
    "glibc": "use a glibc-based image such as",
    "rebase": "use an image on another distribution such as",
    "distro-eol": "use an image on a supported release such as",
    "runtime": "use a supported image such as",
}
_GENERIC = {
    "glibc": "use a glibc-based base image (for example a Debian slim image) and rebuild",
    "rebase": "rebuild on a distribution the policy allows",
    "lts": "use a long-term release (for example Debian stable or an Ubuntu LTS release)",
    "static": "if it is a static binary, allow it with requireKnownOS: {allowStatic: true}",
    "glibc-version": "use a base image with a newer glibc (a supported Debian or Ubuntu LTS)",
    "size": "use a slim base image and a multi-stage build",
}


def suggest(problem: Problem, subject: Subject) -> str | None:
    fix = problem.fix
    if fix is None:
        return None
    image = parse_image(subject.image)
    official = (image.official, image.tag or "") if image.official is not None else None
    if official is None and fix in ("glibc", "rebase", "distro-eol"):
        # Moving the base fixes these; for an outdated runtime, upgrading it in place is the answer.
        official = _by_runtime(subject)
    if official is not None and fix in _LEADS:
        replacement = _official(*official, problem, subject)
        if replacement is not None:
            return f"{_LEADS[fix]} {replacement}"
    if fix == "distro-eol":
        return _newer_release(subject)
    if fix == "runtime" and problem.runtime:
        current = _runtime_version(subject, problem.runtime)
        target = _runtime_target(subject.catalog, problem.runtime, subject.today, current, newer=True)
        label = problem.facts.get("runtime", problem.runtime).rsplit(" ", 1)[0]
        if target is None:
            return (
                f"upgrade {label} once a supported release newer than {current} exists" if current else None
            )
        until = _until(subject.today, target)
        return f"upgrade {label} to a supported release such as {target.cycle}{until}"
    if fix == "lts":
        found = subject.os_match()
        lts = _ubuntu_lts(subject) if found is not None and found.product == "ubuntu" else None
        if lts is not None:
            return f"use an LTS release such as Ubuntu {lts.cycle}{_until(subject.today, lts)}"
    return _GENERIC.get(fix)


def _by_runtime(subject: Subject) -> tuple[str, str] | None:
    """For an image that is no Docker Official Image, the official image of the language runtime it ships,
    tagged with that runtime's release (an application built `FROM python:3.13-alpine` and pushed under its
    own name still ships Python 3.13, and `python:3.13-slim-trixie` is the base that fixes it)."""
    for runtime in subject.facts.runtimes:
        found = subject.catalog.for_runtime(runtime)
        if found.cycle is None:
            continue
        for name, family in _RUNTIME_IMAGES.items():
            if family.runtime == found.product:
                return name, found.cycle.cycle
    return None


def _until(today: date, *cycles: ReleaseCycle | None) -> str:
    """` (supported until 2028-08-26)`: the earliest end among the releases named (said as past when it is:
    a glibc-based tag of an end-of-life runtime still fixes the libc, and the reader should know)."""
    ends = [end for end in (end_date(c.eol) for c in cycles if c is not None) if end is not None]
    if not ends:
        return ""
    end = min(ends)
    return f" (supported until {end})" if end >= today else f" (its support ended on {end})"


def _at_least(cycle: str, floor: str | None, *, newer: bool = False) -> bool:
    """Whether release `cycle` is not older than version `floor` (compared at the cycle's precision: 3.13
    against 3.9.18 is 3.13 against 3.9), or strictly newer with `newer`."""
    if not floor:
        return True
    mine = version_parts(cycle)
    theirs = version_parts(floor)[: len(mine)]
    if not mine or not theirs:
        return True
    return mine > theirs if newer else mine >= theirs


def _runtime_version(subject: Subject, product: str) -> str | None:
    """The version of the image's runtime that `product` judges."""
    for runtime in subject.facts.runtimes:
        if subject.catalog.for_runtime(runtime).product == product:
            return runtime.version
    return None


def _os_version(subject: Subject, product: str) -> str | None:
    """The image's distribution release, when the image is on `product`."""
    found = subject.os_match()
    os = subject.facts.os
    if found is None or found.product != product or os is None:
        return None
    return os.version_id


def _official(name: str, tag: str, problem: Problem, subject: Subject) -> str | None:
    """A replacement `image:tag` for a Docker Official Image, or None when there is no sure one."""
    if name in _OS_IMAGES:
        return _os_image(name, problem, subject)
    if name in _DEBIAN_DEFAULT:
        plain = _ALPINE_PART.sub("", tag).strip("-")
        return None if problem.fix == "runtime" else f"{name}:{plain or 'latest'}"
    if name in _JAVA_IMAGES:
        product = "eclipse-temurin"
    elif name in _RUNTIME_IMAGES:
        product = _RUNTIME_IMAGES[name].runtime
    else:
        return None
    found = _TAG_VERSION.match(tag)
    version = found.group(0) if found else ""
    current = _runtime_version(subject, product) or version or None
    catalog, today = subject.catalog, subject.today
    runtime_end = _runtime_end(catalog, product, version, subject, today)
    runtime_cycle = _runtime_cycle(catalog, product, version or current)
    bump = problem.fix == "runtime" and problem.runtime == product
    # Moving off an EOL distribution onto a Debian release itself past support helps nobody: when
    # the runtime is too old for a supported Debian release, the runtime moves too. So it does when
    # the runtime is too old for a Debian release at least as new as the image's own.
    debian = _debian_release(catalog, runtime_end)
    if (
        problem.fix == "distro-eol"
        and runtime_end < today
        and not _debian_current(catalog, runtime_end, today)
    ):
        bump = True
    if debian is not None and not _at_least(debian.cycle, _os_version(subject, "debian")):
        bump = True
    if bump:
        target = _runtime_target(catalog, product, today, current, newer=problem.fix == "runtime")
        if target is None:
            return None
        version, runtime_end, runtime_cycle = target.cycle, today, target
        debian = _debian_release(catalog, today)
    if name in _JAVA_IMAGES:
        major = version.split(".")[0]
        flavour = "jdk" if "jdk" in tag else "jre"
        tag = f"eclipse-temurin:{major}-{flavour}" if major else f"eclipse-temurin:{flavour}"
        return tag + _until(subject.today, runtime_cycle)
    if (
        debian is None
        or debian.codename is None
        or not _at_least(debian.cycle, _os_version(subject, "debian"))
    ):
        return None
    codename = debian.codename.lower()
    replacement = _RUNTIME_IMAGES[name].template.format(version=version, codename=codename).strip("-")
    return f"{name}:{replacement}{_until(subject.today, runtime_cycle, debian)}"


def _runtime_cycle(catalog: LifecycleLookup, product: str, version: str | None) -> ReleaseCycle | None:
    if not version:
        return None
    return catalog.for_runtime(Runtime(name=product, version=version)).cycle


def _os_image(name: str, problem: Problem, subject: Subject) -> str | None:
    catalog, today = subject.catalog, subject.today
    if problem.fix in ("glibc", "rebase") or name == "debian":
        debian = _debian_release(catalog, today)
        if (
            debian is None
            or debian.codename is None
            or not _at_least(debian.cycle, _os_version(subject, "debian"))
        ):
            return None
        return f"debian:{debian.codename.lower()}-slim{_until(subject.today, debian)}"
    if name == "ubuntu":
        target = _ubuntu_lts(subject)
        return None if target is None else f"ubuntu:{target.cycle}{_until(subject.today, target)}"
    newest = [
        c
        for c in catalog.supported("alpine-linux", today)
        if _at_least(c.cycle, _os_version(subject, "alpine-linux"))
    ]
    return f"alpine:{newest[0].cycle}{_until(subject.today, newest[0])}" if newest else None


def _debian_release(catalog: LifecycleLookup, day: date) -> ReleaseCycle | None:
    """The newest Debian release within security support on `day` (its codename is what tags spell)."""
    return next((c for c in catalog.supported("debian", day) if c.codename), None)


def _debian_current(catalog: LifecycleLookup, day: date, today: date) -> bool:
    """Whether the newest Debian release of `day` is still within security support on `today`."""
    then = catalog.supported("debian", day)
    return bool(then) and then[0].cycle in {c.cycle for c in catalog.supported("debian", today)}


def _ubuntu_lts(subject: Subject) -> ReleaseCycle | None:
    """The newest supported Ubuntu LTS release, when it is not older than the image's Ubuntu."""
    floor = _os_version(subject, "ubuntu")
    lts = [c for c in subject.catalog.supported("ubuntu", subject.today) if c.is_lts(subject.today)]
    return lts[0] if lts and _at_least(lts[0].cycle, floor) else None


def _runtime_end(catalog: LifecycleLookup, product: str, version: str, subject: Subject, today: date) -> date:
    """The runtime's end of life when that is before today, else today."""
    runtimes = [Runtime(name=product, version=version)] if version else list(subject.facts.runtimes)
    for runtime in runtimes:
        found = catalog.for_runtime(runtime)
        if found.product == product and found.cycle is not None:
            end = end_date(found.cycle.eol)
            if end is not None and end < today:
                return end
    return today


def _runtime_target(
    catalog: LifecycleLookup, product: str, today: date, floor: str | None = None, *, newer: bool = False
) -> ReleaseCycle | None:
    """The release to move to: the newest supported one, an LTS release where the product has them; never
    one older than `floor` (the image's own version), nor the same one with `newer`."""
    cycles = [c for c in catalog.supported(product, today) if _at_least(c.cycle, floor, newer=newer)]
    lts = [c for c in cycles if c.is_lts(today)]
    return lts[0] if lts else cycles[0] if cycles else None


def _newer_release(subject: Subject) -> str | None:
    found = subject.os_match()
    if found is None or found.product is None:
        return None
    cycles = subject.catalog.supported(found.product, subject.today)
    if not cycles or not _at_least(cycles[0].cycle, _os_version(subject, found.product), newer=True):
        return None  # nothing newer than the image's own release is supported yet
    newest = cycles[0]
    codename = f" ({newest.codename})" if newest.codename else ""
    release = f"{found.product_label} {newest.cycle}{codename}"
    return f"rebuild on a supported release such as {release}{_until(subject.today, newest)}"
