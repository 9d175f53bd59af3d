"""Everything an audit reads from the Kubernetes API, through the synchronous `kubernetes` client.

Objects are returned as the API's JSON (camelCase dicts, `_preload_content=False`): the wire format that
`distroguard.model.workloads` reads, and far cheaper than the client's model classes. Every list is
paged (`limit`/`continue`) so a large cluster is never held twice in memory.

Pull secrets are read per namespace and only on request; their contents never appear in an error message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import kubernetes
import orjson

from distroguard.errors import DistroguardError, InvalidException
from distroguard.model import Platform
from distroguard.model.exception import DistroPolicyException
from distroguard.model.platform import node_platform
from distroguard.model.policy import DistroPolicy
from distroguard.model.validation import parse_exception, parse_policy
from distroguard.model.workloads import OWNER_KINDS, WorkloadKind
from distroguard.registry.credentials import CredentialStore, PullSecret, from_pull_secrets

PAGE_SIZE = 500
POLICY_GROUP, POLICY_VERSION, POLICY_PLURAL = "distroguard.dev", "v1alpha1", "distropolicies"
EXCEPTION_PLURAL = "distropolicyexceptions"


_METADATA_LIST = {"Accept": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"}
"""Labels without status: a Node's status is most of its bytes."""


class ClusterError(DistroguardError):
    """The API could not be reached, or refused a list (the message says which list and why)."""


@dataclass(frozen=True, slots=True)
class Scope:
    namespace: str | None
    """None: every namespace."""


@dataclass(frozen=True, slots=True)
class PullCredentials:
    store: CredentialStore = field(default_factory=CredentialStore)
    fingerprint: str = ""
    """sha256 over the secrets used (names, types, data); "" when there are none."""
    problems: tuple[str, ...] = ()


def _json(response: Any) -> Any:
    return orjson.loads(response.data)  # several times faster than `json` on a page of 500 pods


