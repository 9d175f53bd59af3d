"""The catalog file format (`data/eol.json` and the local cache): JSON, one release cycle per line.

One line per cycle keeps the bundled file small and its diffs readable when the snapshot is
refreshed.
"""

from __future__ import annotations

import json

from pydantic import ValidationError

from distroguard.errors import CatalogError
from distroguard.model.lifecycle import CatalogSnapshot


def dumps(snapshot: CatalogSnapshot) -> str:
    def compact(value: object) -> str:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    head = snapshot.model_dump(mode="json", by_alias=True, exclude={"products"})
    lines = ["{"] + [f"{compact(key)}:{compact(value)}," for key, value in head.items()]
    lines.append('"products":[')
    for n, product in enumerate(snapshot.products):
        meta = product.model_dump(mode="json", by_alias=True, exclude={"cycles"})
        lines.append(compact(meta)[:-1] + ',"cycles":[')
        cycles = [
            compact(cycle.model_dump(mode="json", by_alias=True, exclude_defaults=True))
            for cycle in product.cycles
        ]
        lines.append(",\n".join(cycles))
        lines.append("]}" + ("," if n < len(snapshot.products) - 1 else ""))
    lines.append("]}")
    return "\n".join(lines) + "\n"


def loads(text: str | bytes, source: str) -> CatalogSnapshot:
    """Parse and validate a catalog file; `CatalogError` names `source` and what is wrong."""
    try:
        snapshot = CatalogSnapshot.model_validate_json(text)
    except ValidationError as exc:
        raise CatalogError(f"{source} is not a valid EOL catalog ({problems(exc)})") from None
    return checked(snapshot, source)


def problems(exc: ValidationError) -> str:
    """`N problem(s); first: field.path: message`: enough to find what is wrong in a large document."""
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "(document)"
    return f"{exc.error_count()} problem(s); first: {where}: {first['msg']}"


def from_document(document: object, source: str) -> CatalogSnapshot:
    """Validate a catalog given as parsed JSON (a cluster object's spec); `CatalogError` as `loads`."""
    try:
        snapshot = CatalogSnapshot.model_validate(document)
    except ValidationError as exc:
        raise CatalogError(f"{source} is not a valid EOL catalog ({problems(exc)})") from None
    return checked(snapshot, source)


def checked(snapshot: CatalogSnapshot, source: str) -> CatalogSnapshot:
    """What the schema cannot say: a catalog lists products, each once, each with release cycles (an
    empty catalog would make every release unknown)."""
    if not snapshot.products:
        raise CatalogError(f"{source} is not a valid EOL catalog (it lists no products)")
    seen: set[str] = set()
    for product in snapshot.products:
        if product.name in seen:
            raise CatalogError(f"{source} is not a valid EOL catalog (product {product.name} twice)")
        if not product.cycles:
            raise CatalogError(f"{source} is not a valid EOL catalog (product {product.name} has no cycles)")
        seen.add(product.name)
    return snapshot
