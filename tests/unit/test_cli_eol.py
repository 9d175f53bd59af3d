"""`distroguard eol show`: the catalog for people (tables) and machines (JSON), with its age."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from click.testing import CliRunner

from distroguard.cli.eol import eol, status_text
from distroguard.eol import bundled_snapshot
from distroguard.eol.store import write_cache
from support.lifecycles import TODAY, cycle, days


def show(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(eol, ["show", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_summary_of_every_product(tmp_path: Path) -> None:
    code, out, err = show("--date", "2026-09-01", "--cache", str(tmp_path / "none.json"))
    assert code == 0
    assert "EOL catalog: bundled snapshot 2026-08-22 (10 days old), endoflife.date commit" in out
    for name in ("alpine-linux", "debian", "ubuntu", "python", "nodejs"):
        assert name in out
    assert err == ""


def test_stale_catalog_warns(tmp_path: Path) -> None:
    code, _, err = show("--date", "2026-12-01", "--cache", str(tmp_path / "none.json"))
    assert code == 0
    assert "warning: the EOL catalog is 101 days old (more than 90)" in err
    _, _, err = show(
        "--date",
        "2026-12-01",
        "--cache",
        str(tmp_path / "none.json"),
        env={"DISTROGUARD_EOL_MAX_AGE_DAYS": "120"},
    )
    assert err == ""


def test_one_product_with_status_and_lts_rule(tmp_path: Path) -> None:
    code, out, _ = show("debian", "--date", "2026-06-01", "--cache", str(tmp_path / "none.json"))
    assert code == 0
    assert "EOL in 40 days (2026-07-11)" in out
    assert "requireLTS: Debian has no LTS mark" in out


def test_json_output(tmp_path: Path) -> None:
    code, out, _ = show(
        "ubuntu", "-o", "json", "--date", "2026-09-01", "--cache", str(tmp_path / "none.json")
    )
    assert code == 0
    document = json.loads(out)
    assert document["snapshot"] == "2026-08-22"
    assert document["age_days"] == 10
    assert document["stale"] is False
    assert document["origin"] == "bundled"
    (ubuntu,) = document["products"]
    by_cycle = {c["cycle"]: c for c in ubuntu["cycles"]}
    assert by_cycle["24.04"]["lts"] is True
    assert by_cycle["24.04"]["state"] == "active"
    assert by_cycle["23.10"]["state"] in ("eol", "extended")
    assert ubuntu["ltsPolicy"].startswith("Ubuntu marks LTS releases")


def test_cache_is_used_when_newer(tmp_path: Path) -> None:
    cache = tmp_path / "eol.json"
    newer = bundled_snapshot().model_copy(update={"snapshot": date(2026, 11, 1), "source": "api test"})
    write_cache(cache, newer)
    code, out, _ = show("-o", "json", "--date", "2026-11-28", "--cache", str(cache))
    assert code == 0
    document = json.loads(out)
    assert (document["origin"], document["location"], document["source"]) == ("cache", str(cache), "api test")
    assert document["age_days"] == 27


def test_unknown_product(tmp_path: Path) -> None:
    code, _, err = show("windows", "--cache", str(tmp_path / "none.json"))
    assert code == 1
    assert "no product 'windows' in the catalog; known: almalinux, alpine-linux" in err


def test_status_texts() -> None:
    assert status_text(cycle("1", eol=days(500)), TODAY, 90) == "supported"
    assert status_text(cycle("1", eol=days(30)), TODAY, 90) == f"EOL in 30 days ({days(30)})"
    assert status_text(cycle("1", eol=days(-1)), TODAY, 90) == f"EOL since {days(-1)}"
    assert status_text(cycle("1", eol=days(-1), eoes=days(9)), TODAY, 90) == (
        f"extended support only, until {days(9)}"
    )
    assert status_text(cycle("1", eol=days(200), eoas=days(-1)), TODAY, 90) == "security fixes only"
    assert status_text(cycle("1", eol=True), TODAY, 90) == "EOL"
    assert status_text(cycle("1", eol=False, released=days(3)), TODAY, 90) == "not released yet"


def test_update_from_a_file_replaces_the_cache_never_with_older_data(tmp_path: Path) -> None:
    cache, carried = tmp_path / "eol.json", tmp_path / "carried.json"
    newer = bundled_snapshot().model_copy(update={"snapshot": date(2026, 11, 1), "source": "carried in"})
    write_cache(carried, newer)
    done = CliRunner().invoke(eol, ["update", "--from", str(carried), "--cache", str(cache)])
    assert done.exit_code == 0, done.output
    assert "snapshot 2026-11-01" in done.stdout
    assert cache.read_bytes() == carried.read_bytes()
    older = newer.model_copy(update={"snapshot": date(2026, 10, 1), "source": "older"})
    write_cache(carried, older)
    refused = CliRunner().invoke(eol, ["update", "--from", str(carried), "--cache", str(cache)])
    assert refused.exit_code == 2
    assert "2026-10-01) is older than the cache snapshot in use (2026-11-01" in refused.stderr
    assert "the EOL catalog was not changed" in refused.stderr
    assert "older" not in cache.read_text()


def test_update_from_an_invalid_file_changes_nothing(tmp_path: Path) -> None:
    cache, carried = tmp_path / "eol.json", tmp_path / "carried.json"
    carried.write_text('{"format": 1, "snapshot": "2026-11-01", "source": "x", "products": []}')
    refused = CliRunner().invoke(eol, ["update", "--from", str(carried), "--cache", str(cache)])
    assert refused.exit_code == 2
    assert "lists no products" in refused.stderr
    assert not cache.exists()
