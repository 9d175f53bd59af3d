"""`parse_os_release`: the shell-style `KEY=value` format of os-release(5) and lsb-release."""

from __future__ import annotations

import pytest

from distroguard.scan.osrelease import parse_os_release


@pytest.mark.parametrize(
    ("line", "value"),
    [
        (b"ID=debian", "debian"),
        (b'ID="debian"', "debian"),
        (b"ID='debian'", "debian"),
        (b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"', "Debian GNU/Linux 12 (bookworm)"),
        (b"NAME='single quotes keep \\ and \" literally'", 'single quotes keep \\ and " literally'),
        (b'NAME="escaped \\" quote"', 'escaped " quote'),
        (b'NAME="escaped \\\\ backslash"', "escaped \\ backslash"),
        (b'NAME="dollar \\$HOME and \\`tick\\`"', "dollar $HOME and `tick`"),
        (b'NAME="other \\n escapes stay"', "other \\n escapes stay"),
        (b"NAME=unquoted\\ space", "unquoted space"),
        (b"NAME=con\"cat\"'en'ated", "concatenated"),
        (b'VERSION="15.1 "', "15.1 "),
        (b'VERSION_CODENAME=""', ""),
        (b"ID=debian # a comment after the value", "debian"),
        (b"ID=foo#bar", "foo#bar"),
        (b'NAME="unterminated', "unterminated"),
        (b"NAME='unterminated", "unterminated"),
        (b"ID=", ""),
        (b"ID=a=b", "a=b"),
    ],
)
def test_values(line: bytes, value: str) -> None:
    key = line.split(b"=", 1)[0].decode()
    assert parse_os_release(line + b"\n") == {key: value}


def test_comments_blank_lines_and_indentation() -> None:
    content = b"""
# a comment
   # an indented comment

    ID=vyos
\tVERSION_ID="1.4"
        \n"""
    assert parse_os_release(content) == {"ID": "vyos", "VERSION_ID": "1.4"}


def test_crlf_line_endings() -> None:
    content = b'PRETTY_NAME="Debian GNU/Linux 8 (jessie)"\r\nID=debian\r\nVERSION_ID="8"\r\n'
    assert parse_os_release(content) == {
        "PRETTY_NAME": "Debian GNU/Linux 8 (jessie)",
        "ID": "debian",
        "VERSION_ID": "8",
    }


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    fields = parse_os_release(b'NAME="Caf\xe9 Linux"\nID=cafe\n')
    assert fields == {"NAME": "Caf\ufffd Linux", "ID": "cafe"}


def test_utf8_and_a_byte_order_mark() -> None:
    name = "Fedora 19 (Schr\u00f6dinger\u2019s Cat)"
    content = f'\ufeffNAME="{name}"\nID=fedora\n'.encode()
    assert parse_os_release(content) == {"NAME": name, "ID": "fedora"}


@pytest.mark.parametrize("content", [b"", b"\n\n", b"# only a comment\n", b"\x00\x00"])
def test_empty(content: bytes) -> None:
    assert parse_os_release(content) == {}


@pytest.mark.parametrize(
    "line",
    [
        b"no equals sign here",
        b"export ID=debian",
        b"ID = debian",
        b"1ID=debian",
        b"=debian",
        b"MY-KEY=value",
    ],
)
def test_lines_that_are_not_assignments_are_ignored(line: bytes) -> None:
    assert parse_os_release(line + b"\nID=kept\n") == {"ID": "kept"}


def test_a_later_assignment_wins() -> None:
    assert parse_os_release(b"ID=first\nID=second\n") == {"ID": "second"}


def test_no_trailing_newline() -> None:
    assert parse_os_release(b"ID=alpine\nVERSION_ID=3.22.0") == {
        "ID": "alpine",
        "VERSION_ID": "3.22.0",
    }


def test_commented_out_assignment() -> None:
    content = b'NAME="openSUSE Tumbleweed"\n# VERSION="20220412"\nID="opensuse-tumbleweed"\n'
    assert "VERSION" not in parse_os_release(content)
