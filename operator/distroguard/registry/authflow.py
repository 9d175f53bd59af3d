"""The authentication flow: which `Authorization` to send, and what to do with a 401's challenge.

Anonymous first; a registry's first 401 tells its scheme. Basic answers with the stored username and
password. Bearer fetches a token from the challenge's realm (with basic credentials if any, or an
OAuth2 refresh token), caches it per (registry, scope) and retries once. Once a registry is known to
want bearer tokens, tokens for new scopes are fetched up front, saving the anonymous round trip.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from yarl import URL

from distroguard.errors import (
    AuthenticationError,
    InsecureRegistryError,
    RegistryError,
    SourceError,
)
from distroguard.registry.auth import (
    MAX_TOKEN_RESPONSE_BYTES,
    Challenge,
    TokenCache,
    parse_token_response,
)
from distroguard.registry.credentials import Credentials, CredentialStore
from distroguard.registry.foreign import debug, known
from distroguard.registry.hosts import api_host, host_class, split_host
from distroguard.registry.transport import Transport, hostport, read_bounded

#: OAuth2 client id sent with refresh-token grants (the token spec requires one).
CLIENT_ID = "distroguard"


#: Authentication schemes a message may name; any other is the registry's own word.
KNOWN_SCHEMES = frozenset({"basic", "bearer", "digest", "negotiate", "ntlm", "aws4-hmac-sha256"})


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def realm_refusal(realm: URL, registry: str, allowed: frozenset[str]) -> str | None:
    """Why a token realm must not be asked (our credentials would go there), or None.

    A registry's challenge names the URL we send its credentials to, so a hostile registry could
    point it at the cloud metadata service or a cluster-internal API. A realm on an internal host is
    refused unless `allowed` names it, or the registry itself is in the same kind of network (a
    registry on a private address keeps its token server nearby). The metadata service is never
    reached that way: only `allowed` can name it. Decided from the URL's text, before connecting.
    """
    host = (realm.host or "").lower()
    if host in allowed or hostport(realm).lower() in allowed:
        return None
    kind = host_class(host)
    if kind is None:
        return None
    if kind == "metadata":
        return "it names the cloud metadata service"
    registry_kind = host_class(split_host(api_host(registry))[0])
    if kind == registry_kind:
        return None
    return (
        f"it names a {kind} host while the registry is not on one "
        "(allow it with RegistrySettings.token_realm_hosts)"
    )


Schemes = dict[str, Challenge]
"""The challenge each registry answered last, scope removed: how to authenticate there next time. How a
registry authenticates is the registry's, whoever asks, so the clients of one pool share it (a client with
credentials then skips the anonymous round trip another client's 401 already paid); tokens and credentials
stay each client's own."""