def paged(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every item of a list call of the `kubernetes` client, as JSON, page by page (`limit` and
    `continue`), so that a large cluster is never held whole.

    The next page is asked for while the caller works through this one (at most two pages held): a list
    of 100,000 pods is 200 round trips, each mostly the API server's time, which the caller's own work on
    the previous page then overlaps."""

    def fetch(token: str | None) -> Any:
        more = {"_continue": token} if token else {}
        return _json(call(*args, limit=PAGE_SIZE, _preload_content=False, **more, **kwargs))

    with ThreadPoolExecutor(1) as ahead:
        page = fetch(None)
        while True:
            token = (page.get("metadata") or {}).get("continue")
            following = ahead.submit(fetch, token) if token else None
            yield from page.get("items") or ()
            if following is None:
                return
            page = following.result()


def _list_calls(api: Any, kind: WorkloadKind) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The `kubernetes` client's list calls of a kind, in one namespace and in all of them, found by name
    (`list_namespaced_replica_set`, `list_replica_set_for_all_namespaces` of `AppsV1Api`)."""
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", kind.kind).lower()
    group = (kind.group or "core").capitalize()
    typed = getattr(kubernetes.client, f"{group}{kind.version.capitalize()}Api")(api)
    return getattr(typed, f"list_namespaced_{name}"), getattr(typed, f"list_{name}_for_all_namespaces")


def _read(what: str, items: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """`items`, with a refusal or a broken connection as a ClusterError naming what was listed."""
    try:
        yield from items
    except kubernetes.client.ApiException as exc:
        raise ClusterError(f"cannot list {what}: {exc.status} {exc.reason}") from None
    except OSError as exc:  # urllib3's connection errors are OSErrors
        raise ClusterError(f"cannot list {what}: {exc}") from None


class Cluster:
    """One kubeconfig context's API, read-only."""

    def __init__(self, api: Any, context: str = "", default_namespace: str = "default") -> None:
        """`api`: a `kubernetes.client.ApiClient`, closed by `close()`."""
        self.api = api
        self.context = context
        self.default_namespace = default_namespace
        self.core = kubernetes.client.CoreV1Api(api)
        self.custom = kubernetes.client.CustomObjectsApi(api)
        self._owner_lists = [(kind, *_list_calls(api, kind)) for kind in OWNER_KINDS]

    @classmethod
    def from_kubeconfig(cls, kubeconfig: str | None = None, context: str | None = None) -> Cluster:
        """Like kubectl: the kubeconfig's current context, or `context`."""
        try:
            api = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context, persist_config=False
            )
            contexts, active = kubernetes.config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
                config_file=kubeconfig
            )
        except (kubernetes.config.ConfigException, OSError) as exc:
            raise ClusterError(f"cannot load the kubeconfig: {exc}") from None
        chosen = next((c for c in contexts if c.get("name") == context), active) if context else active
        return cls(
            api,
            context=str((chosen or {}).get("name") or ""),
            default_namespace=str((chosen or {}).get("context", {}).get("namespace") or "default"),
        )

    def close(self) -> None:
        self.api.close()

    # ------------------------------------------------------------------------------------- lists

    def _list(
        self, what: str, scope: Scope, namespaced: Callable[..., Any], everywhere: Callable[..., Any]
    ) -> Iterator[dict[str, Any]]:
        if scope.namespace is None:
            yield from _read(what, paged(everywhere))
        else:
            yield from _read(what, paged(namespaced, scope.namespace))

    def pods(self, scope: Scope) -> Iterator[dict[str, Any]]:
        return self._list("pods", scope, self.core.list_namespaced_pod, self.core.list_pod_for_all_namespaces)

    def owners(self, scope: Scope) -> Iterator[tuple[str, dict[str, Any]]]:
        """(kind, object) of every workload object a pod can belong to: the table's `owners` kinds."""
        for kind, namespaced, everywhere in self._owner_lists:
            for obj in self._list(f"{kind.kind}s", scope, namespaced, everywhere):
                yield kind.kind, obj

    def node_platforms(self) -> dict[str, Platform]:
        """Each Node's platform, by name, from its `kubernetes.io/os` and `kubernetes.io/arch` labels; {}
        when Nodes may not be listed (the audit then judges on linux/amd64, or what `--platform` says)."""
        try:
            items = list(paged(self.core.list_node, _headers=_METADATA_LIST))
        except kubernetes.client.ApiException as exc:
            if exc.status == 403:
                return {}
            raise ClusterError(f"cannot list nodes: {exc.status} {exc.reason}") from None
        except OSError as exc:
            raise ClusterError(f"cannot list nodes: {exc}") from None
        found: dict[str, Platform] = {}
        for item in items:
            meta = item.get("metadata") or {}
            platform = node_platform(meta.get("labels") or {})
            if platform is not None:
                found[str(meta.get("name"))] = platform
        return found

    def namespace_labels(self, names: Sequence[str]) -> dict[str, dict[str, str]]:
        """Labels of each namespace (what `namespaceSelector` matches); {} for one that cannot be read."""
        found: dict[str, dict[str, str]] = {}
        for name in names:
            try:
                obj = _json(self.core.read_namespace(name, _preload_content=False))
            except kubernetes.client.ApiException:
                found[name] = {}
                continue
            except OSError as exc:
                raise ClusterError(f"cannot read namespace {name}: {exc}") from None
            found[name] = dict((obj.get("metadata") or {}).get("labels") or {})
        return found

    def policies(self) -> list[dict[str, Any]]:
        """The cluster's DistroPolicy objects as stored (status included)."""
        listed = paged(self.custom.list_cluster_custom_object, POLICY_GROUP, POLICY_VERSION, POLICY_PLURAL)
        return list(_read("DistroPolicies", listed))

    def distro_policies(self) -> list[DistroPolicy]:
        """The cluster's DistroPolicies, validated as a file's would be (without `status`, the cluster's)."""
        policies = []
        for item in self.policies():
            item.pop("status", None)
            name = (item.get("metadata") or {}).get("name", "?")
            policies.append(parse_policy(item, f"DistroPolicy {name}"))
        return sorted(policies, key=lambda p: p.name)

    def exceptions(self) -> list[dict[str, Any]]:
        """The cluster's DistroPolicyException objects, in every namespace; none when the kind is not served
        (a cluster whose CRDs predate it)."""
        listed = paged(self.custom.list_cluster_custom_object, POLICY_GROUP, POLICY_VERSION, EXCEPTION_PLURAL)
        try:
            return list(_read("DistroPolicyExceptions", listed))
        except ClusterError as exc:
            if " 404 " in f"{exc} ":
                return []
            raise

    def policy_exceptions(self) -> tuple[list[DistroPolicyException], list[str]]:
        """The cluster's valid DistroPolicyExceptions, and a problem line for each invalid one (left out, as
        the operator leaves it out)."""
        found: list[DistroPolicyException] = []
        problems: list[str] = []
        for item in self.exceptions():
            item.pop("status", None)
            metadata = item.get("metadata") or {}
            where = f"DistroPolicyException {metadata.get('namespace', '?')}/{metadata.get('name', '?')}"
            try:
                found.append(parse_exception(item, where))
            except InvalidException as exc:
                problems.append(" ".join(str(exc).split()))
        return sorted(found, key=lambda e: e.ref), problems

    # ------------------------------------------------------------------------------ pull secrets

    def pull_credentials(
        self, namespace: str, secrets: Sequence[str], service_account: str
    ) -> PullCredentials:
        """The pod's `imagePullSecrets` and its service account's, read from `namespace` only."""
        wanted = dict.fromkeys(secrets)
        problems: list[str] = []
        account = self._read(self.core.read_namespaced_service_account, service_account, namespace)
        if account is not None:
            refs = account.get("imagePullSecrets") or ()
            wanted.update(
                dict.fromkeys(str(r["name"]) for r in refs if isinstance(r, Mapping) and r.get("name"))
            )

        def read() -> Iterator[PullSecret]:
            for name in wanted:
                secret = self._read(self.core.read_namespaced_secret, name, namespace)
                if secret is None:
                    problems.append(f"image pull secret {namespace}/{name} cannot be read")
                    continue
                yield name, str(secret.get("type") or ""), secret.get("data") or {}

        store, fingerprint = from_pull_secrets(read(), namespace, problems)
        if store is None:
            return PullCredentials(problems=tuple(problems))
        return PullCredentials(store, fingerprint, tuple(problems))

    @staticmethod
    def _read(read: Callable[..., Any], name: str, namespace: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = _json(read(name, namespace, _preload_content=False))
        except kubernetes.client.ApiException:
            return None
        except OSError as exc:
            raise ClusterError(f"cannot read {namespace}/{name}: {exc}") from None
        return found
