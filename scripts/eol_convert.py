#!/usr/bin/env python3
"""Build the bundled EOL catalog (operator/distroguard/data/eol.json) from endoflife.date product
files.

usage: scripts/eol_convert.py DIR --snapshot-date YYYY-MM-DD --source TEXT [--output FILE]

DIR is a copy of the endoflife.date data: either its `products/` directory of `NAME.md` files, or a
directory holding `products/` (and the project's `LICENSE`, copied beside the output as
`eol.LICENSE`). Every product file found is converted. `--snapshot-date` is the day the data was
taken (the catalog's age counts from it); `--source` records where it came from, e.g.
"endoflife.date commit <sha>".
"""

from __future__ import annotations

import argparse
import shutil
import sys
from datetime import date
from pathlib import Path

from distroguard.eol.convert import product_from_markdown
from distroguard.eol.fileformat import dumps
from distroguard.errors import CatalogError
from distroguard.model.lifecycle import CatalogSnapshot

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO / "operator" / "distroguard" / "data" / "eol.json"
NOTICE = (
    "Release-cycle data from endoflife.date, MIT licensed (c) endoflife.date contributors: see eol.LICENSE"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("directory", type=Path)
    parser.add_argument("--snapshot-date", required=True, type=date.fromisoformat)
    parser.add_argument("--source", required=True)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)

    products_dir = args.directory / "products" if (args.directory / "products").is_dir() else args.directory
    files = sorted(products_dir.glob("*.md"))
    if not files:
        print(f"error: no product files (*.md) in {products_dir}", file=sys.stderr)
        return 2
    try:
        products = tuple(product_from_markdown(f.stem, f.read_text(encoding="utf-8")) for f in files)
    except CatalogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    snapshot = CatalogSnapshot(
        snapshot=args.snapshot_date, source=args.source, notice=NOTICE, products=products
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(dumps(snapshot), encoding="utf-8")
    licence = products_dir.parent / "LICENSE"
    if licence.is_file():
        shutil.copyfile(licence, args.output.with_suffix(".LICENSE"))
    cycles = sum(len(p.cycles) for p in products)
    print(f"wrote {args.output} ({len(products)} products, {cycles} cycles, snapshot {args.snapshot_date})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
