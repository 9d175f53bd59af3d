"""`distroguard eol show [PRODUCT]`, `eol update [--url BASE] [--from FILE] [--kubeconfig K]`."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from distroguard.cli.proxies import PROXY_EPILOG, environment_proxies
from distroguard.eol import (
    DEFAULT_MAX_AGE_DAYS,
    LoadedCatalog,
    bundled_snapshot,
    default_cache_path,
    load_catalog,
)
from distroguard.eol.fileformat import loads
from distroguard.eol.products import LTS_POLICIES
from distroguard.eol.refresh import DEFAULT_BASE_URL, RefreshSettings, fetch_snapshot
from distroguard.eol.store import CACHE_ENV, write_cache
from distroguard.eol.update import refresh_names, require_not_older
from distroguard.errors import CatalogError
from distroguard.model.api import CATALOG_KIND, CATALOG_NAME
from distroguard.model.lifecycle import CatalogSnapshot, PhaseEnd, ProductLifecycle, ReleaseCycle, end_date

EXIT_ERROR = 2
MAX_AGE_ENV = "DISTROGUARD_EOL_MAX_AGE_DAYS"

_cache_option = click.option(
    "--cache",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=CACHE_ENV,
    help=f"Local catalog cache (default: ${CACHE_ENV} or ~/.cache/distroguard/eol.json).",
)


@click.group("eol")
def eol() -> None:
    """The end-of-life catalog (endoflife.date data): show it, refresh it."""


def _load(cache: Path | None) -> LoadedCatalog:
    try:
        return load_catalog(cache or default_cache_path())
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from exc


def _age_line(loaded: LoadedCatalog, today: date, max_age: int) -> tuple[str, str | None]:
    catalog = loaded.catalog
    age = catalog.age_days(today)
    old = f"{age} days old" if age >= 0 else "newer than that day"
    line = f"EOL catalog: {loaded.origin} snapshot {catalog.snapshot} ({old}), {catalog.source}"
    stale = None
    if catalog.is_stale(today, max_age):
        stale = (
            f"warning: the EOL catalog is {age} days old (more than {max_age}); new releases are "
            "unknown to it: run `distroguard eol update`"
        )
    return line, stale


@eol.command("show")
@click.argument("product", required=False)
@click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option(
    "--date", "on", type=click.DateTime(["%Y-%m-%d"]), help="Judge as of this day (default: today)."
)
@click.option(
    "--warn-days",
    type=click.IntRange(min=0),
    default=90,
    show_default=True,
    help="What counts as near EOL.",
)
@click.option(
    "--max-age-days",
    type=click.IntRange(min=0),
    envvar=MAX_AGE_ENV,
    default=DEFAULT_MAX_AGE_DAYS,
    show_default=True,
    help="Warn when the catalog is older than this.",
)
@_cache_option
def show(
    product: str | None,
    output: str,
    on: datetime | None,
    warn_days: int,
    max_age_days: int,
    cache: Path | None,
) -> None:
    """Print the catalog: every product, or the release cycles of PRODUCT (what is EOL, what is
    near)."""
    loaded = _load(cache)
    today = on.date() if on else datetime.now(UTC).date()
    catalog = loaded.catalog
    products = catalog.products
    if product is not None:
        found = catalog.product(product)
        if found is None:
            names = ", ".join(p.name for p in products)
            raise click.ClickException(f"no product {product!r} in the catalog; known: {names}")
        products = (found,)
    line, stale = _age_line(loaded, today, max_age_days)
    for warning in (*loaded.warnings, *([stale] if stale else [])):
        click.echo(warning, err=True)
    if output == "json":
        document = {
            "snapshot": str(catalog.snapshot),
            "age_days": catalog.age_days(today),
            "stale": stale is not None,
            "origin": loaded.origin,
            "location": loaded.location,
            "source": catalog.source,
            "today": str(today),
            "products": [_product_json(p, today, warn_days) for p in products],
        }
        click.echo(json.dumps(document, indent=2))
        return
    console = Console(width=max(Console().width, 120))
    console.print(line, highlight=False)
    if product is None:
        console.print(_summary_table(products, today, warn_days))
    else:
        console.print(_cycles_table(products[0], today, warn_days))
        policy = LTS_POLICIES.get(products[0].name)
        if policy is not None:
            console.print(f"requireLTS: {policy.basis}", highlight=False)


def status_text(cycle: ReleaseCycle, today: date, warn_days: int) -> str:
    """`supported`, `EOL in 45 days (2026-07-11)`, `extended support only until 2028-06-30`, `EOL
    since ...`."""
    state = cycle.state(today)
    if cycle.release_date is not None and cycle.release_date > today:
        return "not released yet"
    if state == "eol":
        end = end_date(cycle.eoes) or end_date(cycle.eol)
        return f"EOL since {end}" if end else "EOL"
    if state == "extended":
        return f"extended support only, until {_phase(cycle.eoes)}"
    end = end_date(cycle.eol)
    if end is not None and (end - today).days <= warn_days:
        return f"EOL in {(end - today).days} days ({end})"
    return "security fixes only" if state == "security" else "supported"


def _phase(value: PhaseEnd | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "ended" if value else "no date"
    return str(value)


def _lts(cycle: ReleaseCycle) -> str:
    if isinstance(cycle.lts, bool):
        return "yes" if cycle.lts else ""
    return f"from {cycle.lts}"


def _cycles_table(product: ProductLifecycle, today: date, warn_days: int) -> Table:
    table = Table(title=f"{product.label} ({product.name})")
    for column in (
        "cycle",
        "codename",
        "released",
        "LTS",
        "active until",
        "security until",
        "extended until",
    ):
        table.add_column(column)
    table.add_column("status")
    for cycle in product.cycles:
        table.add_row(
            cycle.cycle,
            cycle.codename or "",
            str(cycle.release_date or ""),
            _lts(cycle),
            _phase(cycle.eoas),
            _phase(cycle.eol),
            _phase(cycle.eoes),
            status_text(cycle, today, warn_days),
        )
    return table


def _summary_table(products: tuple[ProductLifecycle, ...], today: date, warn_days: int) -> Table:
    table = Table(title=f"Products (as of {today})")
    for column in ("product", "label", "category", "cycles", "supported", "near EOL (next end)"):
        table.add_column(column)
    for product in products:
        live = [c for c in product.cycles if c.state(today) != "eol"]
        near = [
            f"{c.cycle} ({end})"
            for c in live
            if (end := end_date(c.eol)) is not None and 0 <= (end - today).days <= warn_days
        ]
        table.add_row(
            product.name,
            product.label,
            product.category,
            str(len(product.cycles)),
            ", ".join(c.cycle for c in live[:6]) + (" ..." if len(live) > 6 else ""),
            ", ".join(near),
        )
    return table


def _product_json(product: ProductLifecycle, today: date, warn_days: int) -> dict[str, Any]:
    data = product.model_dump(mode="json", by_alias=True)
    for cycle, item in zip(product.cycles, data["cycles"], strict=True):
        item["state"] = cycle.state(today)
        item["status"] = status_text(cycle, today, warn_days)
    policy = LTS_POLICIES.get(product.name)
    data["ltsPolicy"] = policy.basis if policy else None
    return data


@eol.command("update", epilog=PROXY_EPILOG.format(what="the API"))
@click.option(
    "--url",
    "base_url",
    default=DEFAULT_BASE_URL,
    show_default=True,
    help="endoflife.date site (or API v1 root) to read /api/v1/products/{product} from.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="Deadline, seconds.",
)
@click.option(
    "--from",
    "source_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Take the catalog from this file instead of the API (the catalog file format: a cache written by "
    "`eol update --cache FILE` on a machine that reaches the API): for air-gapped clusters.",
)
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"Write the catalog into the cluster's {CATALOG_KIND} {CATALOG_NAME!r} (what every distroguard "
    "replica reads) instead of the local cache.",
)
@_cache_option
def update(
    base_url: str, timeout: float, source_file: Path | None, kubeconfig: Path | None, cache: Path | None
) -> None:
    """Refresh the catalog from the endoflife.date API (or --from a file) into the local cache, or with
    --kubeconfig into the cluster's EOLCatalog object (atomically either way).

    Every product of the current catalog is fetched; if any fails, nothing is written and the
    current catalog (the cache, or the snapshot bundled in the package) stays in use. A catalog older
    than the one in the cluster never replaces it.
    """
    if kubeconfig is not None:
        _update_cluster(kubeconfig, base_url, timeout, source_file)
        return
    loaded = _load(cache)
    target = cache or default_cache_path()
    names = [p.name for p in loaded.catalog.products]
    settings = RefreshSettings(base_url=base_url, deadline=timeout, proxies=environment_proxies())
    today = datetime.now(UTC).date()
    try:
        snapshot = (
            loads(source_file.read_bytes(), str(source_file))
            if source_file is not None
            else asyncio.run(fetch_snapshot(names, settings, today))
        )
        require_not_older(snapshot, loaded.catalog.data, f"the {loaded.origin} snapshot in use")
        write_cache(target, snapshot)
    except CatalogError as exc:
        click.echo(
            f"error: {exc}\nthe EOL catalog was not changed: still using the {loaded.origin} "
            f"snapshot {loaded.catalog.snapshot} ({loaded.location})",
            err=True,
        )
        sys.exit(EXIT_ERROR)
    except OSError as exc:
        click.echo(f"error: cannot write {target}: {exc}\nthe EOL catalog was not changed", err=True)
        sys.exit(EXIT_ERROR)
    cycles = sum(len(p.cycles) for p in snapshot.products)
    click.echo(
        f"updated {target}: {len(snapshot.products)} products, {cycles} cycles, snapshot {snapshot.snapshot}"
    )


def _update_cluster(kubeconfig: Path, base_url: str, timeout: float, source_file: Path | None) -> None:
    """Fetch (or read) first, then write as of the object read: the API's answers never wait on a lock."""
    # The Kubernetes client is imported here: only `--kubeconfig` needs it, and it is slow to import.
    from distroguard.operator.catalogstore import CatalogStore, StoredCatalog, push
    from distroguard.operator.kubeclient import api_client, load_configuration

    where = f"the cluster's {CATALOG_KIND} {CATALOG_NAME}"
    try:
        api = api_client(load_configuration(kubeconfig))
    except Exception as exc:
        raise click.ClickException(f"cannot use {kubeconfig}: {exc}") from exc
    store = CatalogStore(api)
    fetched: CatalogSnapshot | None = None
    try:
        if source_file is not None:
            fetched = loads(source_file.read_bytes(), str(source_file))
        else:
            before = store.read()
            names = refresh_names(before.snapshot if before else None, bundled_snapshot())
            settings = RefreshSettings(base_url=base_url, deadline=timeout, proxies=environment_proxies())
            fetched = asyncio.run(fetch_snapshot(names, settings, datetime.now(UTC).date()))
        new = fetched

        def decide(stored: StoredCatalog | None) -> CatalogSnapshot:
            return new

        pushed = push(store, decide)
    except CatalogError as exc:
        click.echo(f"error: {exc}\n{where} was not changed", err=True)
        sys.exit(EXIT_ERROR)
    except Exception as exc:  # the API server: refused, forbidden, unreachable
        click.echo(f"error: cannot write {where}: {exc}\nit was not changed", err=True)
        sys.exit(EXIT_ERROR)
    finally:
        api.close()
    cycles = sum(len(p.cycles) for p in pushed.snapshot.products)
    before_text = f"replacing data of {pushed.replaced.snapshot}" if pushed.replaced else "created"
    click.echo(
        f"updated {where} ({before_text}): {len(pushed.snapshot.products)} products, {cycles} cycles, "
        f"snapshot {pushed.snapshot.snapshot}, {pushed.snapshot.source}"
    )
