"""The pure parts of the cluster's EOL data and its holder: what may replace what, a refresh's answers
merged, validation, the holder's swaps, staleness, and the unknown release's finding saying the data's day."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

import pytest

from distroguard.eol import EolCatalog, bundled_snapshot, staleness
from distroguard.eol.fileformat import dumps, from_document, loads
from distroguard.eol.refresh import Fetched
from distroguard.eol.update import (
    OlderCatalog,
    merge,
    refresh_names,
    replaces,
    require_not_older,
    validators_of,
)
from distroguard.errors import CatalogError, CatalogUpdateError
from distroguard.model.lifecycle import CatalogSnapshot, ProductValidators
from distroguard.operator.catalogholder import CatalogHolder
from distroguard.operator.catalogrefresh import EolSettings
from distroguard.operator.catalogstore import spec_document
from distroguard.operator.settings import RunSettings
from distroguard.policy import ContainerImage, EvaluationContext, evaluate
from support.lifecycles import NOW, cycle, days, facts, product
from support.policies import policy

DEBIAN = product("debian", "Debian", cycle("12", eol=date(2026, 6, 10), codename="Bookworm"))
PYTHON = product("python", "Python", cycle("3.12", eol=date(2028, 10, 31)), category="lang")


def snapshot(day: date, *products: Any, source: str = "tests") -> CatalogSnapshot:
    return CatalogSnapshot(snapshot=day, source=source, products=products or (DEBIAN, PYTHON))


def body(data: CatalogSnapshot | dict[str, Any], name: str = "default", **status: Any) -> dict[str, Any]:
    spec = spec_document(data) if isinstance(data, CatalogSnapshot) else data
    return {"metadata": {"name": name, "generation": 1}, "spec": spec, "status": status}


# ------------------------------------------------------------------------------------------ eol.update


def test_an_older_catalog_never_replaces_a_newer_one_the_same_day_may() -> None:
    old, new = snapshot(date(2026, 9, 1)), snapshot(date(2026, 9, 2))
    assert replaces(new, old)
    assert replaces(new, None)
    assert replaces(old, old)
    assert not replaces(old, new)
    with pytest.raises(OlderCatalog, match=r"2026-09-01\) is older than here \(2026-09-02"):
        require_not_older(old, new, "here")
    require_not_older(new, old, "here")


def test_a_refresh_asks_for_the_products_in_place_then_those_the_package_adds() -> None:
    current = snapshot(date(2026, 9, 1), PYTHON)
    bundled = snapshot(date(2026, 8, 22), DEBIAN, PYTHON)
    assert refresh_names(current, bundled) == ["python", "debian"]
    assert refresh_names(None, bundled) == ["debian", "python"]


def test_merge_keeps_what_answered_304_and_takes_what_changed() -> None:
    moved = product("debian", "Debian", cycle("12", eol=date(2027, 6, 30), codename="Bookworm"))
    tag = ProductValidators(etag='"a"')
    current = snapshot(date(2026, 9, 1))
    merged = merge(
        current,
        ["debian", "python"],
        {"debian": Fetched(moved, tag), "python": Fetched(None, ProductValidators())},
        today=date(2026, 9, 5),
        source="api",
    )
    assert merged.products == (moved, PYTHON)
    assert (merged.snapshot, merged.source) == (date(2026, 9, 5), "api")


def test_a_304_for_a_product_without_data_fails_the_refresh() -> None:
    with pytest.raises(CatalogUpdateError, match="304 Not Modified for python"):
        merge(
            snapshot(date(2026, 9, 1), DEBIAN),
            ["python"],
            {"python": Fetched(None, ProductValidators(etag='"x"'))},
            today=date(2026, 9, 5),
            source="api",
        )


def test_only_validators_that_exist_are_kept() -> None:
    fetched = {
        "b": Fetched(PYTHON, ProductValidators(last_modified="Fri, 27 Nov 2026 18:30:00 GMT")),
        "a": Fetched(DEBIAN, ProductValidators()),
    }
    assert validators_of(fetched) == {"b": ProductValidators(last_modified="Fri, 27 Nov 2026 18:30:00 GMT")}


# ------------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"snapshot": "2026-09-01", "source": "x", "products": []}, "lists no products"),
        ({"snapshot": "2026-09-01", "products": []}, "source: Field required"),
        ({"snapshot": "yesterday", "source": "x", "products": []}, "snapshot: Input should be a valid date"),
        (
            {
                "snapshot": "2026-09-01",
                "source": "x",
                "products": [spec_document(snapshot(date(2026, 9, 1)))["products"][0]] * 2,
            },
            "product debian twice",
        ),
        (
            {"snapshot": "2026-09-01", "source": "x", "products": [{**DEBIAN.model_dump(), "cycles": []}]},
            "product debian has no cycles",
        ),
        (None, "Input should be a valid dictionary"),
    ],
)
def test_an_invalid_catalog_is_refused_naming_what_is_wrong(document: Any, problem: str) -> None:
    with pytest.raises(CatalogError, match="not a valid EOL catalog") as raised:
        from_document(document, "EOLCatalog default")
    assert problem in str(raised.value)
    assert str(raised.value).startswith("EOLCatalog default")


def test_the_object_spec_and_the_file_format_hold_the_same_data() -> None:
    bundled = bundled_snapshot()
    assert from_document(spec_document(bundled), "spec") == bundled
    assert loads(dumps(bundled), "file") == bundled


# ------------------------------------------------------------------------------------------ holder


def test_the_holder_swaps_on_a_new_object_and_ignores_status_updates(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fallback = EolCatalog(snapshot(date(2026, 8, 22)))
    swapped: list[EolCatalog] = []
    holder = CatalogHolder(fallback, on_swap=swapped.append)
    assert holder.current() is fallback
    newer = snapshot(date(2026, 9, 1))
    assert holder.observe(None, body(newer))
    first = holder.current()
    assert first.data == newer
    assert holder.origin == "cluster"
    assert swapped == [first]
    # The refresher's status write: same spec, nothing changes (memoised decisions stay valid).
    assert not holder.observe("MODIFIED", body(newer, checked="2026-09-02T00:00:00Z"))
    assert holder.current() is first


def test_an_invalid_object_is_logged_and_the_catalog_in_use_stays(caplog: pytest.LogCaptureFixture) -> None:
    holder = CatalogHolder(EolCatalog(snapshot(date(2026, 8, 22))))
    holder.observe(None, body(snapshot(date(2026, 9, 1))))
    good = holder.current()
    with caplog.at_level(logging.ERROR):
        assert not holder.observe("MODIFIED", body({"snapshot": "2026-09-03", "source": "x", "products": []}))
    assert holder.current() is good
    assert "lists no products" in caplog.text
    assert "of 2026-09-01" in caplog.text


def test_other_names_are_ignored_and_deletion_falls_back() -> None:
    fallback = EolCatalog(snapshot(date(2026, 8, 22)))
    holder = CatalogHolder(fallback)
    assert not holder.observe(None, body(snapshot(date(2026, 9, 1)), name="other"))
    assert holder.current() is fallback
    holder.observe(None, body(snapshot(date(2026, 9, 1))))
    assert holder.observe("DELETED", body(snapshot(date(2026, 9, 1))))
    assert holder.current() is fallback
    assert holder.origin == "fallback"


def test_an_object_older_than_the_bundled_data_is_not_used(caplog: pytest.LogCaptureFixture) -> None:
    fallback = EolCatalog(snapshot(date(2026, 8, 22)))
    holder = CatalogHolder(fallback)
    holder.observe(None, body(snapshot(date(2026, 9, 1))))
    with caplog.at_level(logging.WARNING):
        assert holder.observe("MODIFIED", body(snapshot(date(2026, 8, 1))))
    assert holder.current() is fallback
    assert "older than the tests" in caplog.text


def test_staleness_is_measured_from_the_data_day() -> None:
    assert staleness(date(2026, 8, 22), date(2026, 9, 21), 30) is None
    warning = staleness(date(2026, 8, 22), date(2026, 9, 22), 30)
    assert warning is not None
    assert "31 days old" in warning
    assert "data of 2026-08-22" in warning
    holder = CatalogHolder(EolCatalog(snapshot(date(2026, 8, 22))), max_age_days=10)
    assert holder.stale(date(2026, 9, 1)) is None
    assert holder.stale(date(2026, 9, 2)) is not None


# ------------------------------------------------------------------------------------------ findings


def test_an_unknown_release_is_never_supported_and_its_finding_says_the_data_day() -> None:
    data = CatalogSnapshot(
        snapshot=date(2026, 2, 1),
        source="tests",
        products=(product("debian", "Debian", cycle("12", eol=days(500))),),
    )
    decision = evaluate(
        [ContainerImage("app", "app:1", facts("debian", "14"))],
        [policy("p", {"name": "r", "support": {}})],
        EvaluationContext(now=NOW),
        EolCatalog(data),
    )
    [finding] = decision.findings
    assert finding.reason == "lifecycle-unknown"
    assert "Debian 14 is not in the EOL data: a release newer than the data" in finding.message
    assert "EOL data of 2026-02-01" in finding.message
    # A distribution endoflife.date does not track: no data of any day would know it, none is named.
    other = evaluate(
        [ContainerImage("app", "app:1", facts("bottlerocket", "1.34.0"))],
        [policy("p", {"name": "r", "support": {}})],
        EvaluationContext(now=NOW),
        EolCatalog(data),
    )
    assert "EOL data of" not in other.findings[0].message


# ------------------------------------------------------------------------------------------ settings


@pytest.mark.parametrize(
    ("eol", "problem"),
    [
        (EolSettings(url="ftp://mirror.example"), r"not an http\(s\) URL"),
        (EolSettings(interval=0), "must be positive"),
        (EolSettings(max_age_days=-1), "must not be negative"),
    ],
)
def test_bad_eol_settings_are_refused_at_start(eol: EolSettings, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        RunSettings(dev=True, eol=eol)


def test_an_empty_url_turns_the_refresh_off() -> None:
    assert not RunSettings(dev=True, eol=EolSettings(url="")).eol.refreshes
    assert RunSettings(dev=True).eol.refreshes
