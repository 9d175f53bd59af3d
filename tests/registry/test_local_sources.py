"""`oci:` layouts and `docker-archive:` tarballs as image sources, checked against the registry's
view."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from distroguard.errors import DigestMismatch, LocalImageError, PlatformNotFound
from distroguard.model import Platform
from distroguard.registry.archive import DockerArchiveSource
from distroguard.registry.client import RegistryClient
from distroguard.registry.contract import ImageSource, ResolvedImage
from distroguard.registry.layout import OciLayoutSource
from distroguard.registry.source import RegistrySource, open_source
from support.images import (
    BuiltImage,
    File,
    ImageBuilder,
    Symlink,
    build_index,
    push,
    write_docker_archive,
    write_oci_layout,
)
from support.registry_server import RegistryServer


def _image(platform: str = "linux/amd64", distro: str = "debian") -> BuiltImage:
    return (
        ImageBuilder(platform=platform)
        .layer(
            {
                "usr/lib/os-release": f"ID={distro}\n",
                "etc/os-release": Symlink("../usr/lib/os-release"),
            }
        )
        .layer({"app/main.py": File(b"print('hi')\n" * 100)}, "zstd")
        .env("PYTHON_VERSION=3.12.1")
        .build()
    )


async def _layers(source: ImageSource, resolved: ResolvedImage) -> list[bytes]:
    out = []
    for desc in resolved.manifest.layers:
        out.append(b"".join([chunk async for chunk in source.open_blob(desc)]))
    return out


# ---------------------------------------------------------------------- oci layout


async def test_oci_layout_single_image(tmp_path: Path) -> None:
    image = _image()
    layout = write_oci_layout(tmp_path / "layout", image)
    async with RegistryClient() as client:
        source = open_source(f"oci:{layout}", client=client)
        resolved = await source.resolve(Platform())
        config = await source.read_blob(resolved.manifest.config, max_bytes=1 << 20)
        layers = await _layers(source, resolved)
    assert source.description == f"oci:{layout}"
    assert resolved.digest == resolved.manifest_digest == image.digest
    assert config == image.config
    assert layers == [layer.data for layer in image.layers]
    assert source.meter.total >= sum(layer.size for layer in image.layers)


async def test_oci_layout_with_an_index_and_names(tmp_path: Path) -> None:
    amd, arm = _image(), _image("linux/arm64/v8", "alpine")
    other = _image(distro="ubuntu")
    index = build_index([amd, arm], attestations=True)
    layout = write_oci_layout(tmp_path / "layout", index, other, names=["multi", "other"])
    resolved = await OciLayoutSource(f"{layout}:multi").resolve(Platform.parse("linux/arm64"))
    assert (resolved.digest, resolved.manifest_digest) == (index.digest, arm.digest)
    assert resolved.platform == Platform.parse("linux/arm64/v8")
    resolved = await OciLayoutSource(f"{layout}:other").resolve(Platform())
    assert resolved.manifest_digest == other.digest
    with pytest.raises(LocalImageError, match=r"holds 2 images; name one .* \(names: multi, other\)"):
        await OciLayoutSource(str(layout)).resolve(Platform())
    with pytest.raises(LocalImageError, match="no image named 'nope'"):
        await OciLayoutSource(f"{layout}:nope").resolve(Platform())
    with pytest.raises(PlatformNotFound, match="linux/arm64/v8"):
        await OciLayoutSource(f"{layout}:multi").resolve(Platform.parse("linux/ppc64le"))


async def test_oci_layout_index_json_with_platform_entries(tmp_path: Path) -> None:
    amd, arm = _image(), _image("linux/arm64")
    layout = write_oci_layout(tmp_path / "layout", amd, arm, platforms=True)
    resolved = await OciLayoutSource(str(layout)).resolve(Platform.parse("linux/arm64"))
    assert resolved.manifest_digest == arm.digest


async def test_oci_layout_problems_are_named(tmp_path: Path) -> None:
    with pytest.raises(LocalImageError, match="no such OCI layout directory"):
        await OciLayoutSource(str(tmp_path / "missing")).resolve(Platform())
    (tmp_path / "empty").mkdir()
    with pytest.raises(LocalImageError, match="no oci-layout file"):
        await OciLayoutSource(str(tmp_path / "empty")).resolve(Platform())


async def test_corrupted_blob_in_a_layout_is_detected(tmp_path: Path) -> None:
    image = _image()
    layout = write_oci_layout(tmp_path / "layout", image)
    layer = image.layers[1]
    path = layout / "blobs" / "sha256" / layer.digest.removeprefix("sha256:")
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    source = OciLayoutSource(str(layout))
    resolved = await source.resolve(Platform())
    with pytest.raises(DigestMismatch, match=layer.digest):
        await _layers(source, resolved)
    path.write_bytes(bytes(data[:-1]))  # a truncated blob is refused before reading
    with pytest.raises(Exception, match="the file has"):
        await source.read_blob(resolved.manifest.layers[1], max_bytes=1 << 20)


# ---------------------------------------------------------------------- docker-archive


@pytest.mark.parametrize("compressed", [False, True])
async def test_legacy_docker_archive(tmp_path: Path, compressed: bool) -> None:
    image = _image()
    archive = write_docker_archive(
        tmp_path / "image.tar", image, repo_tags=["app:1.0"], compressed_layers=compressed
    )
    source = DockerArchiveSource(str(archive))
    resolved = await source.resolve(Platform())
    # No manifest in a legacy archive: the config digest (Docker's image ID) names the image.
    assert resolved.digest == resolved.manifest_digest == image.config_digest
    assert await source.read_blob(resolved.manifest.config, max_bytes=1 << 20) == image.config
    layers = await _layers(source, resolved)
    expected = [layer.data if compressed else layer.tar for layer in image.layers]
    assert layers == expected
    if not compressed:
        assert [d.digest for d in resolved.manifest.layers] == [layer.diff_id for layer in image.layers]


async def test_docker_archive_with_an_oci_layout_inside(tmp_path: Path) -> None:
    image, other = _image(), _image(distro="ubuntu")
    archive = write_docker_archive(
        tmp_path / "image.tar",
        image,
        repo_tags=["app:1.0"],
        oci_layout=True,
        extra_images=[(other, ["other:2"])],
    )
    source = DockerArchiveSource(f"{archive}:app:1.0")
    resolved = await source.resolve(Platform())
    assert resolved.manifest_digest == image.digest  # the real manifest digest is kept
    assert await _layers(source, resolved) == [layer.data for layer in image.layers]
    resolved = await DockerArchiveSource(f"{archive}:other:2").resolve(Platform())
    assert resolved.manifest_digest == other.digest


async def test_docker_archive_problems_are_named(tmp_path: Path) -> None:
    image = _image("linux/arm64")
    archive = write_docker_archive(tmp_path / "image.tar", image, repo_tags=["app:1.0"])
    with pytest.raises(PlatformNotFound, match=r"available: linux/arm64"):
        await DockerArchiveSource(str(archive)).resolve(Platform())
    with pytest.raises(LocalImageError, match=r"no image tagged 'app:2.0' \(tags: app:1.0\)"):
        await DockerArchiveSource(f"{archive}:app:2.0").resolve(Platform())
    zipped = tmp_path / "image.tar.gz"
    zipped.write_bytes(gzip.compress(archive.read_bytes()))
    with pytest.raises(LocalImageError, match="compressed; decompress it first"):
        await DockerArchiveSource(str(zipped)).resolve(Platform())
    with pytest.raises(LocalImageError, match="no such docker-archive file"):
        await DockerArchiveSource(str(tmp_path / "missing.tar")).resolve(Platform())


# ---------------------------------------------------------------------- same image, three sources


@pytest.mark.registry
async def test_registry_layout_and_archive_agree(registry: RegistryServer, repo: str, tmp_path: Path) -> None:
    index = build_index([_image(), _image("linux/arm64")], attestations=True)
    await push(registry.url, repo, "1.0", index)
    layout = write_oci_layout(tmp_path / "layout", index, names=["1.0"])
    archive = write_docker_archive(tmp_path / "a.tar", index.images[1], oci_layout=True)
    wanted = Platform.parse("linux/arm64")
    async with RegistryClient() as client:
        from_registry = open_source(f"{registry.address}/{repo}:1.0", client=client)
        assert isinstance(from_registry, RegistrySource)
        assert from_registry.description == f"{registry.address}/{repo}:1.0"
        from_layout = open_source(f"oci:{layout}:1.0", client=client)
        from_archive = open_source(f"docker-archive:{archive}", client=client)
        results = [await s.resolve(wanted) for s in (from_registry, from_layout, from_archive)]
        layers = [
            await _layers(s, r)
            for s, r in zip((from_registry, from_layout, from_archive), results, strict=True)
        ]
    assert {r.manifest_digest for r in results} == {index.images[1].digest}
    assert results[0].digest == results[1].digest == index.digest
    assert layers[0] == layers[1] == layers[2]
