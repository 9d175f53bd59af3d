"""The proxy environment: which proxy serves which URL, NO_PROXY's entries, and proxies' credentials kept
out of every text a person reads.

The NO_PROXY cases are facts from curl's no-proxy unit tests and Go's `httpproxy` tests (their inputs and
expected answers; the code is ours). Where distroguard follows curl rather than Go the case says so.
"""

from __future__ import annotations

import pytest

from distroguard.proxies import NoProxy, Proxy, ProxyEnvironment

# Go's httpproxy TestUseProxy list, asked on port 80.
GO_NO_PROXY = (
    "foobar.com, .barbaz.net, *.wildcard.io, 192.168.1.1, 192.168.1.2:81, 192.168.1.3:80, 10.0.0.0/30, "
    "2001:db8::52:0:1, [2001:db8::52:0:2]:443, [2001:db8::52:0:3]:80, 2002:db8:a::45/64"
)
GO_CASES = [
    ("192.168.1.1", True),  # exact IPv4
    ("192.168.1.2", False),  # the entry's port (81) differs
    ("192.168.1.3", True),  # exact IPv4:port
    ("192.168.1.4", False),
    ("10.0.0.2", True),  # IPv4 CIDR
    ("[2001:db8::52:0:1]", True),  # exact IPv6
    ("[2001:db8::52:0:2]", False),  # the entry's port (443) differs
    ("[2001:db8::52:0:3]", True),  # exact [IPv6]:port
    ("[2002:db8:a::123]", True),  # IPv6 CIDR
    ("[fe80::424b:c8be:1643:a1b6]", False),
    ("www.barbaz.net", True),  # under .barbaz.net
    ("barbaz.net", True),  # curl: a leading dot is ignored (Go: proxied)
    ("foobar.com", True),
    ("www.foobar.com", True),  # a bare domain covers the names under it
    ("foofoobar.com", False),  # not a label boundary
    ("baz.com", False),
    ("localhost.net", False),
    ("barbarbaz.net", False),
    ("nested.wildcard.io", True),  # *.wildcard.io
    ("wildcard.io", True),  # `*.` reads as a leading dot, as above (Go: proxied)
    ("awildcard.io", False),
]


@pytest.mark.parametrize(("host", "direct"), GO_CASES)
def test_go_httpproxy_cases(host: str, direct: bool) -> None:
    assert NoProxy.parse(GO_NO_PROXY).matches(host, 80) is direct


# curl's unit test for Curl_check_noproxy: (host, NO_PROXY, reached directly).
CURL_CASES = [
    ("www.example.com", "localhost,.example.com,.example.de", True),
    ("www.example.com.", "localhost,.example.com,.example.de", True),
    ("example.com", "localhost,.example.com,.example.de", True),
    ("example.com.", "localhost,.example.com,.example.de", True),
    ("www.example.com", "localhost,.example.com.,.example.de", True),
    ("www.example.com", "localhost,www.example.com.,.example.de", True),
    ("example.com", "localhost,example.com,.example.de", True),
    ("nexample.com", "localhost,example.com,.example.de", False),
    ("www.example.com", "localhost,example.com,.example.de", True),
    ("www.example.org", "localhost,example.com,.example.de", False),
    ("10.0.0.1", "10.0.0.0/8", True),
    ("10.0.0.1", "10.0.0.1/32", True),
    ("10.0.0.1", "10.0.0.2/32", False),
    ("192.168.0.1", "192.168.0.0/16", True),
    ("192.168.0.1", "192.168.1.0/24", False),
    ("[::1]", "::1", True),
    ("[::1]", "::1/128", True),
    ("[fe80::1]", "fe80::/10", True),
    ("[fe81::1]", "fe80::1", False),
    ("www.example.com", "*", True),
    ("anything.example", "*", True),
    ("example.com", "", False),
    ("example.com", "  ,  ", False),
    ("example.com", "  example.com  ,.example.de ", True),
]


@pytest.mark.parametrize(("host", "entries", "direct"), CURL_CASES)
def test_curl_noproxy_cases(host: str, entries: str, direct: bool) -> None:
    assert NoProxy.parse(entries).matches(host, 443) is direct


def test_cidr_entries_match_addresses_never_names() -> None:
    rules = NoProxy.parse("10.0.0.0/8")
    assert rules.matches("10.1.2.3", 443)
    assert not rules.matches("registry.corp.example", 443)  # even if it resolves into 10/8: not resolved
    assert NoProxy.parse("10.1.2.3").matches("::ffff:10.1.2.3", 443)  # the IPv4-mapped form is the address


def test_ports_restrict_an_entry() -> None:
    rules = NoProxy.parse("registry.corp:5000, .svc:8443")
    assert rules.matches("registry.corp", 5000)
    assert not rules.matches("registry.corp", 443)
    assert rules.matches("api.ns.svc", 8443)
    assert not rules.matches("api.ns.svc", 443)


def test_case_and_whitespace_do_not_matter() -> None:
    assert NoProxy.parse(" .Corp.Example ,\tHarbor.LAN ").matches("REGISTRY.corp.example", 443)
    assert NoProxy.parse("harbor.lan").matches("Harbor.Lan.", 443)


@pytest.mark.parametrize("entry", ["a..b", "host:port", "host:0", "[::1", "10.0.0.0/33", ":80", "a*b.c"])
def test_malformed_entries_match_nothing_and_are_noted(entry: str) -> None:
    rules = NoProxy.parse(f"{entry},good.example")
    assert rules.ignored == (entry,)
    assert rules.matches("good.example", 443)
    env = ProxyEnvironment.from_environ({"HTTPS_PROXY": "proxy:3128", "NO_PROXY": f"{entry},good.example"})
    assert env.notes == (f"NO_PROXY entry {entry!r} is not understood and ignored",)


