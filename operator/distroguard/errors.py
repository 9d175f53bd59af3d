"""The one error hierarchy of distroguard.

    DistroguardError                  anything we raise on purpose; `str()` is a message a person can act on
    ├── InvalidReference              the image reference text is malformed (the *input* is bad)
    ├── InvalidCredentials            a Docker config.json or pull secret is malformed (the *input* is bad)
    ├── InvalidReview                 an AdmissionReview is malformed, e.g. has no uid (the *request* is bad)
    ├── InvalidObject                 a reviewed workload is malformed or too big (the *object* is bad)
    ├── InvalidFactsRequest           a facts API request is malformed or asks too much (the *request* is bad)
    ├── SourceError                   fetching image bytes failed
    │   ├── RegistryError             a registry answered badly or not at all (names the registry)
    │   │   ├── AuthenticationError   credentials missing or refused (401/403)
    │   │   ├── NotFoundError         repository, tag, manifest or blob unknown (404)
    │   │   ├── RegistryUnavailable   5xx, 429, connection failures after retries
    │   │   │   └── RegistryUnreachable no answer at all after retries: the host, not one image, failed
    │   │   ├── InsecureRegistryError plain HTTP to a host not allowed to use it
    │   │   └── RegistryAddressRefused the registry's address is not allowed in the cluster (--registry-allow)
    │   ├── DigestMismatch            bytes do not match the digest that names them
    │   ├── PlatformNotFound          an index has no manifest for the wanted platform
    │   ├── UnsupportedMediaType      a manifest or layer in a format we do not read
    │   └── LocalImageError           an `oci:` layout or `docker-archive:` tarball is unreadable
    ├── LookupLimited                 a namespace started more cold lookups than its share (resolver.fairness)
    ├── ScanLimitExceeded             a hard bound was hit while reading an image (size, entries, hops...)
    ├── DeadlineExceeded              the caller's time budget ran out
    ├── InvalidPolicy                 a DistroPolicy document is malformed (names the source and each field)
    └── CatalogError                  the EOL catalog cannot be read (bundled snapshot or local cache)
        └── CatalogUpdateError        refreshing the catalog failed; the previous catalog is kept

Errors about the *object* (a bad reference, a bad image, a bad policy) are distinct from errors about the
*transport* (a registry or endoflife.date that is down), because the first will never succeed on retry and the
second may.
"""

from __future__ import annotations


class DistroguardError(Exception):
    """Base of every error distroguard raises on purpose."""

    #: A short machine-readable reason, stable across releases (used in JSON output and metrics).
    reason: str = "error"


def reason_of(error: BaseException) -> str:
    """The machine-readable reason of `error`: its own for ours, `deadline-exceeded` for a timeout, else
    `error`."""
    if isinstance(error, DistroguardError):
        return error.reason
    if isinstance(error, TimeoutError):
        return DeadlineExceeded.reason
    return DistroguardError.reason


class InvalidReference(DistroguardError, ValueError):
    reason = "invalid-reference"

    def __init__(self, reference: str, problem: str) -> None:
        self.reference = reference
        self.problem = problem
        super().__init__(f"invalid image reference {reference!r}: {problem}")


class InvalidCredentials(DistroguardError, ValueError):
    """A credentials file or pull secret cannot be read; the message names where, never the secret."""

    reason = "invalid-credentials"


class InvalidReview(DistroguardError, ValueError):
    """The AdmissionReview itself is bad; the API server (or whoever sent it) made the mistake.

    `uid` is the request's uid when it could be read, so that the answer still names the request.
    """

    reason = "invalid-review"

    def __init__(self, problem: str, uid: str | None = None) -> None:
        self.problem = problem
        self.uid = uid
        super().__init__(f"invalid AdmissionReview: {problem}")


