"""Streaming collectors: what each capture rule keeps of a file that arrives in pieces."""

from __future__ import annotations

import re

import pytest

from distroguard.errors import ScanLimitExceeded
from distroguard.scan.collect import KeepCollector, SearchCollector, StanzaCollector

DPKG = b"""Package: base-files
Version: 12.4

Package: libc6
Status: install ok installed
Version: 2.36-9+deb12u4

Package: zlib1g
Version: 1:1.2.13
"""


def feed(collector: KeepCollector | SearchCollector | StanzaCollector, data: bytes, chunk: int) -> None:
    for i in range(0, len(data), chunk):
        collector.add(memoryview(data[i : i + chunk]))


@pytest.mark.parametrize("chunk", [1, 2, 5, 64, 4096])
def test_search_waits_for_a_match_that_could_still_grow(chunk: int) -> None:
    collector = SearchCollector(re.compile(rb"version (\d+\.\d+)"), 32)
    feed(collector, b"junk" * 50 + b"stable release version 2.36" + b"\x00more", chunk)
    assert collector.result() == b"version 2.36"


def test_search_match_at_the_very_end_of_the_file() -> None:
    collector = SearchCollector(re.compile(rb"BusyBox v(\d+\.\d+\.\d+)"), 32)
    feed(collector, b"xx BusyBox v1.36.1", 3)
    assert collector.result() == b"BusyBox v1.36.1"


def test_search_without_match_keeps_nothing() -> None:
    collector = SearchCollector(re.compile(rb"needle"), 16)
    feed(collector, b"hay" * 10_000, 100)
    assert collector.result() is None


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_stanzas_keep_only_wanted_records(chunk: int) -> None:
    collector = StanzaCollector("/var/lib/dpkg/status", b"Package:", frozenset({b"libc6"}), 4096)
    feed(collector, DPKG, chunk)
    assert collector.result() == (b"Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u4\n")


def test_stanzas_without_a_wanted_record_are_empty_not_none() -> None:
    collector = StanzaCollector("/lib/apk/db/installed", b"P:", frozenset({b"musl"}), 4096)
    feed(collector, b"P:busybox\nV:1.36\n\nP:zlib\nV:1.3\n", 5)
    assert collector.result() == b""


def test_an_oversized_unwanted_stanza_is_dropped() -> None:
    collector = StanzaCollector("/var/lib/dpkg/status", b"Package:", frozenset({b"libc6"}), 200)
    big = b"Package: huge\nDescription: " + b"x" * 10_000 + b"\n\n"
    feed(collector, big + DPKG, 64)
    assert b"Package: libc6" in collector.result()


def test_an_oversized_wanted_stanza_stops_the_scan() -> None:
    collector = StanzaCollector("/var/lib/dpkg/status", b"Package:", frozenset({b"libc6"}), 200)
    big = b"Package: libc6\nDescription: " + b"x" * 10_000 + b"\n\n"
    with pytest.raises(ScanLimitExceeded, match=r"max_stanza_bytes=200 exceeded \(a wanted record in"):
        feed(collector, big + DPKG, 64)


def test_repeated_wanted_stanzas_are_kept_once() -> None:
    collector = StanzaCollector("/lib/apk/db/installed", b"P:", frozenset({b"musl"}), 4096)
    feed(collector, b"P:musl\nV:1.2.4-r2\n\n" * 10_000, 4096)
    assert collector.result() == b"P:musl\nV:1.2.4-r2\n"


def test_keep_refuses_a_file_over_its_bound() -> None:
    collector = KeepCollector("/etc/os-release", 100)
    with pytest.raises(ScanLimitExceeded, match=r"max_file_bytes=100 exceeded \(/etc/os-release is larger\)"):
        feed(collector, b"A" * 1000, 64)
