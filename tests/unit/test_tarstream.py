"""The push-style tar reader against archives written by Python's tarfile in every format."""

from __future__ import annotations

import io
import tarfile

import pytest

from distroguard.errors import ScanLimitExceeded, SourceError
from distroguard.scan.tarstream import TarEntry, TarLimits, TarReader


class Recorder:
    def __init__(self, want: str = "") -> None:
        self.want = want
        self.entries: list[TarEntry] = []
        self.data: dict[str, bytes] = {}
        self.ended: list[str] = []

    def on_entry(self, entry: TarEntry) -> bool:
        self.entries.append(entry)
        if self.want and entry.path.startswith(self.want):
            self.data[entry.path] = b""
            return True
        return False

    def on_data(self, chunk: memoryview) -> None:
        self.data[self.entries[-1].path] += bytes(chunk)

    def on_entry_end(self) -> None:
        self.ended.append(self.entries[-1].path)


def archive(fmt: int, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for member in members:
            if isinstance(member, tuple):
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                tf.addfile(info, io.BytesIO(member[1]))
            else:
                tf.addfile(member)
    return buf.getvalue()


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def directory(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info


LONG = "usr/share/" + "deep/" * 40 + "os-release"
MEMBERS: list[tarfile.TarInfo | tuple[str, bytes]] = [
    directory("etc"),
    ("etc/os-release", b'ID=debian\nVERSION_ID="12"\n'),
    link("etc/alias", "os-release"),
    link("etc/hard", "etc/os-release", tarfile.LNKTYPE),
    (LONG, b"x" * 1000),
    ("big", bytes(range(256)) * 100),
    link("l" * 150, "t" * 150),
]


def feed_all(data: bytes, rec: Recorder, chunk: int) -> TarReader:
    reader = TarReader(rec)
    for i in range(0, len(data), chunk):
        reader.feed(data[i : i + chunk])
    reader.close()
    return reader


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
@pytest.mark.parametrize("chunk", [1, 3, 511, 512, 513, 65536])
def test_reads_every_format_in_any_chunking(fmt: int, chunk: int) -> None:
    # ustar cannot hold the long names
    members = MEMBERS if fmt != tarfile.USTAR_FORMAT else MEMBERS[:4] + MEMBERS[5:6]
    data = archive(fmt, members)
    rec = Recorder(want="etc/")
    assert feed_all(data, rec, chunk).ended
    expected = [m.name if isinstance(m, tarfile.TarInfo) else m[0] for m in members]
    assert [e.path.rstrip("/") for e in rec.entries] == expected
    kinds = {e.path.rstrip("/"): e.kind for e in rec.entries}
    assert (kinds["etc"], kinds["etc/alias"], kinds["etc/hard"]) == ("dir", "symlink", "hardlink")
    assert {e.path: e.linkname for e in rec.entries}["etc/hard"] == "etc/os-release"
    assert rec.data["etc/os-release"] == b'ID=debian\nVERSION_ID="12"\n'
    assert rec.ended == ["etc/", "etc/os-release", "etc/alias", "etc/hard"]
    assert rec.data["etc/alias"] == rec.data["etc/hard"] == b""  # links carry no data
    skipped = Recorder()
    feed_all(data, skipped, chunk)
    assert skipped.data == {}
    assert len(skipped.entries) == len(members)


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_names_and_link_targets(fmt: int) -> None:
    rec = Recorder(want="usr/")
    reader = TarReader(rec)
    reader.feed(archive(fmt, MEMBERS))
    reader.close()
    assert rec.data[LONG] == b"x" * 1000
    last = rec.entries[-1]
    assert (last.path, last.linkname) == ("l" * 150, "t" * 150)


def test_pax_records_with_non_ascii_names() -> None:
    data = archive(tarfile.PAX_FORMAT, [("opt/ünïcode/ø" * 20, b"1")])
    rec = Recorder()
    reader = TarReader(rec)
    reader.feed(data)
    assert rec.entries[0].path == "opt/ünïcode/ø" * 20


def test_truncated_inside_an_entry_is_an_error() -> None:
    data = archive(tarfile.GNU_FORMAT, [("file", b"y" * 5000)])
    reader = TarReader(Recorder())
    reader.feed(data[:2048])
    with pytest.raises(SourceError, match="truncated"):
        reader.close()


def test_garbage_is_not_taken_for_a_tar() -> None:
    reader = TarReader(Recorder())
    with pytest.raises(SourceError, match="corrupt tar header"):
        reader.feed(b"this is not a tar archive at all" * 20)


def test_entry_count_is_bounded() -> None:
    data = archive(tarfile.GNU_FORMAT, [(f"f{i}", b"") for i in range(50)])
    reader = TarReader(Recorder(), TarLimits(max_entries=10))
    with pytest.raises(ScanLimitExceeded, match="max_tar_entries=10"):
        reader.feed(data)


def test_metadata_record_is_bounded() -> None:
    data = archive(tarfile.PAX_FORMAT, [("p" * 5000, b"")])
    reader = TarReader(Recorder(), TarLimits(max_meta_bytes=1024))
    with pytest.raises(ScanLimitExceeded, match="max_tar_meta_bytes"):
        reader.feed(data)


def test_stops_at_end_of_archive_and_ignores_padding() -> None:
    data = archive(tarfile.GNU_FORMAT, [("a", b"1")]) + b"\x00" * 10_000 + b"junk after the end"
    rec = Recorder()
    reader = TarReader(rec)
    reader.feed(data)
    reader.close()
    assert [e.path for e in rec.entries] == ["a"]
