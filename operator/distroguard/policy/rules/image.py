"""`requireKnownOS` and `maxImageSize`: rules about the image as a whole."""

from __future__ import annotations

from distroguard.model.policy import Rule
from distroguard.policy.problem import Problem
from distroguard.policy.subject import Subject

NONE: tuple[Problem, ...] = ()


def check_known_os(rule: Rule, subject: Subject) -> tuple[Problem, ...]:
    options = rule.require_known_os
    os = subject.os
    if options is None or (os is not None and os.id not in ("", "unknown")):
        return NONE
    family = subject.libc_family()
    if family == "none" and options.allow_static:
        return NONE
    if family == "none":
        text = (
            "it has no OS and no C library (a static binary FROM scratch?); policy {ref} requires a known OS"
        )
        return (Problem("unknown-os", text, facts={"os": "none", "libc": "none"}, fix="static"),)
    text = (
        f"its OS could not be identified (no os-release, {subject.libc_text()}); "
        "policy {ref} requires a known OS"
    )
    return (Problem("unknown-os", text, facts={"os": "unknown", "libc": subject.libc_text()}),)


def check_size(rule: Rule, subject: Subject) -> tuple[Problem, ...]:
    limit = rule.max_image_bytes
    size = subject.facts.image_size
    if limit is None:
        return NONE
    if size <= 0:
        text = "its size is unknown, so policy {ref} cannot check it"
        return (Problem("size-unknown", text, level="unresolved"),)
    if size <= limit:
        return NONE
    text = f"the image is {human_size(size)}, above the {human_size(limit)} allowed by policy {{ref}}"
    return (Problem("image-too-large", text, facts={"size": str(size), "limit": str(limit)}, fix="size"),)


def human_size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"
