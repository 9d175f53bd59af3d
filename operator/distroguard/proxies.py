"""Which proxy a URL goes through: `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY`, read once at start.

Pure: the entry points hand `ProxyEnvironment.from_environ` the process environment once, and the
registry and EOL clients ask `proxy_for` per URL. The rules are those of curl and of Go's
`golang.org/x/net/http/httpproxy` where the two agree; where they differ, the choice is said:

- `https_proxy` / `HTTPS_PROXY` serve `https://` URLs, `http_proxy` / `HTTP_PROXY` serve `http://` URLs.
  The lower-case name wins when both are set (curl, wget, Python; Go prefers upper case). An empty value
  is unset. `ALL_PROXY` is not read.
- A proxy is `[http://|https://][user:password@]host[:port]`: no scheme means `http://`, no port means 80
  for `http://` and 443 for `https://` (Go; curl's default is 1080). SOCKS proxies are refused.
- `NO_PROXY` is a comma-separated list, case-insensitive, spaces around entries ignored:
  `*` alone: nothing is proxied; `10.0.0.0/8`, `fd00::/8`: hosts *written as* an address in that network
  (names are not resolved to match it, as in curl, Go and the Kubernetes client); `10.1.2.3`, `::1`,
  `[::1]:5000`: that address; `example.com`: that host and every name under it; `.example.com` and
  `*.example.com`: the same (curl; Go's leading dot leaves out `example.com` itself); any entry with
  `:PORT`: only URLs on that port (Go; curl ignores ports), the scheme's default port filled in.
  Entries that are none of these are ignored and listed in `ProxyEnvironment.notes`.
- Loopback hosts (`localhost`, `*.localhost`, `127.0.0.0/8`, `::1`) never go through a proxy (Go): a
  proxy's loopback is not ours.

A proxy's `user:password` authenticates us to the proxy (`Proxy-Authorization`) and is never shown:
`str()` and `repr()` of a `Proxy` replace it with `***`; only `Proxy.url`, for the HTTP client, carries it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_PORTS = {"http": 80, "https": 443}
#: (variable read first, variable read when the first is unset) per URL scheme, and for NO_PROXY.
VARIABLES = {
    "https": ("https_proxy", "HTTPS_PROXY"),
    "http": ("http_proxy", "HTTP_PROXY"),
    "no": ("no_proxy", "NO_PROXY"),
}


@dataclass(frozen=True, slots=True, repr=False)
class Proxy:
    """One forward proxy. `str()` is safe to log; `url` is not."""

    scheme: str
    host: str
    port: int
    source: str = ""
    """The variable it came from, e.g. HTTPS_PROXY."""
    userinfo: str = ""
    """`user:password` as written (percent-encoded), or "": part of `url` only."""

    @classmethod
    def parse(cls, text: str, source: str = "") -> Proxy:
        """`[scheme://][user:password@]host[:port][/]`; ValueError naming `source`, never the password."""
        value = text.strip()
        if "://" not in value:
            value = "http://" + value
        scheme = value.split("://", 1)[0].lower()
        userinfo, _, rest = value.split("://", 1)[1].rpartition("@")
        # The message shows the value with its credentials blanked out.
        shown = f"{scheme}://{'***@' if userinfo else ''}{rest}"
        where = f"{source} {shown!r}" if source else repr(shown)
        if scheme not in DEFAULT_PORTS:
            raise ValueError(f"{where}: proxy scheme {scheme!r} is not supported (http:// or https://)")
        try:
            parts = urlsplit(f"{scheme}://{rest}")
            port = parts.port
        except ValueError:
            raise ValueError(f"{where}: not a proxy URL (expected http://host:port)") from None
        if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"{where}: not a proxy URL (expected http://host:port)")
        return cls(scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme], source, userinfo)

    @property
    def url(self) -> str:
        """The URL for the HTTP client, credentials included: never log it."""
        return f"{self.scheme}://{self.userinfo + '@' if self.userinfo else ''}{self._hostport}"

    @property
    def _hostport(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{'***@' if self.userinfo else ''}{self._hostport}"

    def __repr__(self) -> str:
        return f"Proxy({str(self)!r}, source={self.source!r})"


def normal_host(host: str) -> str:
    """A host as matched: lowercased, without brackets or a trailing dot."""
    return host.strip().strip("[]").rstrip(".").lower()


def is_loopback(host: str) -> bool:
    """`localhost`, `*.localhost`, or a loopback address (never proxied)."""
    name = normal_host(host)
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True, slots=True)
class NoProxy:
    """The hosts that are reached directly (see the module's docstring for the rules)."""

    everything: bool = False
    networks: tuple[tuple[IPNetwork, int | None], ...] = ()
    domains: tuple[tuple[str, int | None], ...] = ()
    """(domain without a leading dot, port or None)."""
    ignored: tuple[str, ...] = ()
    """Entries that match nothing (malformed)."""

    @classmethod
    def parse(cls, text: str) -> NoProxy:
        networks: list[tuple[IPNetwork, int | None]] = []
        domains: list[tuple[str, int | None]] = []
        ignored: list[str] = []
        for raw in text.split(","):
            entry = raw.strip().lower()
            if not entry:
                continue
            if entry == "*":
                return cls(everything=True)
            parsed = _entry(entry)
            if parsed is None:
                ignored.append(raw.strip())
            elif isinstance(parsed[0], str):
                domains.append((parsed[0], parsed[1]))
            else:
                networks.append((parsed[0], parsed[1]))
        return cls(False, tuple(networks), tuple(domains), tuple(ignored))

    def matches(self, host: str, port: int) -> bool:
        """Whether `host` (a name or an address) on `port` is reached directly."""
        if self.everything:
            return True
        name = normal_host(host)
        address = _address(name)
        if address is not None:
            return any(
                address.version == net.version and address in net and wanted in (None, port)
                for net, wanted in self.networks
            )
        return any(
            (name == domain or name.endswith("." + domain)) and wanted in (None, port)
            for domain, wanted in self.domains
        )


def _entry(entry: str) -> tuple[IPNetwork | str, int | None] | None:
    """One NO_PROXY entry (lowercased) as (network or domain, port or None); None when malformed."""
    if "/" in entry:
        try:
            return ipaddress.ip_network(entry, strict=False), None
        except ValueError:
            return None
    host, port = entry, None
    if entry.startswith("["):  # [v6] or [v6]:port
        if "]" not in entry:
            return None
        host, _, rest = entry[1:].partition("]")
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                return None
            port = int(rest[1:])
    elif entry.count(":") == 1:  # host:port or v4:port; more colons: a bare IPv6 address
        host, _, text = entry.partition(":")
        if not text.isdigit():
            return None
        port = int(text)
    if port is not None and not 0 < port < 65536:
        return None
    address = _address(host)
    if address is not None:
        return ipaddress.ip_network(address), port
    domain = host.removeprefix("*").lstrip(".").rstrip(".")
    if not domain or any(not part for part in domain.split(".")) or "*" in domain or ":" in domain:
        return None
    return domain, port


@dataclass(frozen=True, slots=True)
class ProxyEnvironment:
    """The proxies of one process. The default, empty, reaches everything directly."""

    https: Proxy | None = None
    http: Proxy | None = None
    no_proxy: NoProxy = field(default_factory=NoProxy)
    notes: tuple[str, ...] = field(default=(), compare=False)
    """What a person should know about the environment read: ignored NO_PROXY entries, lower- and upper-
    case variables that disagree. Safe to log."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ProxyEnvironment:
        """The proxies `environ` names; ValueError naming the variable for an unusable proxy URL."""
        notes: list[str] = []
        found: dict[str, Proxy | None] = {}
        for scheme in ("https", "http"):
            name, text = _variable(environ, scheme, notes)
            found[scheme] = Proxy.parse(text, name) if text else None
        _, no_text = _variable(environ, "no", notes)
        no_proxy = NoProxy.parse(no_text)
        notes += [f"NO_PROXY entry {entry!r} is not understood and ignored" for entry in no_proxy.ignored]
        return cls(found["https"], found["http"], no_proxy, tuple(notes))

    @property
    def configured(self) -> bool:
        return self.https is not None or self.http is not None

    def proxy_for(self, scheme: str, host: str, port: int | None = None) -> Proxy | None:
        """The proxy a request to `scheme://host[:port]` goes through, or None for a direct connection."""
        proxy = {"https": self.https, "http": self.http}.get(scheme.lower())
        if proxy is None or not host or is_loopback(host):
            return None
        if self.no_proxy.matches(host, port if port is not None else DEFAULT_PORTS[scheme.lower()]):
            return None
        return proxy

    def proxy_for_url(self, url: str) -> Proxy | None:
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            return None
        return self.proxy_for(parts.scheme, parts.hostname or "", port)

    def describe(self) -> str:
        """One line for the start-up log (credentials blanked out)."""
        if not self.configured:
            return "no proxy (HTTPS_PROXY and HTTP_PROXY are unset)"
        parts = [f"{scheme} via {proxy} ({proxy.source})" for scheme, proxy in self._proxies()]
        reached = self._direct()
        parts.append(f"direct: loopback{', ' + reached if reached else ''}")
        return "; ".join(parts)

    def _proxies(self) -> list[tuple[str, Proxy]]:
        return [(s, p) for s, p in (("https", self.https), ("http", self.http)) if p is not None]

    def _direct(self) -> str:
        if self.no_proxy.everything:
            return "everything (NO_PROXY=*)"
        entries = [str(net) + (f" port {port}" if port else "") for net, port in self.no_proxy.networks]
        entries += [domain + (f" port {port}" if port else "") for domain, port in self.no_proxy.domains]
        return ", ".join(entries)


def _variable(environ: Mapping[str, str], kind: str, notes: list[str]) -> tuple[str, str]:
    """(the variable's name, its value or "") for `kind`: lower case first."""
    lower, upper = VARIABLES[kind]
    low, up = environ.get(lower, "").strip(), environ.get(upper, "").strip()
    if low and up and low != up:
        notes.append(f"{lower} and {upper} differ: {lower} is used")
    if low:
        return lower, low
    return upper, up
