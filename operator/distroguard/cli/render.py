"""How facts look to people (a rich table) and to machines (JSON)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from distroguard.model import ImageFacts


def facts_json(facts: ImageFacts) -> dict[str, Any]:
    data = facts.model_dump(mode="json")
    if facts.os is not None:
        data["os"]["id_like"] = list(facts.os.id_like)
    return data


def render_json(results: Sequence[ImageFacts], *, as_list: bool) -> str:
    """One object per image; a list when several images were asked for (even if some failed)."""
    items = [facts_json(f) for f in results]
    if not as_list and len(items) == 1:
        return json.dumps(items[0], indent=2)
    return json.dumps(items, indent=2)


def _os_text(facts: ImageFacts) -> str:
    if facts.os is None:
        return "none (scratch or unknown)"
    os = facts.os
    text = " ".join(part for part in (os.id, os.version_id) if part)
    return f"{text} ({os.codename})" if os.codename else text


def _libc_text(facts: ImageFacts) -> str:
    libc = facts.libc
    return f"{libc.family} {libc.version}" if libc.version else libc.family


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def render_table(results: Sequence[ImageFacts], console: Console, *, evidence: bool = True) -> None:
    table = Table(title="Image facts", show_lines=False)
    for column in ("image", "platform", "os", "libc", "runtimes", "fetched / size", "mode"):
        table.add_column(column)
    for facts in results:
        runtimes = ", ".join(f"{r.name} {r.version}" for r in facts.runtimes) or "-"
        table.add_row(
            facts.reference,
            facts.platform,
            _os_text(facts),
            _libc_text(facts),
            runtimes,
            f"{_size(facts.bytes_fetched)} / {_size(facts.image_size)}",
            facts.mode,
        )
    console.print(table)
    if not evidence:
        return
    for facts in results:
        console.print(f"[bold]{facts.reference}[/bold] {facts.digest or ''}")
        for item in facts.evidence:
            where = " ".join(
                part for part in (item.path or "", f"[layer {item.layer[:19]}]" if item.layer else "") if part
            )
            console.print(f"  {item.fact:<14} {item.source:<11} {where} {item.detail}".rstrip())
