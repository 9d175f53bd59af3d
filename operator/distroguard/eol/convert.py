"""endoflife.date product files (Markdown with YAML front matter) -> `ProductLifecycle`. Pure: text
in, data out.

Used by `scripts/eol_convert.py` to build the bundled `data/eol.json` from a checkout of the
endoflife.date repository. Only the lifecycle fields are kept; links, labels and auto-update
settings are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import yaml

from distroguard.errors import CatalogError
from distroguard.model.lifecycle import PhaseEnd, ProductLifecycle, ReleaseCycle


def front_matter(text: str, source: str) -> Mapping[str, Any]:
    """The YAML between the leading `---` lines of a Markdown file."""
    parts = text.split("---", 2)
    if len(parts) < 3 or parts[0].strip():
        raise CatalogError(f"{source}: no YAML front matter (expected the file to start with ---)")
    try:
        data = yaml.safe_load(parts[1])
    except yaml.YAMLError as exc:
        raise CatalogError(f"{source}: front matter is not valid YAML: {exc}") from exc
    if not isinstance(data, Mapping):
        raise CatalogError(f"{source}: front matter is not a mapping")
    return data


def product_from_markdown(name: str, text: str) -> ProductLifecycle:
    """Convert one `products/NAME.md` file; `name` is the file's stem, endoflife.date's product
    name."""
    data = front_matter(text, f"{name}.md")
    releases = data.get("releases")
    if not isinstance(releases, list) or not releases:
        raise CatalogError(f"{name}.md: no releases")
    return ProductLifecycle(
        name=name,
        label=str(data.get("title", name)),
        category=str(data.get("category", "unknown")),
        cycles=tuple(_cycle(name, release) for release in releases),
    )


def _cycle(product: str, release: Mapping[str, Any]) -> ReleaseCycle:
    try:
        return ReleaseCycle(
            cycle=str(release["releaseCycle"]),
            codename=_text(release.get("codename")),
            release_date=_day(release.get("releaseDate")),
            lts=_phase(release.get("lts")) or False,
            eoas=_phase(release.get("eoas")),
            eol=_phase(release.get("eol")) or False,
            eoes=_phase(release.get("eoes")),
            latest=_text(release.get("latest")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        cycle = release.get("releaseCycle", "?")
        raise CatalogError(f"{product}.md: release {cycle}: {exc}") from exc


def _phase(value: object) -> PhaseEnd | None:
    if value is None or isinstance(value, bool | date):
        return value
    raise ValueError(f"expected a date or a boolean, got {value!r}")


def _day(value: object) -> date | None:
    if value is None or isinstance(value, date):
        return value
    raise ValueError(f"expected a date, got {value!r}")


def _text(value: object) -> str | None:
    return None if value is None else str(value)
