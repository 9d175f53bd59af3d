"""Image references: the distribution grammar, Docker's normalisation, helpful error messages."""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from distroguard.errors import InvalidReference
from distroguard.model import ImageRef

D256 = "sha256:" + "0123456789abcdef" * 4
D512 = "sha512:" + "fedcba9876543210" * 8

Parts = tuple[str, str, str | None, str | None]


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("python", ("docker.io", "library/python", "latest", None)),
        ("python:3.12-slim", ("docker.io", "library/python", "3.12-slim", None)),
        ("library/python", ("docker.io", "library/python", "latest", None)),
        ("user/repo", ("docker.io", "user/repo", "latest", None)),
        ("docker.io/python", ("docker.io", "library/python", "latest", None)),
        ("index.docker.io/user/repo:v1", ("docker.io", "user/repo", "v1", None)),
        ("registry-1.docker.io/library/python:3", ("docker.io", "library/python", "3", None)),
        (
            f"docker.io/library/python:3.12-slim@{D256}",
            ("docker.io", "library/python", "3.12-slim", D256),
        ),
        (f"python@{D256}", ("docker.io", "library/python", None, D256)),
        ("localhost/x", ("localhost", "x", "latest", None)),
        ("localhost:5000/x", ("localhost:5000", "x", "latest", None)),
        ("127.0.0.1:5000/a/b:t", ("127.0.0.1:5000", "a/b", "t", None)),
        (f"[::1]:5000/a@{D256}", ("[::1]:5000", "a", None, D256)),
        ("[2001:db8::1]/x", ("[2001:db8::1]", "x", "latest", None)),
        ("[2001:DB8:0:0:0:0:0:1]:443/x:y", ("[2001:DB8:0:0:0:0:0:1]:443", "x", "y", None)),
        ("a/b/c/d", ("docker.io", "a/b/c/d", "latest", None)),
        ("registry:5000/ns/repo:tag@" + D256, ("registry:5000", "ns/repo", "tag", D256)),
        (f"example.com:443/team/app@{D512}", ("example.com:443", "team/app", None, D512)),
        ("ghcr.io/org/app:v1.2.3", ("ghcr.io", "org/app", "v1.2.3", None)),
        ("registry.k8s.io/pause:3.9", ("registry.k8s.io", "pause", "3.9", None)),
        (
            "gcr.io/distroless/python3-debian12:nonroot",
            ("gcr.io", "distroless/python3-debian12", "nonroot", None),
        ),
        (
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:latest",
            ("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "app", "latest", None),
        ),
        (
            "my-reg.local/a__b/c--d/e.f_g:RC_1.0-x",
            ("my-reg.local", "a__b/c--d/e.f_g", "RC_1.0-x", None),
        ),
        ("Example.COM/x", ("Example.COM", "x", "latest", None)),  # hosts keep their spelling
        ("a-b---c/x_y:_t", ("docker.io", "a-b---c/x_y", "_t", None)),
        # Without a '/', "localhost:5000" is a name and a tag, exactly as Docker reads it.
        ("localhost:5000", ("docker.io", "library/localhost", "5000", None)),
        ("localhost/library/x", ("localhost", "library/x", "latest", None)),
        ("x:" + "a" * 128, ("docker.io", "library/x", "a" * 128, None)),
        # Exactly 255 characters once normalised, the most a name may have.
        ("docker.io/" + "a" * 237, ("docker.io", "library/" + "a" * 237, "latest", None)),
        ("e.io/" + "a/" * 124 + "ab", ("e.io", "a/" * 124 + "ab", "latest", None)),
    ],
)
def test_valid_references(text: str, parts: Parts) -> None:
    ref = ImageRef.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == parts
    assert ImageRef.parse(str(ref)) == ref


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "the reference is empty"),
        (" python", "whitespace"),
        ("python :3", "whitespace"),
        ("py\tthon", "whitespace"),
        ("python\n", "whitespace"),
        ("Python", "repository name must be lowercase"),
        ("user/Repo:v1", "repository name must be lowercase"),
        ("Foo/bar", "repository name must be lowercase"),
        ("a//b", "empty path component"),
        ("a/", "empty path component"),
        ("/a", "empty path component"),
        ("example.com/", "the repository name is empty"),
        (":tag", "the repository name is empty"),
        (f"@{D256}", "the repository name is empty"),
        ("python:", "nothing after ':': expected a tag"),
        ("python@", "nothing after '@'"),
        ("python:.hidden", "invalid tag"),
        ("python:-x", "invalid tag"),
        ("python:a+b", "invalid tag"),
        ("python:t\u00e4g", "invalid tag"),
        ("python:" + "a" * 129, "at most 128"),
        ("python@md5:abc", "unsupported digest algorithm 'md5'"),
        ("python@sha384:" + "a" * 96, "unsupported digest algorithm"),
        ("python@sha256:abc", "sha256 digest must have 64 hex digits, not 3"),
        ("python@sha512:" + "a" * 64, "sha512 digest must have 128 hex digits"),
        ("python@sha256:" + "A" * 64, "lowercase hex"),
        ("python@sha256:" + "g" * 64, "lowercase hex"),
        ("python@sha256", "malformed digest"),
        ("python@:abc", "malformed digest"),
        ("python@1sha:abc", "malformed digest"),
        (f"python@{D256}@x", "more than one '@'"),
        ("a" * 250, "at most 255"),  # docker.io/library/ makes it too long
        ("e.io/" + "a" * 251, "at most 255"),
        ("host:99999/x", "invalid port '99999'"),
        ("host:0/x", "invalid port"),
        ("host:/x", "invalid port ''"),
        ("host:5a/x", "invalid port"),
        ("[::1]:/x", "invalid port"),
        ("exa_mple.com/x", "invalid registry host"),
        ("-example.com/x", "invalid registry host"),
        ("example-.com/x", "invalid registry host"),
        ("example..com/x", "invalid registry host"),
        ("[::1/x", "without a closing ']'"),
        ("[zz]/x", "not an IPv6 address"),
        ("[1:2:3]/x", "not an IPv6 address"),
        ("[fe80::1%eth0]/x", "not an IPv6 address"),
        ("[::ffff:1.2.3.4]/x", "not an IPv6 address"),
        ("[::1]x/y", "expected :port"),
        ("::1/x", "the registry host is empty"),
        ("-a", "invalid path component '-a'"),
        ("a_", "invalid path component 'a_'"),
        ("a-", "invalid path component"),
        ("a..b", "invalid path component 'a..b'"),
        ("a___b", "invalid path component"),
        ("ns/.a", "invalid path component '.a'"),
        ("caf\u00e9", "invalid path component"),
        ("x:5000:t", "unexpected ':'"),
        ("0123456789abcdef" * 4, "image ID"),
    ],
)
def test_invalid_references(text: str, fragment: str) -> None:
    with pytest.raises(InvalidReference) as caught:
        ImageRef.parse(text)
    assert fragment in caught.value.problem
    assert caught.value.reference == text
    assert str(caught.value).startswith(f"invalid image reference {text!r}: ")


