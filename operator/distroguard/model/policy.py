"""DistroPolicy: the policy language, one source of truth for the CLI, the webhook, the audit and
the CRD.

`apiVersion: distroguard.dev/v1alpha1`, `kind: DistroPolicy`, cluster-scoped. The same YAML is a
Kubernetes object and a file given to `distroguard check`. Field names are camelCase on the wire
(the Kubernetes way) and snake_case in Python. Unknown fields are errors everywhere except
`metadata`, which the API server owns. `python -m codegen.crds` turns these models into the
CRD's OpenAPI schema.
"""

from __future__ import annotations

import re
import string
from functools import cached_property
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from distroguard.model.version import version_parts

Action = Literal["deny", "warn", "audit"]
UnresolvedAction = Literal["allow", "warn", "deny"]
ControlledPods = Literal["warn", "deny", "same-as-policy"]
"""How a pod that a workload controller created is judged while its owner's template names its images:
`warn`, a failing rule at most warns; `policy`, as a bare pod, with the policy's own actions."""
LibcName = Literal["glibc", "musl", "none"]

# Placeholders a rule's `message` template may use (see `Rule.message`).
MESSAGE_FIELDS = (
    "container",
    "image",
    "facts",
    "problem",
    "policy",
    "rule",
    "action",
    "suggestion",
)

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_QUANTITY_FACTORS = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_QUANTITY_FACTORS.update({"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40})


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel)


def _check_name(value: str, what: str) -> str:
    if len(value) > 63 or not _NAME.match(value):
        raise ValueError(
            f"{what} {value!r} must be 1-63 lowercase letters, digits or '-', starting and ending "
            "with a letter or digit (like a Kubernetes name)"
        )
    return value


def _check_version(value: str | None) -> str | None:
    if value is not None and not version_parts(value):
        raise ValueError(
            f"{value!r} is not a version: expected numbers separated by dots, e.g. '12' or '2.28'"
        )
    return value


def parse_quantity(value: int | str) -> int:
    """Bytes in a Kubernetes-style quantity: `500Mi`, `1Gi`, `200M`, or a plain number of bytes."""
    if isinstance(value, int):
        return value
    found = _QUANTITY.match(value.strip())
    if found is None:
        raise ValueError(
            f"{value!r} is not a size: use bytes or a number with Ki, Mi, Gi, Ti (binary) or "
            "k, M, G, T (decimal), e.g. '500Mi'"
        )
    return int(float(found.group(1)) * _QUANTITY_FACTORS[found.group(2)])


class LabelSelectorRequirement(_Spec):
    """One `matchExpressions` entry, as in Kubernetes label selectors."""

    key: str = Field(min_length=1)
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _values_fit_operator(self) -> LabelSelectorRequirement:
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"operator {self.operator} needs at least one value")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"operator {self.operator} takes no values")
        return self


class LabelSelector(_Spec):
    """A Kubernetes label selector: every `matchLabels` pair and every expression must hold."""

    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: tuple[LabelSelectorRequirement, ...] = ()


class ResourceFilter(_Spec):
    """Which workloads and images a policy covers (`match`) or leaves out (`exclude`).

    Every criterion that is set must hold (AND); within a list any entry may match (OR). An empty
    `match` matches everything; an empty `exclude` excludes nothing. A criterion that cannot be
    judged (no namespace or kind in the `distroguard check` CLI, no facts for `runtimes`) holds for
    `match` and not for `exclude`: a policy never silently stops applying because something is
    unknown.
    """

    namespaces: tuple[str, ...] = Field(
        default=(), description="namespace names or globs (`team-*`); empty: any namespace"
    )
    namespace_selector: LabelSelector | None = Field(
        default=None, description="labels the namespace must carry"
    )
    images: tuple[str, ...] = Field(
        default=(),
        description="image reference globs on the normalised reference, e.g. "
        "`docker.io/library/*`, `*.example.com/team/*`; empty: any image",
    )
    kinds: tuple[str, ...] = Field(
        default=(),
        description="workload kinds (Pod, Deployment, StatefulSet, CronJob...); empty: any kind",
    )
    runtimes: tuple[str, ...] = Field(
        default=(),
        description="language runtimes the image has, as image facts name them (python, nodejs, "
        "ruby, go, java...); an image whose facts are unknown counts as having them; empty: any",
    )

    @cached_property
    def is_empty(self) -> bool:
        return not (self.namespaces or self.namespace_selector or self.images or self.kinds or self.runtimes)


