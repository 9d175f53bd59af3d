"""`distroguard.model` exports its names lazily: every name of `__all__` is there, is the object its own
module defines, and the table of homes says the same as the imports type checkers read."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import distroguard.model as model


def type_checking_imports() -> dict[str, str]:
    """name -> module, from the `if TYPE_CHECKING:` block of the package's source."""
    tree = ast.parse(Path(model.__file__).read_text(encoding="utf-8"))
    block = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    return {
        alias.name: node.module
        for node in block.body
        if isinstance(node, ast.ImportFrom) and node.module is not None
        for alias in node.names
    }


def test_the_table_is_all_and_the_type_checking_imports() -> None:
    homes = model._HOMES
    assert sorted(homes) == sorted(model.__all__)
    assert type_checking_imports() == homes


@pytest.mark.parametrize("name", sorted(model.__all__))
def test_each_name_is_its_home_modules_object(name: str) -> None:
    assert getattr(model, name) is getattr(importlib.import_module(model._HOMES[name]), name)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        model.Nothing  # noqa: B018
    assert not hasattr(model, "Nothing")


def test_star_import_and_dir_see_every_name() -> None:
    namespace: dict[str, object] = {}
    exec("from distroguard.model import *", namespace)
    assert set(model.__all__) <= set(namespace)
    assert set(model.__all__) <= set(dir(model))
