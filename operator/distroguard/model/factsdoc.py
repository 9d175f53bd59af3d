"""The facts document: one image's facts as machines read them, the one shape shared by
`distroguard inspect --output json` and the facts API (`GET /v1/facts`, Gatekeeper's provider items).

    facts_document(facts)                        what `inspect --output json` prints for one image
    served_document(facts, catalog, today)       the same, plus `lifecycle`: the support state of its
                                                 distribution and runtimes on `today` (the facts API)

`lifecycle` is what a policy engine needs to deny an end-of-life image without an EOL catalog of its own:

    "lifecycle": {
      "snapshot": "2026-11-30",           the EOL catalog's date
      "eol": false,                       whether the distribution is past its end of life (state "eol")
      "os": {"subject": "Debian 12 (bookworm)", "status": "matched", "product": "debian", "cycle": "12",
             "state": "active", "eol": "2028-06-10", "lts": true}      or null without an OS
      "runtimes": [{"name": "python", "version": "3.12.8", "subject": ..., "status": ..., "product": ...,
                    "cycle": ..., "state": ..., "eol": ..., "lts": ...}]
    }

`state` is one of active, security, extended, eol, or null when no release cycle was matched (`status`
says why: rolling, unknown-product, unknown-cycle); `eol` is the end of security support as the catalog
has it: a date, true (over, date unknown), false (not announced), or null (no cycle matched).
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from distroguard.model.facts import ImageFacts

if TYPE_CHECKING:  # types only: `inspect` writes facts documents without building the lifecycle models
    from distroguard.model.lifecycle import LifecycleLookup, LifecycleMatch


def facts_document(facts: ImageFacts) -> dict[str, Any]:
    """`inspect --output json`'s object for one image on one platform."""
    data = facts.model_dump(mode="json")
    if facts.os is not None:
        data["os"]["id_like"] = list(facts.os.id_like)
    return data


def served_document(facts: ImageFacts, catalog: LifecycleLookup, today: date) -> dict[str, Any]:
    """`facts_document` with `lifecycle` (see the module's docstring) judged on `today`."""
    data = facts_document(facts)
    data["lifecycle"] = lifecycle_document(facts, catalog, today)
    return data


def lifecycle_document(facts: ImageFacts, catalog: LifecycleLookup, today: date) -> dict[str, Any]:
    os_entry = None if facts.os is None else _match(catalog.for_os(facts.os), today)
    runtimes = [
        {"name": runtime.name, "version": runtime.version, **_match(catalog.for_runtime(runtime), today)}
        for runtime in facts.runtimes
    ]
    return {
        "snapshot": catalog.snapshot.isoformat(),
        "eol": os_entry is not None and os_entry["state"] == "eol",
        "os": os_entry,
        "runtimes": runtimes,
    }


def _match(match: LifecycleMatch, today: date) -> dict[str, Any]:
    cycle = match.cycle
    end = None if cycle is None else cycle.eol
    return {
        "subject": match.subject,
        "status": match.status,
        "product": match.product,
        "cycle": None if cycle is None else cycle.cycle,
        "state": None if cycle is None else cycle.state(today),
        "eol": end.isoformat() if isinstance(end, date) else end,
        "lts": match.lts,
    }