class DistroSelector(_Spec):
    """A distribution by os-release `ID`, optionally bounded in version. A bare string means `{id:
    ...}`."""

    id: str = Field(min_length=1, description="os-release ID: debian, ubuntu, alpine, rhel, amzn, ...")
    versions: tuple[str, ...] = Field(
        default=(),
        description="releases allowed/denied; `22.04` covers 22.04.x, `12` covers 12.x; empty: any",
    )
    min_version: str | None = Field(default=None, description="lowest release covered (inclusive)")
    max_version: str | None = Field(
        default=None, description="highest release covered, at its precision (`3.19` covers 3.19.5)"
    )

    @model_validator(mode="before")
    @classmethod
    def _bare_id(cls, data: object) -> object:
        # `denyDistros: [alpine]` is the common case; the object form adds version bounds.
        return {"id": data} if isinstance(data, str) else data

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        # Say in the schema (and so in the CRD) that the bare string form is accepted too.
        return {
            "description": "an os-release ID such as 'alpine', or {id, versions, minVersion, maxVersion}",
            "anyOf": [{"type": "string"}, handler(schema)],
        }

    @field_validator("min_version", "max_version")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        return _check_version(value)

    @field_validator("versions")
    @classmethod
    def _versions(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            _check_version(value)
        return values

    def describe(self) -> str:
        """`debian >= 12`, `ubuntu 22.04/24.04`, `alpine <= 3.17`, `alpine`."""
        parts = [self.id]
        if self.versions:
            parts.append("/".join(self.versions))
        if self.min_version:
            parts.append(f">= {self.min_version}")
        if self.max_version:
            parts.append(f"<= {self.max_version}")
        return " ".join(parts)


class SupportRule(_Spec):
    """The distribution release must be within security support (endoflife.date's `eol`)."""

    require_active: bool = Field(
        default=False,
        description="also require active (non-security-only) support where the product has it",
    )
    count_extended_support: bool = Field(
        default=False,
        description="count extended support (Debian LTS, Ubuntu ESM, RHEL ELS) as supported: a "
        "release past regular security support but within extended support then warns, not fails",
    )
    warn_days_before: int = Field(
        default=0, ge=0, le=3650, description="warn this many days before support ends"
    )
    grace_days: int = Field(
        default=0,
        ge=0,
        le=3650,
        description="after support ends, warn for this many days before failing",
    )


class LTSRule(_Spec):
    """Short-lived releases (non-LTS Ubuntu, Fedora) are flagged; see `distroguard eol show` for
    each product."""

    allow_rolling: bool = Field(
        default=True,
        description="rolling distributions (Wolfi, Chainguard, Arch, Tumbleweed) have no releases "
        "to be short-lived; true lets them pass",
    )


class RuntimeRule(_Spec):
    """Language runtimes (Python, Node.js, Ruby, Go, Java, ...) must be supported releases."""

    names: tuple[str, ...] = Field(
        default=(),
        description="runtimes this rule checks, by fact name or endoflife.date product (python, "
        "nodejs, ruby, go, java, php...); empty: every runtime the image has",
    )
    require_supported: bool = Field(
        default=True,
        description="the runtime's release cycle must be within support (endoflife.date)",
    )
    min_versions: dict[str, str] = Field(
        default_factory=dict, description="lowest version per runtime name, e.g. {python: '3.11'}"
    )
    warn_days_before: int = Field(default=0, ge=0, le=3650, description="warn this many days before EOL")
    grace_days: int = Field(
        default=0, ge=0, le=3650, description="after EOL, warn for this many days before failing"
    )

    @field_validator("min_versions")
    @classmethod
    def _versions(cls, values: dict[str, str]) -> dict[str, str]:
        for value in values.values():
            _check_version(value)
        return values


class KnownOSRule(_Spec):
    """Images without an identifiable OS (scratch, unknown distributions) are flagged unless allowed
    here."""

    allow_static: bool = Field(
        default=False,
        description="allow images with no OS and no C library at all: static binaries (Go, Rust) "
        "FROM scratch",
    )


RuleKind = Literal[
    "allowDistros",
    "denyDistros",
    "denyLibc",
    "minGlibc",
    "support",
    "requireLTS",
    "runtimes",
    "requireKnownOS",
    "maxImageSize",
]
# (python attribute, wire name) of each rule kind; a rule sets exactly one.
RULE_KINDS: tuple[tuple[str, RuleKind], ...] = (
    ("allow_distros", "allowDistros"),
    ("deny_distros", "denyDistros"),
    ("deny_libc", "denyLibc"),
    ("min_glibc", "minGlibc"),
    ("support", "support"),
    ("require_lts", "requireLTS"),
    ("runtimes", "runtimes"),
    ("require_known_os", "requireKnownOS"),
    ("max_image_size", "maxImageSize"),
)


class Rule(_Spec):
    """One check. It sets `name`, optionally `action` and `message`, and exactly one rule kind."""

    name: str = Field(
        description="unique within the policy; findings name it as POLICY/RULE",
        json_schema_extra={"pattern": _NAME.pattern, "maxLength": 63},
    )
    action: Action | None = Field(default=None, description="overrides spec.action for this rule")
    message: str | None = Field(
        default=None,
        description="replaces the default message; placeholders: "
        + ", ".join("{" + f + "}" for f in MESSAGE_FIELDS),
    )

    allow_distros: tuple[DistroSelector, ...] | None = Field(
        default=None,
        description="only these distributions (and versions) pass; images without an OS are left "
        "to requireKnownOS",
    )
    deny_distros: tuple[DistroSelector, ...] | None = Field(
        default=None, description="these distributions (and versions) fail"
    )
    deny_libc: tuple[LibcName, ...] | None = Field(
        default=None, description="C libraries that fail: glibc, musl, none"
    )
    min_glibc: str | None = Field(
        default=None,
        description="lowest glibc version, e.g. '2.28' (manylinux_2_28 wheels); musl fails, "
        "static binaries pass",
    )
    support: SupportRule | None = None
    require_lts: LTSRule | None = Field(default=None, alias="requireLTS")
    runtimes: RuntimeRule | None = None
    require_known_os: KnownOSRule | None = Field(default=None, alias="requireKnownOS")
    max_image_size: int | str | None = Field(
        default=None,
        description="largest image (sum of compressed layers): bytes or a quantity such as '500Mi'",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_name(value, "rule name")

    @field_validator("min_glibc")
    @classmethod
    def _glibc(cls, value: str | None) -> str | None:
        return _check_version(value)

    @field_validator("max_image_size")
    @classmethod
    def _size(cls, value: int | str | None) -> int | str | None:
        if value is not None and parse_quantity(value) <= 0:
            raise ValueError("must be more than 0 bytes")
        return value

    @field_validator("message")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            fields = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
        except ValueError as exc:
            raise ValueError(f"bad message template ({exc}); write a literal brace as {{{{ or }}}}") from exc
        allowed = ", ".join("{" + f + "}" for f in MESSAGE_FIELDS)
        for name in fields:
            if name not in MESSAGE_FIELDS:
                raise ValueError(f"unknown placeholder {{{name}}} in message; allowed: {allowed}")
        return value

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Rule:
        set_kinds = [wire for attr, wire in RULE_KINDS if getattr(self, attr) is not None]
        if len(set_kinds) != 1:
            got = ", ".join(set_kinds) if set_kinds else "none"
            raise ValueError(
                f"rule {self.name!r} must set exactly one of "
                f"{', '.join(w for _, w in RULE_KINDS)} (it sets {got})"
            )
        return self

    @cached_property
    def kind(self) -> RuleKind:
        return next(wire for attr, wire in RULE_KINDS if getattr(self, attr) is not None)

    @cached_property
    def max_image_bytes(self) -> int | None:
        return None if self.max_image_size is None else parse_quantity(self.max_image_size)


class DistroPolicySpec(_Spec):
    action: Action = Field(
        default="deny", description="what a failed rule does unless the rule says otherwise"
    )
    on_unresolved: UnresolvedAction = Field(
        default="warn",
        description="what happens when an image cannot be inspected (its facts cannot be had in time or "
        "at all), or a rule needs a fact or an EOL date nobody knows. allow: admitted and counted as "
        "allowed, with an audit finding; an image that could not be inspected is admitted with a warning "
        "saying why and that the policy allows it. warn: admitted with a warning, counted as a warn "
        "verdict. deny: refused, saying what could not be inspected or is unknown",
    )
    on_no_platform: UnresolvedAction = Field(
        default="warn",
        description="what happens when an image offers none of the platforms that matter: those of the "
        "cluster's nodes (`run --platforms`), or the architecture a pod's nodeSelector or required node "
        "affinity pins (`image offers only linux/arm64; the cluster's nodes are linux/amd64`). allow: "
        "admitted with a warning saying so (an audit finding). warn (the default: a node pool that scales "
        "from zero has no Node yet, and its pods must still be admitted): admitted with a warning. deny: "
        "refused. A single-platform image is judged on its one platform besides",
    )
    controlled_pods: ControlledPods = Field(
        default="warn",
        description="how a pod created by a workload controller is judged: a pod with a controller "
        "owner reference to a ReplicaSet, StatefulSet, DaemonSet, Job or another kind distroguard "
        "checks (and likewise the Job a CronJob starts). warn (the default): while that owner exists "
        "and its pod template names the same image for each of the pod's containers, a failing rule "
        "at most warns (`allowed: pod of ReplicaSet shop/web-7d9...`), because the workload's template "
        "is where the policy is enforced, when it is created or its images change; a date that passes "
        "then never stops a controller from replacing a pod. same-as-policy: judged as a bare pod, "
        "with the policy's actions (a deny rule refuses the replacement pods of a workload admitted "
        "before its date). deny: every failing rule of this policy refuses the pod, whatever its "
        "action (a warn or audit rollout that must already stop replacements). Bare pods, and pods "
        "whose images differ from their owner's template, are always judged as bare pods",
    )
    match: ResourceFilter = Field(
        default_factory=ResourceFilter,
        description="workloads and images the policy covers: every criterion set must hold",
    )
    exclude: ResourceFilter = Field(
        default_factory=ResourceFilter,
        description="workloads and images left out even when matched (namespaces: [kube-system])",
    )
    rules: tuple[Rule, ...] = Field(min_length=1)

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
        seen: set[str] = set()
        for rule in rules:
            if rule.name in seen:
                raise ValueError(f"rule name {rule.name!r} is used twice; rule names must be unique")
            seen.add(rule.name)
        return rules


class PolicyMetadata(BaseModel):
    # The API server adds uid, resourceVersion, managedFields...: ignore what we do not use.
    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_name(value, "policy name")


class DistroPolicy(_Spec):
    """A cluster-scoped policy: which workloads and images it covers, and the rules they must
    pass."""

    api_version: Literal["distroguard.dev/v1alpha1"]
    kind: Literal["DistroPolicy"]
    metadata: PolicyMetadata
    spec: DistroPolicySpec

    @property
    def name(self) -> str:
        return self.metadata.name
