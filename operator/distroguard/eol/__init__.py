"""The EOL catalog: endoflife.date lifecycles of distributions and runtimes, and cycle matching.

catalog.py     EolCatalog: lookups on one snapshot (pure; implements model.LifecycleLookup)
match.py       os-release / runtime -> product and cycle (pure)
products.py    the tables: os-release IDs, runtime names, rolling distributions, LTS notions
convert.py     endoflife.date product files -> lifecycles (used by scripts/eol_convert.py)
api.py         endoflife.date API v1 wire format -> lifecycles
fileformat.py  the catalog file format (bundled data/eol.json, the cache, the cluster object's spec)
update.py      what may replace what (never older over newer), a refresh's answers merged (pure)
store.py       I/O: the bundled snapshot, the local cache, atomic replacement
refresh.py     I/O: `distroguard eol update` and the in-cluster refresh, async with a deadline,
               conditional requests
"""

from distroguard.eol.catalog import DEFAULT_MAX_AGE_DAYS, EolCatalog, staleness
from distroguard.eol.store import LoadedCatalog, bundled_snapshot, default_cache_path, load_catalog

__all__ = [
    "DEFAULT_MAX_AGE_DAYS",
    "EolCatalog",
    "LoadedCatalog",
    "bundled_snapshot",
    "default_cache_path",
    "load_catalog",
    "staleness",
]
