"""`check`'s table output: plain whole lines where colours cannot show (no rich), styled through rich where
they can; an image's text is never read as rich markup either way."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from distroguard.cli.render import print_lines

LINES = [
    (
        ("DENY", "bold red"),
        ("  registry.local/app:[bold]x[/bold]  (linux/amd64: alpine 3.19, musl 1.2.4)", None),
    ),
    (("  ", None), ("skip", "cyan"), ("  no-musl/no-musl: " + "x" * 150, None)),
]


def test_without_colours_each_line_is_plain_and_whole(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    print_lines(LINES)
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "DENY  registry.local/app:[bold]x[/bold]  (linux/amd64: alpine 3.19, musl 1.2.4)",
        "  skip  no-musl/no-musl: " + "x" * 150,
    ]


def test_without_colours_rich_is_not_imported() -> None:
    code = (
        "import sys\n"
        "from distroguard.cli.render import print_lines\n"
        "print_lines([(('ALLOW', 'green'), ('  image', None))])\n"
        "assert 'rich' not in sys.modules, sorted(m for m in sys.modules if m.startswith('rich'))\n"
    )
    env = {name: value for name, value in os.environ.items() if name != "FORCE_COLOR"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ALLOW  image\n"


def test_with_colours_the_styles_show_and_markup_is_text(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    print_lines(LINES[:1])
    out = capsys.readouterr().out
    assert "\x1b[1;31mDENY\x1b[0m" in out
    assert "[bold]x[/bold]" in out
