"""Turn pydantic's validation errors on a policy into lines a person can act on.

Each line names the field the way it is written in YAML (`spec.rules[0] (no-musl).denyLibc[0]`) and
says what is allowed there: the allowed values, or for an unknown field the fields that exist at
that place.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from distroguard.errors import InvalidException, InvalidPolicy
from distroguard.model.exception import DistroPolicyException
from distroguard.model.policy import DistroPolicy, DistroSelector


def parse_policy(data: object, source: str) -> DistroPolicy:
    """Validate one policy document; raise `InvalidPolicy` listing every problem."""
    if not isinstance(data, Mapping):
        raise InvalidPolicy(source, [f"expected a DistroPolicy object, got {type(data).__name__}"])
    try:
        return DistroPolicy.model_validate(data)
    except ValidationError as exc:
        raise InvalidPolicy(source, describe_errors(exc, data)) from None


def parse_exception(data: object, source: str) -> DistroPolicyException:
    """Validate one DistroPolicyException document; raise `InvalidException` listing every problem."""
    if not isinstance(data, Mapping):
        got = type(data).__name__
        raise InvalidException(source, [f"expected a DistroPolicyException object, got {got}"])
    try:
        return DistroPolicyException.model_validate(data)
    except ValidationError as exc:
        raise InvalidException(source, describe_errors(exc, data, DistroPolicyException)) from None


def describe_errors(exc: ValidationError, data: object, root: type[BaseModel] = DistroPolicy) -> list[str]:
    errors = exc.errors(include_url=False)
    # A list whose items failed also reports "too short" (0 valid items): noise once the items are
    # named.
    failed = {err["loc"][:n] for err in errors for n in range(len(err["loc"]))}
    return [
        _line(err, data, root) for err in errors if not (err["type"] == "too_short" and err["loc"] in failed)
    ]


def _line(err: ErrorDetails, data: object, root: type[BaseModel]) -> str:
    path, parent, here = _path(err["loc"], data, root)
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"{path}: unknown field{_allowed_fields(err['loc'][-1], parent)}"
    if kind == "missing":
        return f"{path}: required field is missing"
    if kind == "model_type" and here is DistroSelector:
        return (
            f"{path}: expected a distribution ID such as 'alpine', "
            "or {id, versions, minVersion, maxVersion}"
        )
    if kind == "too_short":
        return f"{path}: needs at least {err.get('ctx', {}).get('min_length', 1)} entry"
    message = err["msg"].removeprefix("Value error, ")
    if kind == "string_type" and isinstance(err["input"], int | float):
        return (
            f"{path}: expected text, got the number {err['input']!r}: quote versions in YAML, "
            'e.g. "22.04" (unquoted, 22.10 reads as the number 22.1)'
        )
    if kind in (
        "literal_error",
        "string_type",
        "int_type",
        "bool_type",
        "int_parsing",
        "bool_parsing",
    ):
        message += f" (got {err['input']!r})"
    return f"{path}: {message}"


def _allowed_fields(unknown: object, model: type[BaseModel] | None) -> str:
    if model is None:
        return ""
    names = [field.alias or name for name, field in model.model_fields.items()]
    close = difflib.get_close_matches(str(unknown), names, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"{hint}; allowed here: {', '.join(names)}"


def _path(
    loc: tuple[int | str, ...], data: object, root: type[BaseModel]
) -> tuple[str, type[BaseModel] | None, type[BaseModel] | None]:
    """The YAML path of `loc`, the model holding its last field (for "allowed fields"), the model at
    it."""
    text = ""
    model: type[BaseModel] | None = root
    holder: type[BaseModel] | None = root
    node: object = data
    in_mapping = False
    for item in loc:
        node = _child(node, item)
        if isinstance(item, int):
            text += f"[{item}]"
            name = node.get("name") if isinstance(node, Mapping) else None
            if text.endswith("]") and ".rules[" in f".{text}" and isinstance(name, str):
                text += f" ({name})"
            continue
        fields = {f.alias or n: f for n, f in model.model_fields.items()} if model else {}
        if item in fields:
            holder = model
            text += f".{item}" if text else item
            annotation = fields[item].annotation
            model = _inner_model(annotation)
            in_mapping = _is_mapping(annotation)
        elif in_mapping:
            text += f"[{item!r}]"
            in_mapping = False
        else:
            # A union member tag ('int', 'str') or the unknown key itself (extra_forbidden).
            if item not in ("int", "str") and not item.startswith("function-"):
                holder = model
                text += f".{item}" if text else item
    return text or "(document)", holder, model


def _child(node: object, key: int | str) -> object:
    if isinstance(key, int) and isinstance(node, Sequence) and not isinstance(node, str):
        return node[key] if 0 <= key < len(node) else None
    if isinstance(node, Mapping):
        return node.get(key)
    return None


def _members(annotation: Any) -> tuple[Any, ...]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return tuple(m for arg in typing.get_args(annotation) for m in _members(arg))
    if origin in (tuple, list):
        return tuple(m for arg in typing.get_args(annotation) if arg is not Ellipsis for m in _members(arg))
    return (annotation,)


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member
    return None


def _is_mapping(annotation: Any) -> bool:
    return any(typing.get_origin(m) is dict for m in _members(annotation))