def test_invalid_reference_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="must be lowercase"):
        ImageRef.parse("UPPER")


def test_lookup_and_with_digest() -> None:
    ref = ImageRef.parse("python:3.12")
    assert ref.lookup == "3.12"
    pinned = ref.with_digest(D256)
    assert pinned.lookup == D256
    assert str(pinned) == f"docker.io/library/python:3.12@{D256}"
    assert ImageRef.parse(str(pinned)) == pinned


# Strategies that build references from the grammar, each with the parts it must parse into.

_LOWER_ALNUM = string.ascii_lowercase + string.digits
_alnum = st.text(_LOWER_ALNUM, min_size=1, max_size=6)
_separator = st.sampled_from([".", "_", "__", "-", "--", "---"])
_component = st.builds(
    lambda head, tail: head + "".join(sep + part for sep, part in tail),
    _alnum,
    st.lists(st.tuples(_separator, _alnum), max_size=3),
)
_repository = st.lists(_component, min_size=1, max_size=4).map("/".join)
_label = st.from_regex(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?", fullmatch=True)
_port = st.integers(1, 65535).map(lambda port: f":{port}")
_ipv6 = (
    st.ip_addresses(v=6)
    .flatmap(lambda address: st.sampled_from([address.compressed, address.exploded]))
    .filter(lambda text: "." not in text)
)  # dotted IPv4 tails are outside the grammar
_host = st.one_of(
    st.builds(str.__add__, st.lists(_label, min_size=2, max_size=4).map(".".join), _port | st.just("")),
    st.builds(str.__add__, _label, _port),  # one label is a host only with a port
    st.builds(str.__add__, st.just("localhost"), _port | st.just("")),
    st.builds(lambda address, port: f"[{address}]{port}", _ipv6, _port | st.just("")),
    st.sampled_from(["docker.io", "index.docker.io", "registry-1.docker.io"]),
)
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", fullmatch=True)
_digest = st.one_of(
    st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda hex_: f"sha256:{hex_}"),
    st.text("0123456789abcdef", min_size=128, max_size=128).map(lambda hex_: f"sha512:{hex_}"),
)


@st.composite
def references(draw: st.DrawFn) -> tuple[str, Parts]:
    host = draw(st.none() | _host)
    repository = draw(_repository)
    tag = draw(st.none() | _tag)
    digest = draw(st.none() | _digest)
    first, slash, _ = repository.partition("/")
    # Without a registry, a first component that looks like a host would be read as one.
    assume(host or not slash or ("." not in first and first != "localhost"))
    text = (f"{host}/" if host else "") + repository
    text += f":{tag}" if tag else ""
    text += f"@{digest}" if digest else ""
    registry = host or "docker.io"
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = "docker.io"
    if registry == "docker.io" and "/" not in repository:
        repository = "library/" + repository
    if tag is None and digest is None:
        tag = "latest"
    return text, (registry, repository, tag, digest)


@given(references())
def test_grammar_references_parse_into_their_parts(case: tuple[str, Parts]) -> None:
    text, parts = case
    ref = ImageRef.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == parts
    again = ImageRef.parse(str(ref))
    assert again == ref
    assert str(again) == str(ref)


def _parse_or_reject(text: str) -> None:
    """Anything but InvalidReference escapes and fails the test; what parses must round-trip."""
    try:
        ref = ImageRef.parse(text)
    except InvalidReference:
        return
    assert ImageRef.parse(str(ref)) == ref


@given(st.text())
def test_any_text_parses_or_is_rejected_as_invalid(text: str) -> None:
    _parse_or_reject(text)


@given(st.text("aZ09._-:/@[]", max_size=40))
def test_reference_like_text_parses_or_is_rejected_as_invalid(text: str) -> None:
    _parse_or_reject(text)
