"""What a value parsed from JSON is, told apart at the speed the hot path needs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard


def is_object(value: object) -> TypeGuard[Mapping[str, Any]]:
    """A JSON object. Parsed JSON gives a dict, told apart at once; a caller may pass any mapping (an ABC
    check, several times the cost, made only for what is not a dict)."""
    return type(value) is dict or isinstance(value, Mapping)
