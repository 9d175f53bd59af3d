"""Converting endoflife.date data: product files (the bundled snapshot) and API v1 responses (refresh)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from distroguard.eol import bundled_snapshot
from distroguard.eol.api import ApiProductResponse, product_from_api
from distroguard.eol.convert import product_from_markdown
from distroguard.eol.fileformat import loads
from distroguard.errors import CatalogError
from support.eol_api import api_document

REPO = Path(__file__).resolve().parent.parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "endoflife"


def test_markdown_conversion_keeps_lifecycle_fields() -> None:
    nodejs = product_from_markdown("nodejs", (FIXTURES / "products" / "nodejs.md").read_text())
    assert (nodejs.name, nodejs.label, nodejs.category) == ("nodejs", "Node.js", "framework")
    first = nodejs.cycles[0]
    assert first.cycle == "26"
    assert first.lts == date(2026, 10, 28)  # becomes LTS later
    assert first.eoas == date(2027, 10, 27)
    assert first.eol == date(2029, 4, 30)
    assert first.eoes is None
    photon = product_from_markdown("vmware-photon", (FIXTURES / "products" / "vmware-photon.md").read_text())
    assert photon.cycles[0].eol is False  # no end announced
    debian = product_from_markdown("debian", (FIXTURES / "products" / "debian.md").read_text())
    assert debian.cycles[1].codename == "Bookworm"
    assert debian.cycles[1].eoes == date(2028, 6, 30)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("no front matter", "no YAML front matter"),
        ("---\ntitle: [unclosed\n---\n", "not valid YAML"),
        ("---\ntitle: X\n---\n", "no releases"),
        (
            "---\nreleases:\n  - releaseCycle: '1'\n    eol: someday\n---\n",
            "release 1: expected a date or a boolean",
        ),
    ],
)
def test_markdown_problems(text: str, problem: str) -> None:
    with pytest.raises(CatalogError, match=problem):
        product_from_markdown("x", text)


def test_converter_script(tmp_path: Path) -> None:
    output = tmp_path / "data" / "eol.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "eol_convert.py"),
            str(FIXTURES),
            "--snapshot-date",
            "2026-08-22",
            "--source",
            "fixtures",
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "3 products" in done.stdout
    snapshot = loads(output.read_text(), "converted")
    assert [p.name for p in snapshot.products] == ["debian", "nodejs", "vmware-photon"]
    assert snapshot.snapshot == date(2026, 8, 22)
    assert output.with_suffix(".LICENSE").read_text().startswith("Copyright")


def test_converter_script_without_products(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "eol_convert.py"),
            str(tmp_path),
            "--snapshot-date",
            "2026-01-01",
            "--source",
            "x",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "no product files" in done.stderr


def test_api_conversion_round_trips_the_bundled_data() -> None:
    for product in bundled_snapshot().products:
        document = json.loads(json.dumps(api_document(product)))
        assert product_from_api(ApiProductResponse.model_validate(document)) == product


def spec_example(spec: dict[str, Any], schema: dict[str, Any]) -> Any:
    """The document the API description itself gives as the example of `schema`: each property's first
    `examples` value, objects and arrays of objects built from their own schemas."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        return spec_example(spec, spec["components"]["schemas"][name])
    if "examples" in schema:
        return schema["examples"][0]
    if "anyOf" in schema:
        return spec_example(spec, schema["anyOf"][0])
    if schema.get("type") == "array":
        return [spec_example(spec, schema["items"])]
    if schema.get("type") == "object" and "properties" in schema:
        return {key: spec_example(spec, value) for key, value in schema["properties"].items()}
    return {}  # an object of unknown keys (`custom`: UnknownProperties)


def test_the_api_description_s_own_example_response_decodes() -> None:
    # The file starts with the site's front matter; the description is the second YAML document.
    _, spec = yaml.safe_load_all((FIXTURES / "api-v1-openapi.yml").read_text())
    document = spec_example(spec, spec["components"]["schemas"]["ProductResponse"])
    product = product_from_api(ApiProductResponse.model_validate(document))
    assert (product.name, product.label, product.category) == ("ubuntu", "Ubuntu", "os")
    (cycle,) = product.cycles
    assert (cycle.cycle, cycle.codename) == ("22.04", "Jammy Jellyfish")
    assert cycle.release_date == date(2022, 4, 21)
    assert cycle.lts == date(2022, 4, 21)
    assert (cycle.eoas, cycle.eol, cycle.eoes) == (date(2024, 9, 30), date(2027, 4, 1), date(2032, 4, 9))
    assert cycle.latest == "22.04.2"


def test_the_test_encoder_speaks_the_api_description_s_fields() -> None:
    """What `support.eol_api` serves (the refresh tests' API) uses the description's names and has its
    required fields, so those tests exercise the real wire format, not a dialect of our own."""
    _, spec = yaml.safe_load_all((FIXTURES / "api-v1-openapi.yml").read_text())
    schemas = spec["components"]["schemas"]

    def check(part: dict[str, Any], schema: str) -> None:
        fields = schemas[schema]
        assert set(fields["required"]) <= set(part) <= set(fields["properties"]), (schema, sorted(part))

    for product in bundled_snapshot().products:
        document = api_document(product)
        check(document, "ProductResponse")
        check(document["result"], "ProductDetails")
        for release in document["result"]["releases"]:
            check(release, "ProductRelease")


def test_api_absent_phase_is_not_the_same_as_not_over() -> None:
    release = {"name": "1", "isEol": False, "eolFrom": None, "isEoas": False, "eoasFrom": None}
    document = {
        "schema_version": "1.2.1",
        "result": {"name": "x", "label": "X", "category": "os", "releases": [release]},
    }
    (cycle,) = product_from_api(ApiProductResponse.model_validate(document)).cycles
    assert (cycle.eoas, cycle.eol, cycle.eoes) == (False, False, None)
