"""A namespace's pull secret for a registry mirror that requires auth: admission and the audit both send it
for an image on the mirrored registry (the references keep naming Docker Hub; nothing may reach it).

The mirror is the test registry with htpasswd auth; the pull secret names the mirror's host, which is where
the bytes come from. Without the secret the same lookups fail with the registry's authentication error, so
each answer below really was made with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from distroguard.admission import AdmissionRequest, decode_review
from distroguard.audit.cluster import PullCredentials as ClusterPullCredentials
from distroguard.audit.cluster import Scope
from distroguard.audit.resolve import ResolveSettings
from distroguard.audit.run import AuditRequest, run_audit
from distroguard.eol import EolCatalog, bundled_snapshot
from distroguard.model import Platform
from distroguard.operator.catalogholder import CatalogHolder
from distroguard.operator.policystore import PolicyStore
from distroguard.operator.webhook.admitter import Admitter
from distroguard.registry.credentials import Credentials, CredentialStore
from distroguard.registry.settings import RegistrySettings
from distroguard.resolver.routing import NO_CREDENTIALS, PullCredentials, ResolverPool
from support.distros import debian_python_image
from support.images import push
from support.policies import policy
from support.registry_server import TEST_PASSWORD, TEST_USER, RegistryServer
from support.reviews import container, pod_spec, review, workload

pytestmark = pytest.mark.registry

CATALOG = EolCatalog(bundled_snapshot())
NOW = datetime(2026, 6, 1, tzinfo=UTC)
#: Denies what it cannot inspect, so that an answer made without the secret says so.
STRICT = [policy("no-musl", {"name": "no-musl", "denyLibc": ["musl"]}, action="deny", onUnresolved="deny")]


@pytest.fixture
def mirrored(basic_registry: RegistryServer, repo: str) -> tuple[str, str]:
    """(the Docker Hub reference of an image the mirror holds, its digest)."""
    image = debian_python_image()
    asyncio.run(push(basic_registry.url, repo, "1", image, auth=basic_registry.push_auth))
    return f"docker.io/{repo}:1", image.digest


def mirror_secret(server: RegistryServer) -> CredentialStore:
    return CredentialStore({server.address: Credentials(TEST_USER, TEST_PASSWORD)})


# ------------------------------------------------------------------------------------------- admission


class NoLabels:
    async def get(self, namespace: str) -> Mapping[str, str]:
        return {}


class OneSecret:
    def __init__(self, credentials: PullCredentials) -> None:
        self.credentials = credentials

    async def get(self, namespace: str, secrets: Sequence[str], service_account: str) -> PullCredentials:
        return self.credentials


async def admit_with(server: RegistryServer, credentials: PullCredentials, request: AdmissionRequest) -> Any:
    pool = ResolverPool(RegistrySettings(registry_mirrors={"docker.io": server.address}), ttl=60)
    await pool.start()
    try:
        admitter = Admitter(
            policies=PolicyStore(STRICT),
            pool=pool,
            namespaces=NoLabels(),  # type: ignore[arg-type]
            secrets=OneSecret(credentials),  # type: ignore[arg-type]
            catalog=CatalogHolder(CATALOG),
            budget=20.0,
            clock=lambda: NOW,
        )
        return await admitter(request)
    finally:
        await pool.close()


def test_admission_sends_the_namespaces_secret_to_the_mirror(
    basic_registry: RegistryServer, mirrored: tuple[str, str]
) -> None:
    reference, digest = mirrored
    request = decode_review(review(workload("Pod", pod_spec(container("app", reference)))))
    answer = asyncio.run(
        admit_with(basic_registry, PullCredentials(mirror_secret(basic_registry), "f1"), request)
    )
    assert answer.allowed, answer
    assert answer.decision is not None
    (verdict,) = answer.decision.containers
    assert (verdict.image, verdict.verdict, verdict.digest) == (reference, "allow", digest)
    assert answer.unresolved == ()

    refused = asyncio.run(admit_with(basic_registry, NO_CREDENTIALS, request))
    assert not refused.allowed
    assert "could not be inspected" in refused.message
    assert basic_registry.address in refused.message


# ----------------------------------------------------------------------------------------------- audit


class OnePodCluster:
    """What `run_audit` reads of a cluster: one pod in `shop` naming a pull secret."""

    context = "test"

    def __init__(self, image: str, credentials: ClusterPullCredentials) -> None:
        self.image = image
        self.credentials = credentials
        self.asked: list[tuple[str, tuple[str, ...], str]] = []

    def pods(self, scope: Scope) -> Iterator[dict[str, Any]]:
        yield {
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1"},
            "spec": {
                "containers": [{"name": "app", "image": self.image}],
                "imagePullSecrets": [{"name": "m"}],
            },
        }

    def owners(self, scope: Scope) -> Iterator[tuple[str, dict[str, Any]]]:
        return iter(())

    def pull_credentials(self, namespace: str, secrets: Sequence[str], service_account: str) -> Any:
        self.asked.append((namespace, tuple(secrets), service_account))
        return self.credentials

    def namespace_labels(self, names: Sequence[str]) -> dict[str, dict[str, str]]:
        return {name: {} for name in names}

    def node_platforms(self) -> dict[str, Platform]:
        return {}  # no Nodes: the audit judges linux/amd64, the platform the test image offers


def audit_with(server: RegistryServer, image: str, credentials: ClusterPullCredentials) -> Any:
    cluster = OnePodCluster(image, credentials)
    request = AuditRequest(
        scope=Scope(None),
        policies=STRICT,
        resolve=ResolveSettings(
            platform=Platform.parse("linux/amd64"),
            registry=RegistrySettings(registry_mirrors={"docker.io": server.address}),
        ),
        catalog=CATALOG,
        now=NOW,
        use_pull_secrets=True,
    )
    result = run_audit(cluster, request)  # type: ignore[arg-type]
    assert cluster.asked == [("shop", ("m",), "default")]
    return result


def test_the_audit_sends_the_namespaces_secret_to_the_mirror(
    basic_registry: RegistryServer, mirrored: tuple[str, str]
) -> None:
    reference, digest = mirrored
    result = audit_with(
        basic_registry, reference, ClusterPullCredentials(mirror_secret(basic_registry), "f1")
    )
    (summary,) = result.images
    assert summary.error == ""
    assert summary.facts is not None
    assert (summary.facts.digest, summary.distro_id) == (digest, "debian")
    assert result.problems == ()

    without = audit_with(basic_registry, reference, ClusterPullCredentials())
    (failed,) = without.images
    assert failed.facts is None
    assert basic_registry.address in failed.error
