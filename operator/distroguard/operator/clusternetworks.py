"""The cluster's service and pod networks, learnt from the API for the registry guard.

Whoever creates a pod chooses the registry, and so an address distroguard connects to from its own pod; the
cluster's Services and pods are reachable from there, a registry lookup must not be a way to them. The
service networks are the `networking.k8s.io/v1` ServiceCIDR objects (the API server makes the default one
from `--service-cluster-ip-range`; clusters before 1.33 may not serve them, and then only `--registry-deny`
names them); the pod networks are the Nodes' `spec.podCIDRs` (set by the node IPAM controller; CNIs with
their own IPAM may leave them empty, `--registry-deny` again). Both come from watches of whole objects in
daemon threads (`metawatch`: a Node's spec is not in its metadata), published to a shared
`ClusterNetworks` that every registry client's resolver reads.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import kubernetes

from distroguard.operator.metawatch import Metadata, MetadataWatch
from distroguard.registry.addresses import ClusterNetworks, IPNetwork

logger = logging.getLogger(__name__)

SERVICE_NETWORK = "service network"
POD_NETWORK = "pod network"


def _networks(texts: Iterable[Any]) -> list[IPNetwork]:
    found: list[IPNetwork] = []
    for text in texts:
        try:
            found.append(ipaddress.ip_network(str(text), strict=False))
        except ValueError:
            logger.warning("ignoring a network that is not a CIDR: %.60r", text)
    return found


class _CidrWatch(MetadataWatch):
    """Each object's CIDRs (found by `cidrs_of`), published to `refused` under `source` as their union."""

    whole_objects = True

    def __init__(self, list_call: Any, what: str, source: str, refused: ClusterNetworks) -> None:
        super().__init__(list_call, what)
        self._source = source
        self._refused = refused
        self._by_name: dict[str, tuple[IPNetwork, ...]] = {}

    def cidrs_of(self, obj: Mapping[str, Any]) -> Sequence[Any]:
        raise NotImplementedError

    def listed(self, items: Sequence[Metadata]) -> None:
        self._by_name = {self._name(obj): tuple(_networks(self.cidrs_of(obj))) for obj in items}
        self._publish()

    def changed(self, kind: str, metadata: Metadata) -> None:
        by_name = dict(self._by_name)
        name = self._name(metadata)
        if kind == "DELETED":
            by_name.pop(name, None)
        else:
            by_name[name] = tuple(_networks(self.cidrs_of(metadata)))
        if by_name != self._by_name:
            self._by_name = by_name
            self._publish()

    def not_served(self) -> None:
        logger.info("%s: not served by this cluster; --registry-deny names it", self._source)

    @staticmethod
    def _name(obj: Mapping[str, Any]) -> str:
        return str((obj.get("metadata") or {}).get("name") or "")

    def _publish(self) -> None:
        before = self._refused.networks(self._source)
        self._refused.learn(self._source, [n for networks in self._by_name.values() for n in networks])
        after = self._refused.networks(self._source)
        if after != before:
            logger.info(
                "registry guard: the cluster's %s: %s", self._source, ", ".join(map(str, after)) or "none"
            )


class ServiceNetworks(_CidrWatch):
    def __init__(self, api: Any, refused: ClusterNetworks) -> None:
        networking: Any = kubernetes.client.NetworkingV1Api(api)
        super().__init__(networking.list_service_cidr, "servicecidr", SERVICE_NETWORK, refused)

    def cidrs_of(self, obj: Mapping[str, Any]) -> Sequence[Any]:
        return list((obj.get("spec") or {}).get("cidrs") or [])


class PodNetworks(_CidrWatch):
    def __init__(self, api: Any, refused: ClusterNetworks) -> None:
        core: Any = kubernetes.client.CoreV1Api(api)
        super().__init__(core.list_node, "node networks", POD_NETWORK, refused)

    def cidrs_of(self, obj: Mapping[str, Any]) -> Sequence[Any]:
        spec = obj.get("spec") or {}
        return list(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []))


class LearntNetworks:
    """Both watches, started and stopped together."""

    def __init__(self, api: Any, refused: ClusterNetworks) -> None:
        self.refused = refused
        self._watches = (ServiceNetworks(api, refused), PodNetworks(api, refused))

    def start(self) -> None:
        for watch in self._watches:
            watch.start()

    def stop(self) -> None:
        for watch in self._watches:
            watch.stop()