class Authenticator:
    def __init__(
        self,
        transport: Transport,
        credentials: CredentialStore,
        clock: Callable[[], float],
        schemes: Schemes | None = None,
    ) -> None:
        self._transport = transport
        self._credentials = credentials
        self._tokens = TokenCache(clock, transport.settings.token_margin)
        self._schemes: Schemes = schemes if schemes is not None else {}
        self._fetching: dict[tuple[str, str], asyncio.Lock] = {}

    @property
    def tokens(self) -> TokenCache:
        return self._tokens

    def _lookup(self, registry: str) -> Credentials | None:
        return self._credentials.get(registry)

    async def authorization(self, registry: str, scope: str, deadline: float | None) -> str | None:
        """What to send before any challenge for this request (None: go anonymous)."""
        challenge = self._schemes.get(registry)
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            credentials = self._lookup(registry)
            return credentials.basic_header() if credentials else None
        token = self._tokens.get(registry, scope)
        if token is None:
            try:
                token = await self._token(registry, scope, challenge, deadline)
            except RegistryError:
                # The challenge remembered from another repository does not serve this one (a registry may
                # answer each repository its own way): go anonymous, and its own 401 says how.
                if self._schemes.get(registry) is challenge:
                    del self._schemes[registry]
                return None
        return f"Bearer {token}"

    async def respond(
        self,
        registry: str,
        scope: str,
        challenges: list[Challenge],
        sent: str | None,
        deadline: float | None,
    ) -> str:
        """The `Authorization` to retry with after a 401, or AuthenticationError saying why not."""
        by_scheme = {c.scheme: c for c in challenges}
        credentials = self._lookup(registry)
        bearer = by_scheme.get("bearer")
        if bearer is not None:
            kept = {k: v for k, v in bearer.params.items() if k not in ("scope", "error")}
            cached = self._tokens.get(registry, scope)
            if cached is not None and sent == f"Bearer {cached}":
                # The registry refused the token we sent (revoked, expired early): drop it. A token
                # another request fetched meanwhile (while we went anonymous) is still worth a try.
                self._tokens.drop(registry, scope)
            scopes = " ".join(bearer.scopes) or scope
            token = await self._token(registry, scope, bearer, deadline, scopes=scopes)
            # Remembered only once it gave a token: a challenge whose realm fails must not stand for the
            # registry's other repositories.
            self._schemes[registry] = Challenge("bearer", kept)
            header = f"Bearer {token}"
            if header == sent:
                raise AuthenticationError(registry, f"the token for {scope} was refused")
            return header
        if "basic" in by_scheme:
            self._schemes[registry] = Challenge("basic", dict(by_scheme["basic"].params))
            basic = credentials.basic_header() if credentials else None
            if basic is None:
                raise AuthenticationError(
                    registry,
                    "requires a username and password (basic auth) and none are configured",
                )
            if basic == sent and credentials is not None:
                raise AuthenticationError(
                    registry, f"the username and password of {credentials.username!r} were refused"
                )
            return basic
        debug("WWW-Authenticate schemes", sorted(by_scheme))
        schemes = sorted({known(scheme, KNOWN_SCHEMES) for scheme in by_scheme})
        offered = ", ".join(schemes) or "no usable challenge"
        raise AuthenticationError(registry, f"unauthorized; unsupported authentication ({offered})")

    async def _token(
        self,
        registry: str,
        scope: str,
        challenge: Challenge,
        deadline: float | None,
        *,
        scopes: str | None = None,
    ) -> str:
        """A token for (registry, scope): cached, or fetched once however many ask at once."""
        key = (registry, scope)
        lock = self._fetching.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(registry, scope)
            if cached is not None:
                return cached
            credentials = self._lookup(registry)
            if credentials is not None and credentials.registry_token:
                return credentials.registry_token
            token, lifetime = await self._fetch(
                registry, scope, scopes or scope, challenge, credentials, deadline
            )
            self._tokens.put(registry, scope, token, lifetime)
            return token

    async def _fetch(
        self,
        registry: str,
        scope: str,
        scopes: str,
        challenge: Challenge,
        credentials: Credentials | None,
        deadline: float | None,
    ) -> tuple[str, float]:
        """A token from the challenge's realm for `scopes` (the challenge's, else our `scope`); messages
        name our `scope` only, since the challenge's are the registry's text."""
        realm_text = challenge.realm
        if not realm_text:
            raise AuthenticationError(registry, "the bearer challenge names no realm (token server)")
        try:
            realm = URL(realm_text)
        except ValueError:
            realm = URL()
        # The realm is the registry's text: the debug log may show it, messages only say what kind it is.
        debug("token realm", realm_text)
        if realm.scheme not in ("http", "https") or not realm.host:
            raise AuthenticationError(registry, "unusable token realm (not an http or https URL)")
        if realm.scheme == "http" and not self._transport.plain_http(hostport(realm)):
            raise InsecureRegistryError(registry, "token realm refused: plain HTTP on a non-loopback host")
        allowed = self._transport.settings.token_realm_hosts
        refusal = realm_refusal(realm, registry, allowed)
        if refusal:
            raise InsecureRegistryError(registry, f"token realm refused: {refusal}")
        if realm.host.lower() not in allowed and hostport(realm).lower() not in allowed:
            # The text passed; the addresses the name resolves to are checked as it is connected to.
            self._transport.resolver.guard(realm.host, split_host(api_host(registry))[0])
        what = f"token for {scope}"
        service = challenge.service
        headers: dict[str, str] = {"Accept": "application/json"}
        if credentials is not None and credentials.identity_token:
            # OAuth2 refresh-token grant, what `docker login` stores for some registries.
            form = {
                "grant_type": "refresh_token",
                "refresh_token": credentials.identity_token,
                "client_id": CLIENT_ID,
                "scope": scopes,
            }
            if service:
                form["service"] = service
            method, url, body = "POST", realm, form
        else:
            query: list[tuple[str, str]] = [("service", service)] if service else []
            query += [("scope", s) for s in scopes.split()]
            if credentials is not None and credentials.username:
                query.append(("account", credentials.username))
            basic = credentials.basic_header() if credentials else None
            if basic:
                headers["Authorization"] = basic
            method, url, body = "GET", realm.update_query(query), None
        response = await self._transport.send(
            method,
            url,
            registry=registry,
            what=what,
            headers=headers,
            deadline=deadline,
            form=body,
        )
        async with response:
            if response.status in (401, 403):
                who = (
                    f"as {credentials.username!r}" if credentials and credentials.username else "anonymously"
                )
                raise AuthenticationError(registry, f"the token server refused a token for {scope} {who}")
            if response.status != 200:
                raise RegistryError(registry, f"{what}: HTTP {response.status}")
            payload = await read_bounded(response, MAX_TOKEN_RESPONSE_BYTES, "MAX_TOKEN_RESPONSE_BYTES", what)
        self._transport.stats.count_bytes(registry, len(payload))
        try:
            return parse_token_response(payload, what)
        except SourceError as exc:
            raise RegistryError(registry, str(exc)) from None
