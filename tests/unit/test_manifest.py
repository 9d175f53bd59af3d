"""Manifest, index and config parsing: formats, media types, validation, bounds; platform
selection."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distroguard.errors import (
    DigestMismatch,
    DistroguardError,
    PlatformNotFound,
    ScanLimitExceeded,
    SourceError,
    UnsupportedMediaType,
)
from distroguard.model import Platform
from distroguard.registry import manifest as manifest_module
from distroguard.registry import mediatypes as mt
from distroguard.registry.manifest import (
    Descriptor,
    DigestVerifier,
    ImageIndex,
    ImageManifest,
    digest_of,
    is_digest,
    parse_config,
    parse_manifest,
    recognised_platform,
    select_platform,
    verify_digest,
)

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha512:" + "3" * 128
D4 = "sha256:" + "4" * 64


def _desc(
    media_type: str = mt.OCI_LAYER_GZIP, digest: str = D1, size: object = 10, **extra: Any
) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest, "size": size, **extra}


def _manifest(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": _desc(mt.OCI_CONFIG, D2, 100),
        "layers": [_desc(), _desc(mt.OCI_LAYER_ZSTD, D3, 20)],
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def _entry(platform: str | None, digest: str = D1, **annotations: str) -> dict[str, Any]:
    entry = _desc(mt.OCI_MANIFEST, digest, 500)
    if platform is not None:
        os_name, arch, *variant = platform.split("/")
        entry["platform"] = {
            "os": os_name,
            "architecture": arch,
            **({"variant": variant[0]} if variant else {}),
        }
    if annotations:
        entry["annotations"] = annotations
    return entry


def _index(*entries: dict[str, Any], media_type: str = mt.OCI_INDEX) -> ImageIndex:
    body = json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": list(entries)})
    parsed = parse_manifest(media_type, body.encode())
    assert isinstance(parsed, ImageIndex)
    return parsed


def _bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


# ---------------------------------------------------------------------- manifests


def test_oci_manifest() -> None:
    parsed = parse_manifest(mt.OCI_MANIFEST, _bytes(_manifest()))
    assert isinstance(parsed, ImageManifest)
    assert parsed.config == Descriptor(mt.OCI_CONFIG, D2, 100)
    assert [layer.digest for layer in parsed.layers] == [D1, D3]
    assert parsed.layers[1].media_type == mt.OCI_LAYER_ZSTD


def test_docker_manifest_and_manifest_list() -> None:
    body = _manifest(
        mediaType=mt.DOCKER_MANIFEST,
        config=_desc(mt.DOCKER_CONFIG, D2, 5),
        layers=[_desc(mt.DOCKER_LAYER_GZIP)],
    )
    parsed = parse_manifest(mt.DOCKER_MANIFEST, _bytes(body))
    assert isinstance(parsed, ImageManifest)
    assert parsed.media_type == mt.DOCKER_MANIFEST
    index = _index(_entry("linux/amd64"), media_type=mt.DOCKER_MANIFEST_LIST)
    assert index.manifests[0].platform == Platform()


@pytest.mark.parametrize("header", [None, "", "application/json", "text/plain; charset=utf-8"])
def test_generic_content_type_defers_to_the_body(header: str | None) -> None:
    parsed = parse_manifest(header, _bytes(_manifest(mediaType=mt.DOCKER_MANIFEST)))
    assert parsed.media_type == mt.DOCKER_MANIFEST


def test_shape_decides_when_nothing_names_the_type() -> None:
    assert isinstance(parse_manifest(None, _bytes(_manifest(mediaType=None))), ImageManifest)
    index = {"schemaVersion": 2, "manifests": [_entry("linux/amd64")]}
    assert isinstance(parse_manifest("application/json", _bytes(index)), ImageIndex)


def test_content_type_parameters_are_ignored() -> None:
    parsed = parse_manifest(f"{mt.OCI_MANIFEST}; charset=utf-8", _bytes(_manifest()))
    assert parsed.media_type == mt.OCI_MANIFEST


@pytest.mark.parametrize(
    ("header", "body"),
    [
        (mt.DOCKER_SCHEMA1_SIGNED, {"schemaVersion": 1, "name": "x", "fsLayers": []}),
        ("application/json", {"schemaVersion": 1, "name": "x", "fsLayers": []}),
        (None, {"schemaVersion": 1, "mediaType": mt.DOCKER_SCHEMA1}),
    ],
)
def test_schema1_is_refused_with_advice(header: str | None, body: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedMediaType, match=r"schema 1 is deprecated.*push the image again"):
        parse_manifest(header, _bytes(body))


def test_unknown_media_type_is_unsupported() -> None:
    with pytest.raises(UnsupportedMediaType, match=r"media type unexpected value \(40 characters\)"):
        parse_manifest("application/vnd.cncf.helm.config.v1+json", b"{}")
    with pytest.raises(UnsupportedMediaType, match=re.escape(mt.OCI_CONFIG)):  # one we know is named
        parse_manifest(mt.OCI_CONFIG, b"{}")


def test_header_and_body_must_agree() -> None:
    with pytest.raises(SourceError, match=r"served as .*index.* mediaType says .*manifest"):
        parse_manifest(mt.OCI_INDEX, _bytes(_manifest()))


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (_bytes(_manifest(schemaVersion=3)), "schemaVersion: expected 2"),
        (_bytes(_manifest(config=None)), r"manifest.config: missing"),
        (_bytes(_manifest(layers=None)), r"manifest.layers: missing"),
        (_bytes(_manifest(layers={"a": 1})), "layers: expected a list"),
        (_bytes(_manifest(layers=[_desc(size=-1)])), r"layers\[0\].size: must not be negative"),
        (_bytes(_manifest(layers=[_desc(size=True)])), r"layers\[0\].size: must be an integer"),
        (_bytes(_manifest(layers=[_desc(size=1.5)])), r"layers\[0\].size: must be an integer"),
        (_bytes(_manifest(layers=[_desc(digest="sha256:abc")])), r"layers\[0\].digest: invalid"),
        (_bytes(_manifest(layers=[_desc(digest="md5:" + "a" * 32)])), "invalid digest"),
        (_bytes(_manifest(layers=[_desc(digest="sha256:" + "A" * 64)])), "invalid digest"),
        (_bytes(_manifest(layers=[{"digest": D1, "size": 1}])), r"layers\[0\].mediaType: missing"),
        (_bytes(_manifest(layers=["x"])), r"layers\[0\]: expected a descriptor"),
        (_bytes(_manifest(annotations={"a": 1})), r"annotations: expected strings, got int"),
    ],
)
def test_malformed_manifests_name_the_problem(body: bytes, problem: str) -> None:
    with pytest.raises(SourceError, match=problem):
        parse_manifest(mt.OCI_MANIFEST, body)


def test_bad_platform_in_an_index() -> None:
    entry = _entry(None)
    entry["platform"] = {"os": "linux"}
    with pytest.raises(SourceError, match=r"manifests\[0\].platform.architecture: missing"):
        _index(entry)


def test_limits_are_enforced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manifest_module, "MAX_LAYERS", 2)
    monkeypatch.setattr(manifest_module, "MAX_INDEX_ENTRIES", 1)
    parse_manifest(mt.OCI_MANIFEST, _bytes(_manifest()))  # two layers: at the limit
    with pytest.raises(ScanLimitExceeded, match="MAX_LAYERS=2"):
        parse_manifest(mt.OCI_MANIFEST, _bytes(_manifest(layers=[_desc()] * 3)))
    with pytest.raises(ScanLimitExceeded, match="MAX_INDEX_ENTRIES=1"):
        _index(_entry("linux/amd64"), _entry("linux/arm64"))


def test_default_limits() -> None:
    assert manifest_module.MAX_INDEX_ENTRIES == 1_000
    assert manifest_module.MAX_LAYERS == 10_000


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "schemaVersion",
                        "mediaType",
                        "config",
                        "layers",
                        "manifests",
                        "digest",
                        "size",
                        "platform",
                        "os",
                        "architecture",
                        "annotations",
                    ]
                ),
                children,
                max_size=6,
            )
        ),
        max_leaves=20,
    ),
    st.sampled_from([None, mt.OCI_MANIFEST, mt.OCI_INDEX, mt.DOCKER_MANIFEST, "application/json"]),
)
def test_arbitrary_json_only_raises_our_errors(value: Any, header: str | None) -> None:
    with contextlib.suppress(DistroguardError):
        parse_manifest(header, _bytes(value))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_raise_our_errors(body: bytes) -> None:
    with contextlib.suppress(DistroguardError):
        parse_manifest(None, body)
    with contextlib.suppress(DistroguardError):
        parse_config(body)


# ---------------------------------------------------------------------- config, fuzzed

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
_DIFF_ID = st.sampled_from([D1, D2]) | st.builds(
    lambda h: "sha256:" + h, st.text("0123456789abcdef", min_size=64, max_size=64)
)
_HISTORY_ENTRY = st.fixed_dictionaries(
    {},
    optional={
        "created_by": st.text(max_size=30),
        "empty_layer": st.booleans(),
        "comment": st.text(max_size=8),
    },
)
#: Config documents of the right shape: every field optional, every value of the right type.
_WELL_FORMED_CONFIG = st.fixed_dictionaries(
    {},
    optional={
        "os": st.text(max_size=10),
        "architecture": st.text(max_size=10),
        "variant": st.text(max_size=4),
        "config": st.fixed_dictionaries(
            {},
            optional={
                "Env": st.lists(st.text(max_size=30), max_size=6),
                "Labels": st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=4),
                "Cmd": _JSON,
            },
        ),
        "rootfs": st.fixed_dictionaries(
            {"type": st.just("layers")}, optional={"diff_ids": st.lists(_DIFF_ID, max_size=4)}
        ),
        "history": st.lists(_HISTORY_ENTRY, max_size=5),
        "created": st.text(max_size=10),
    },
)


def _damaged(document: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    """`document` with one value, at the top or one level down, replaced by any JSON value."""
    paths = [(key,) for key in document] + [
        (key, inner) for key, value in document.items() if isinstance(value, dict) for inner in value
    ]
    if not paths:
        return document
    path = data.draw(st.sampled_from(paths))
    damaged = json.loads(json.dumps(document))
    target = damaged if len(path) == 1 else damaged[path[0]]
    target[path[-1]] = data.draw(_JSON)
    return damaged


@settings(max_examples=300, deadline=None)
@given(_WELL_FORMED_CONFIG)
def test_well_formed_configs_parse_to_what_they_say(document: dict[str, Any]) -> None:
    config = parse_config(_bytes(document))
    container = document.get("config", {})
    assert config.env == tuple(container.get("Env", ()))
    assert config.labels == container.get("Labels", {})
    assert config.diff_ids == tuple(document.get("rootfs", {}).get("diff_ids", ()))
    assert config.history_created_by == tuple(e.get("created_by", "") for e in document.get("history", ()))
    declared = (document.get("os", ""), document.get("architecture", ""), document.get("variant") or None)
    if recognised_platform(*declared):
        assert (config.os, config.architecture, config.variant) == declared
    else:  # a platform no runtime knows is the registry's own words: read as none declared
        assert (config.os, config.architecture, config.variant) == ("", "", None)


@settings(max_examples=500, deadline=None)
@given(_WELL_FORMED_CONFIG, st.data())
def test_damaged_configs_parse_or_raise_our_errors(document: dict[str, Any], data: st.DataObject) -> None:
    """A config with one value of any type anywhere: parsed into typed fields, or refused with one of our
    errors (never a TypeError, KeyError or AttributeError from a value of the wrong type)."""
    body = _bytes(_damaged(document, data))
    try:
        config = parse_config(body)
    except DistroguardError:
        return
    assert all(isinstance(item, str) for item in config.env)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in config.labels.items())
    assert all(isinstance(item, str) for item in (*config.diff_ids, *config.history_created_by))
    assert all(isinstance(item, str) for item in (config.os, config.architecture))
    assert config.variant is None or isinstance(config.variant, str)


# ---------------------------------------------------------------------- config


def test_config() -> None:
    body = {
        "os": "linux",
        "architecture": "arm64",
        "variant": "v8",
        "config": {"Env": ["PATH=/usr/bin", "PYTHON_VERSION=3.12.1"], "Labels": {"a": "b"}},
        "rootfs": {"type": "layers", "diff_ids": [D1, D2]},
        "history": [{"created_by": "ADD rootfs.tar /"}, {"empty_layer": True}],
    }
    config = parse_config(_bytes(body))
    assert config.env == ("PATH=/usr/bin", "PYTHON_VERSION=3.12.1")
    assert config.labels == {"a": "b"}
    assert config.diff_ids == (D1, D2)
    assert config.history_created_by == ("ADD rootfs.tar /", "")
    assert config.platform == Platform.parse("linux/arm64/v8")


def test_config_with_nulls_and_nothing() -> None:
    config = parse_config(_bytes({"config": {"Env": None, "Labels": None}, "rootfs": None}))
    assert (config.env, config.labels, config.diff_ids) == ((), {}, ())
    assert config.platform is None


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"rootfs": {"diff_ids": ["nope"]}}, r"diff_ids\[0\]: invalid digest"),
        ({"config": {"Env": [1]}}, r"Env\[0\]: expected a string"),
        ({"config": []}, "config: expected an object"),
        ({"history": ["x"]}, r"history\[0\]: expected an object"),
        ({"config": {"Labels": {"a": None}}}, r"Labels: expected strings, got NoneType"),
    ],
)
def test_malformed_configs(body: dict[str, Any], problem: str) -> None:
    with pytest.raises(SourceError, match=problem):
        parse_config(_bytes(body))


# ---------------------------------------------------------------------- platform selection


def test_select_platform_skips_attestations() -> None:
    index = _index(
        _entry("unknown/unknown", D2),
        _entry(
            "linux/amd64",
            D4,
            **{"vnd.docker.reference.type": "attestation-manifest"},
        ),
        _entry("linux/amd64", D1),
    )
    assert select_platform(index, Platform()).digest == D1


def test_select_platform_lists_what_is_there() -> None:
    index = _index(_entry("linux/amd64"), _entry("linux/arm/v7"), _entry(None), _entry("unknown/unknown"))
    with pytest.raises(PlatformNotFound) as caught:
        select_platform(index, Platform.parse("windows/amd64"))
    assert caught.value.available == ["linux/amd64", "linux/arm/v7", "unspecified"]


@pytest.mark.parametrize(
    ("entries", "wanted", "picked"),
    [
        (["linux/arm/v6", "linux/arm/v7"], "linux/arm", 1),
        (["linux/arm/v6", "linux/arm/v7"], "linux/arm/v6", 0),
        (["linux/arm64", "linux/arm64/v8"], "linux/arm64/v8", 0),
        (["linux/arm64/v8"], "linux/arm64", 0),
        (["linux/amd64/v3", "linux/amd64"], "linux/amd64", 1),
    ],
)
def test_variant_matching(entries: list[str], wanted: str, picked: int) -> None:
    digests = [f"sha256:{i:064d}" for i in range(len(entries))]
    index = _index(*(_entry(p, d) for p, d in zip(entries, digests, strict=True)))
    assert select_platform(index, Platform.parse(wanted)).digest == digests[picked]


def test_no_silent_pick_of_an_entry_without_platform() -> None:
    with pytest.raises(PlatformNotFound, match="unspecified"):
        select_platform(_index(_entry(None)), Platform())


# ---------------------------------------------------------------------- digests


def test_digests() -> None:
    assert digest_of(b"") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert digest_of(b"", "sha512").startswith("sha512:cf83e135")
    assert is_digest(D1)
    assert is_digest(D3)
    assert not is_digest("sha256:" + "1" * 63)
    assert not is_digest("latest")
    verify_digest(b"abc", digest_of(b"abc", "sha512"), "x")
    with pytest.raises(DigestMismatch, match=r"thing: content digest sha256:ba78.* expected sha256:1111"):
        verify_digest(b"abc", D1, "thing")


def test_streamed_verification() -> None:
    verifier = DigestVerifier(digest_of(b"hello world"), "blob", 11)
    verifier.update(b"hello ")
    verifier.update(memoryview(b"world"))
    verifier.verify()
    short = DigestVerifier(digest_of(b"hello world"), "blob", 11)
    short.update(b"hello")
    with pytest.raises(SourceError, match="got 5 bytes, the descriptor says 11"):
        short.verify()
    wrong = DigestVerifier(D1, "blob")
    wrong.update(b"x")
    with pytest.raises(DigestMismatch):
        wrong.verify()