class InvalidObject(DistroguardError, ValueError):
    """The review is well-formed but the workload it carries cannot be checked (a malformed pod spec,
    more containers than the bound); answered as a denial naming what is wrong.
    """

    reason = "invalid-object"

    def __init__(self, what: str, problem: str) -> None:
        self.what = what
        self.problem = problem
        super().__init__(f"{what}: {problem}")


class InvalidFactsRequest(DistroguardError, ValueError):
    """A request to the facts API (Gatekeeper's provider protocol, `GET /v1/facts`) is bad or too big."""

    reason = "invalid-facts-request"


class SourceError(DistroguardError):
    reason = "source-error"


class RegistryError(SourceError):
    reason = "registry-error"

    def __init__(self, registry: str, message: str) -> None:
        self.registry = registry
        super().__init__(f"registry {registry}: {message}")


class AuthenticationError(RegistryError):
    reason = "unauthorized"


class NotFoundError(RegistryError):
    reason = "not-found"


class RegistryUnavailable(RegistryError):
    reason = "registry-unavailable"


class RegistryUnreachable(RegistryUnavailable):
    """No HTTP answer at all after the retries (refused, reset, timed out): the host failed, so every image
    on it would (`resolver.HOST_FAILURES`). An answered 5xx or 429 may be one repository's trouble."""


class InsecureRegistryError(RegistryError):
    reason = "insecure-registry"


class RegistryAddressRefused(RegistryError):
    """A connection would reach an address the cluster refuses (link-local, loopback, internal) and
    `--registry-allow` does not open; the image is unresolved and the policies' `onUnresolved` decides.
    `whole_host`: the registry itself is at that address (then every image on it is, too), not a redirect
    or a token realm one repository named."""

    reason = "registry-address-not-allowed"

    def __init__(self, registry: str, message: str, *, whole_host: bool = True) -> None:
        super().__init__(registry, message)
        self.whole_host = whole_host


class DigestMismatch(SourceError):
    reason = "digest-mismatch"

    def __init__(self, what: str, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"{what}: content digest {actual} does not match the expected {expected}")


class PlatformNotFound(SourceError):
    reason = "platform-not-found"

    def __init__(self, wanted: str, available: list[str]) -> None:
        self.wanted = wanted
        self.available = available
        have = ", ".join(available) if available else "none"
        super().__init__(f"the image index has no manifest for platform {wanted} (available: {have})")


class UnsupportedMediaType(SourceError):
    reason = "unsupported-media-type"


class LocalImageError(SourceError):
    reason = "local-image-error"


class LookupLimited(DistroguardError):
    """A namespace is over its rate of cold lookups: the image is unresolved, and looked up when asked again
    later (the review's retry)."""

    reason = "lookup-limited"


class ScanLimitExceeded(DistroguardError):
    """A hard bound protecting time or memory was reached; the image stays unresolved."""

    reason = "limit-exceeded"

    def __init__(self, bound: str, limit: int, detail: str = "") -> None:
        self.bound = bound
        self.limit = limit
        extra = f" ({detail})" if detail else ""
        super().__init__(f"scan bound {bound}={limit} exceeded{extra}")


class DeadlineExceeded(DistroguardError, TimeoutError):
    reason = "deadline-exceeded"


class InvalidPolicy(DistroguardError, ValueError):
    """A policy document does not validate; `problems` holds one line per bad field (`spec.action: ...`)."""

    reason = "invalid-policy"

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(f"invalid policy in {source}:\n{lines}")


class InvalidException(InvalidPolicy):
    """A DistroPolicyException document does not validate (or asks more than the cluster allows)."""

    reason = "invalid-exception"

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(source, problems)
        lines = "\n".join(f"  {problem}" for problem in problems)
        self.args = (f"invalid exception in {source}:\n{lines}",)


class CatalogError(DistroguardError):
    reason = "catalog-error"


class CatalogUpdateError(CatalogError):
    """A refresh from endoflife.date failed; nothing was written, the catalog in use is unchanged."""

    reason = "catalog-update-failed"