# ---------------------------------------------------------------------- which variable, which proxy


def test_each_scheme_has_its_own_proxy() -> None:
    env = ProxyEnvironment.from_environ(
        {"HTTPS_PROXY": "http://secure-proxy:3128", "HTTP_PROXY": "plain-proxy:8080", "NO_PROXY": ".corp"}
    )
    https = env.proxy_for("https", "registry-1.docker.io")
    assert https is not None
    assert (https.host, https.port, https.source) == ("secure-proxy", 3128, "HTTPS_PROXY")
    http = env.proxy_for("http", "insecure.example", 5000)
    assert http is not None
    assert (http.host, http.port, http.scheme) == ("plain-proxy", 8080, "http")
    assert env.proxy_for("https", "registry.corp") is None
    assert env.proxy_for_url("https://endoflife.date/api/v1/products/debian") == https
    assert env.proxy_for_url("http://registry.corp:5000/v2/") is None


def test_only_https_proxy_leaves_plain_http_direct() -> None:
    env = ProxyEnvironment.from_environ({"https_proxy": "proxy:3128"})
    assert env.proxy_for("https", "ghcr.io") is not None
    assert env.proxy_for("http", "ghcr.io") is None


def test_lower_case_wins_and_the_disagreement_is_noted() -> None:
    env = ProxyEnvironment.from_environ(
        {"https_proxy": "lower:1", "HTTPS_PROXY": "upper:2", "NO_PROXY": "upper.example", "no_proxy": ""}
    )
    assert env.https is not None
    assert env.https.host == "lower"
    assert env.https.source == "https_proxy"
    assert env.notes == ("https_proxy and HTTPS_PROXY differ: https_proxy is used",)
    # An empty lower-case value is unset: the upper-case one applies.
    assert env.proxy_for("https", "upper.example") is None


LOOPBACK = ["localhost", "registry.localhost", "127.0.0.1", "127.8.9.10", "::1", "[::1]"]


@pytest.mark.parametrize("host", LOOPBACK)
def test_loopback_is_never_proxied(host: str) -> None:
    env = ProxyEnvironment.from_environ({"HTTPS_PROXY": "proxy:3128", "HTTP_PROXY": "proxy:3128"})
    assert env.proxy_for("https", host) is None
    assert env.proxy_for("http", host, 5000) is None


def test_no_variables_no_proxy() -> None:
    env = ProxyEnvironment.from_environ({"NO_PROXY": ".svc", "PATH": "/bin"})
    assert not env.configured
    assert env.proxy_for("https", "ghcr.io") is None
    assert ProxyEnvironment.from_environ({}) == ProxyEnvironment()
    assert "no proxy" in env.describe()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("proxy.corp:3128", ("http", "proxy.corp", 3128)),
        ("http://Proxy.Corp", ("http", "proxy.corp", 80)),
        ("https://proxy.corp/", ("https", "proxy.corp", 443)),
        ("HTTP://[fd00::1]:3128", ("http", "fd00::1", 3128)),
        ("http://user:p%40ss@proxy.corp:3128", ("http", "proxy.corp", 3128)),
    ],
)
def test_proxy_urls(text: str, expected: tuple[str, str, int]) -> None:
    proxy = Proxy.parse(text, "HTTPS_PROXY")
    assert (proxy.scheme, proxy.host, proxy.port) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("socks5://user:hunter2@proxy:1080", "not supported"),
        ("http://user:hunter2@proxy:99999", "not a proxy URL"),
        ("http://user:hunter2@proxy:3128/path", "not a proxy URL"),
        ("http://user:hunter2@:3128", "not a proxy URL"),
    ],
)
def test_an_unusable_proxy_is_named_without_its_password(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as caught:
        ProxyEnvironment.from_environ({"HTTPS_PROXY": text})
    message = str(caught.value)
    assert message.startswith("HTTPS_PROXY ")
    assert "hunter2" not in message
    assert "user" not in message
    assert "***@" in message


def test_a_proxy_password_never_shows() -> None:
    environ = {"HTTPS_PROXY": "http://alice:hunter2@proxy.corp:3128", "NO_PROXY": ".svc"}
    env = ProxyEnvironment.from_environ(environ)
    proxy = env.https
    assert proxy is not None
    assert proxy.url == "http://alice:hunter2@proxy.corp:3128"  # for the HTTP client alone
    for text in (str(proxy), repr(proxy), repr(env), str(env), env.describe(), f"{proxy}"):
        assert "hunter2" not in text, text
        assert "alice" not in text, text
    assert str(proxy) == "http://***@proxy.corp:3128"
    assert env.describe() == "https via http://***@proxy.corp:3128 (HTTPS_PROXY); direct: loopback, svc"


def test_the_environment_is_a_value() -> None:
    environ = {"HTTPS_PROXY": "http://u:p@proxy:3128", "NO_PROXY": "10.0.0.0/8,.svc"}
    one, two = ProxyEnvironment.from_environ(environ), ProxyEnvironment.from_environ(dict(environ))
    assert one == two
    assert hash(one) == hash(two)
    assert one != ProxyEnvironment.from_environ({**environ, "HTTPS_PROXY": "http://u:other@proxy:3128"})
    assert one != ProxyEnvironment.from_environ({**environ, "NO_PROXY": ".svc"})
