"""How facts look to people (a rich table) and to machines (JSON)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import click

from distroguard.model import ImageFacts
from distroguard.model.factsdoc import facts_document

if TYPE_CHECKING:
    from rich.console import Console


Line = Sequence[tuple[str, str | None]]
"""One line of output as its pieces, each with a rich style (None: unstyled)."""


def colours_show() -> bool:
    """Whether styles would show on stdout: a terminal, or FORCE_COLOR set (rich's own test, in short)."""
    return bool(os.environ.get("FORCE_COLOR")) or sys.stdout.isatty()


def print_lines(lines: Iterable[Line]) -> None:
    """Styled through rich where colours show; elsewhere (a CI log, a pipe) each line as plain text, whole
    (never wrapped at a width no one sees), and rich is not imported at all."""
    if not colours_show():
        for line in lines:
            click.echo("".join(text for text, _ in line))
        return
    from rich.text import Text

    console = stdout_console()
    for line in lines:
        console.print(Text.assemble(*((text, style or "") for text, style in line)))


def stdout_console() -> Console:
    """A rich console on stdout that highlights (colours numbers, paths, versions) only where colours show:
    on a terminal, or where FORCE_COLOR asks for them. Elsewhere (a CI log, a pipe) highlighting would
    change nothing visible, and compiling its patterns is a noticeable part of a short run."""
    from rich.console import Console
    from rich.highlighter import NullHighlighter

    console = Console()
    if not console.is_terminal:
        console.highlighter = NullHighlighter()
    return console


def facts_json(facts: ImageFacts) -> dict[str, Any]:
    """The facts document of one image (`model.factsdoc`, shared with the facts API)."""
    return facts_document(facts)


def render_json(results: Sequence[ImageFacts], *, as_list: bool) -> str:
    """One object per image and platform (each with its `platform`); a list when several images, or several
    platforms, were asked for (even if some failed)."""
    items = [facts_json(f) for f in results]
    if not as_list and len(items) == 1:
        return json.dumps(items[0], indent=2)
    return json.dumps(items, indent=2)


def _os_text(facts: ImageFacts) -> str:
    if facts.os is None:
        return "none found (scratch, or an unknown distribution)"
    os = facts.os
    text = " ".join(part for part in (os.id, os.version_id) if part)
    if os.codename:
        text += f" ({os.codename})"
    return f"{text} - {os.pretty_name}" if os.pretty_name else text


def _libc_text(facts: ImageFacts) -> str:
    libc = facts.libc
    return f"{libc.family} {libc.version}" if libc.version else libc.family


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _short(digest: str) -> str:
    """A digest as people quote it: algorithm and 12 hex digits (JSON output keeps it whole)."""
    algorithm, _, hexdigits = digest.partition(":")
    return f"{algorithm}:{hexdigits[:12]}"


def _fetched(facts: ImageFacts) -> str:
    share = f" ({facts.bytes_fetched / facts.image_size:.1%})" if facts.image_size else ""
    return f"{_size(facts.bytes_fetched)} of {_size(facts.image_size)}{share}"


def _base_text(facts: ImageFacts) -> str:
    """`python:3.12-slim (annotation, verified)`; a claim that is false or unchecked says so."""
    base = facts.base
    if base is None:
        return "unknown"
    state = {True: "verified", False: "FALSE: its layers are not this image's", None: "not verified"}
    how = "annotation" if base.how == "annotation" else "its layers seen before"
    return f"{base.reference} ({how}, {state[base.verified]})"


def render_table(results: Sequence[ImageFacts], console: Console, *, evidence: bool = True) -> None:
    """One card per image: the facts, then the evidence for each (escaped: image data is not markup)."""
    # rich is imported by the tables alone: JSON output starts without it.
    from rich.markup import escape
    from rich.table import Table

    for facts in results:
        header = f"{facts.digest or ''}  {facts.platform}  {facts.mode} mode"
        console.print(f"[bold]{escape(facts.reference)}[/bold]  {header}")
        card = Table.grid(padding=(0, 2))
        card.add_column(style="cyan", no_wrap=True)
        card.add_column()
        card.add_row("os", escape(_os_text(facts)))
        card.add_row("libc", escape(_libc_text(facts)))
        runtimes = ", ".join(f"{r.name} {r.version}" for r in facts.runtimes) or "none found"
        card.add_row("runtimes", escape(runtimes))
        if facts.base is not None:
            card.add_row("base", escape(_base_text(facts)))
        card.add_row("fetched", _fetched(facts))
        if evidence:
            lines = []
            for item in facts.evidence:
                where = " ".join(
                    part
                    for part in (item.path or "", f"[layer {_short(item.layer)}]" if item.layer else "")
                    if part
                )
                lines.append(f"{item.fact}: {item.source} {where} {item.detail}".replace("  ", " ").strip())
            card.add_row("evidence", escape("\n".join(lines)))
        console.print(card)
        console.print()
