"""Release lifecycles (endoflife.date's vocabulary) and the lookup contract the policy engine
evaluates against.

The types here are pure data. Which product and cycle an image's OS or runtime belongs to is decided
by the `distroguard.eol` package; `distroguard.policy` only sees the `LifecycleLookup` protocol, so
EOL data enters an evaluation as an argument and is never read from disk there.

A phase end is a date, or a boolean where the source knows only *whether* the phase is over: `True`
= over (date unknown), `False` = not over (no date announced). `None` means the product has no such
phase at all.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from distroguard.model.facts import OSRelease, Runtime

PhaseEnd = date | bool
SupportState = Literal["active", "security", "extended", "eol"]
MatchStatus = Literal["matched", "rolling", "unknown-product", "unknown-cycle"]


class _Frozen(BaseModel):
    # Python builds these by field name, files spell them camelCase: both are accepted.
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
    )


def phase_over(end: PhaseEnd | None, today: date) -> bool:
    """Whether a phase that ends on `end` is over on `today` (a phase ends *on* its date, as
    endoflife.date says)."""
    if end is None or isinstance(end, bool):
        return bool(end)
    return today >= end


def end_date(end: PhaseEnd | None) -> date | None:
    return None if end is None or isinstance(end, bool) else end


class ReleaseCycle(_Frozen):
    """One release cycle of a product (`12` of Debian, `3.19` of Alpine, `3.12` of Python)."""

    cycle: str
    codename: str | None = None
    release_date: date | None = None
    lts: bool | date = Field(
        default=False,
        description="True: an LTS release; a date: LTS from that day (Node.js); False: not LTS",
    )
    eoas: PhaseEnd | None = Field(default=None, description="end of active support; None: no such phase")
    eol: PhaseEnd = Field(default=False, description="end of security support, the 'end of life'")
    eoes: PhaseEnd | None = Field(
        default=None,
        description="end of extended support (Debian LTS, Ubuntu ESM, RHEL ELS); None: none",
    )
    latest: str | None = None

    def state(self, today: date) -> SupportState:
        """Where the cycle stands on `today`: in active support, security-only, extended-only, or
        past all."""
        if phase_over(self.eol, today):
            return "extended" if self.eoes is not None and not phase_over(self.eoes, today) else "eol"
        if self.eoas is not None and phase_over(self.eoas, today):
            return "security"
        return "active"

    def is_lts(self, today: date) -> bool:
        return self.lts if isinstance(self.lts, bool) else today >= self.lts


class ProductLifecycle(_Frozen):
    """All release cycles of one endoflife.date product, newest first."""

    name: str = Field(description="endoflife.date product name, e.g. 'alpine-linux'")
    label: str
    category: str = Field(description="endoflife.date category: 'os', 'lang', 'framework', ...")
    cycles: tuple[ReleaseCycle, ...]


class CatalogSnapshot(_Frozen):
    """The EOL catalog as stored: the bundled `data/eol.json` and the local cache share this
    format."""

    format: Literal[1] = 1
    snapshot: date = Field(description="the day the data was taken from endoflife.date")
    source: str = Field(description="where the data came from (repository commit or API base URL)")
    notice: str = Field(default="", description="licence notice of the data")
    products: tuple[ProductLifecycle, ...]


class ProductValidators(_Frozen):
    """What endoflife.date said about one product's document when it was last fetched: the HTTP cache
    validators sent back as If-None-Match / If-Modified-Since, so an unchanged product costs a 304."""

    etag: str | None = None
    last_modified: str | None = None


class CatalogStatus(_Frozen):
    """The refresher's bookkeeping on the cluster's EOLCatalog object (its status subresource).

    The validators describe the spec of generation `observed_generation` only: when another writer
    (`distroguard eol update --kubeconfig`) replaced the spec since, they are ignored and every product
    is fetched in full.
    """

    observed_generation: int | None = Field(
        default=None, description="the spec generation the validators were taken with"
    )
    snapshot_time: datetime | None = Field(
        default=None,
        description="the spec's snapshot day as a time (midnight UTC), for `kubectl get` to show its age",
    )
    checked: datetime | None = Field(
        default=None, description="when endoflife.date last answered for every product"
    )
    changed: datetime | None = Field(default=None, description="when a refresh last changed the data")
    products: dict[str, ProductValidators] = Field(
        default_factory=dict, description="HTTP validators (ETag, Last-Modified) by product"
    )
    last_attempt: datetime | None = Field(default=None, description="when the last refresh was tried")
    last_error: str | None = Field(default=None, description="why the last refresh failed; None: it did not")


class LifecycleMatch(_Frozen):
    """The answer to "which release cycle is this OS or runtime?", including "none, and here is
    why"."""

    status: MatchStatus
    subject: str = Field(description="what was looked up, for messages: 'Debian 12 (bookworm)'")
    product: str | None = None
    product_label: str | None = None
    cycle: ReleaseCycle | None = None
    lts: bool | None = Field(default=None, description="whether the release counts as long-term")
    lts_basis: str = Field(default="", description="why it does or does not count as long-term")
    note: str = Field(default="", description="what a person should know: rolling, not covered, ...")


class LifecycleLookup(Protocol):
    """What the policy engine needs from an EOL catalog. `distroguard.eol.EolCatalog` implements
    it."""

    @property
    def snapshot(self) -> date: ...

    def for_os(self, os: OSRelease) -> LifecycleMatch: ...

    def for_runtime(self, runtime: Runtime) -> LifecycleMatch: ...

    def supported(self, product: str, today: date) -> tuple[ReleaseCycle, ...]:
        """Cycles of `product` within security support on `today`, newest first."""
        ...
