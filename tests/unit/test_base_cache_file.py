"""The CLI's base-image file is replaced whole, only when what it says changes, and never leaves a
temporary file behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distroguard.cli.basecache import load_bases, save_bases
from distroguard.resolver.bases import KnownBases

KEY_A = "a" * 64
KEY_B = "b" * 64


def known(*keys: str) -> KnownBases:
    bases = KnownBases()
    for key in keys:
        bases.learn_key(key, f"example.com/{key[0]}:1", None)
    return bases


def test_a_saved_file_loads_back_with_nothing_left_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "bases.json"
    save_bases(known(KEY_A, KEY_B), path)
    assert load_bases(path).entries() == known(KEY_A, KEY_B).entries()
    assert sorted(p.name for p in path.parent.iterdir()) == ["bases.json"]
    assert json.loads(path.read_text())["chains"][-1][0] == KEY_B


def test_a_file_that_already_says_the_same_is_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "bases.json"
    save_bases(known(KEY_A, KEY_B), path)
    before = path.stat()
    save_bases(known(KEY_A, KEY_B), path)
    assert path.stat().st_ino == before.st_ino  # replaced files get a new inode
    save_bases(known(KEY_B, KEY_A), path)  # the same chains, another order (the newest is kept last)
    assert path.stat().st_ino != before.st_ino
    assert [key for key, _, _ in load_bases(path).entries()] == [KEY_B, KEY_A]


def test_an_unreadable_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "bases.json"
    path.write_bytes(b"\xff not json")
    save_bases(known(KEY_A), path)
    assert [key for key, _, _ in load_bases(path).entries()] == [KEY_A]


def test_a_file_that_cannot_be_written_costs_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    save_bases(known(KEY_A), blocker / "bases.json")
    assert "was not written" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-directory"]
