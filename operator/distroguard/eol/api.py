"""The endoflife.date API v1 wire format (`GET /api/v1/products/{product}`), and its conversion.

Only the fields distroguard needs are declared; the API promises new fields may appear, so unknown
ones are ignored. A phase the product does not have is *absent* from a release (`isEoas` missing),
which is not the same as "not over yet" (`isEoas: false`): the conversion keeps that difference.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from distroguard.model.lifecycle import PhaseEnd, ProductLifecycle, ReleaseCycle


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", alias_generator=to_camel)


class ApiVersion(_Wire):
    name: str


class ApiRelease(_Wire):
    name: str
    codename: str | None = None
    release_date: date | None = None
    is_lts: bool = False
    lts_from: date | None = None
    is_eoas: bool | None = None
    eoas_from: date | None = None
    is_eol: bool
    eol_from: date | None = None
    is_eoes: bool | None = None
    eoes_from: date | None = None
    latest: ApiVersion | None = None


class ApiProduct(_Wire):
    name: str
    label: str
    category: str
    releases: tuple[ApiRelease, ...]


class ApiProductResponse(BaseModel):
    # Top-level keys are snake_case in the API (schema_version, generated_at), release keys
    # camelCase.
    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: str
    result: ApiProduct


def _phase(present: bool, over: bool | None, end: date | None) -> PhaseEnd | None:
    if not present or over is None:
        return None
    return end if end is not None else over


def product_from_api(response: ApiProductResponse) -> ProductLifecycle:
    product = response.result
    cycles = []
    for release in product.releases:
        given = release.model_fields_set
        cycles.append(
            ReleaseCycle(
                cycle=release.name,
                codename=release.codename,
                release_date=release.release_date,
                lts=release.lts_from if release.lts_from is not None else release.is_lts,
                eoas=_phase("is_eoas" in given, release.is_eoas, release.eoas_from),
                eol=release.eol_from if release.eol_from is not None else release.is_eol,
                eoes=_phase("is_eoes" in given, release.is_eoes, release.eoes_from),
                latest=release.latest.name if release.latest else None,
            )
        )
    return ProductLifecycle(
        name=product.name, label=product.label, category=product.category, cycles=tuple(cycles)
    )
