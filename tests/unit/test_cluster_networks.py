"""The cluster's service and pod networks, as the watches learn them, refused by the registry guard."""

from __future__ import annotations

import ipaddress
from typing import Any

import kubernetes

from distroguard.operator.clusternetworks import POD_NETWORK, SERVICE_NETWORK, PodNetworks, ServiceNetworks
from distroguard.registry.addresses import AccessPolicy, ClusterNetworks


def node(name: str, *cidrs: str, legacy: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"podCIDRs": list(cidrs)} if cidrs else {}
    if legacy:
        spec["podCIDR"] = legacy
    return {"metadata": {"name": name, "labels": {"kubernetes.io/arch": "amd64"}}, "spec": spec}


def service_cidr(name: str, *cidrs: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"cidrs": list(cidrs)}}


def test_pod_networks_follow_the_nodes() -> None:
    refused = ClusterNetworks()
    access = AccessPolicy(refused=refused)
    pods = PodNetworks(kubernetes.client.ApiClient(), refused)
    pods.listed([node("a", "10.244.0.0/24", "fd00:10:244::/64"), node("b", "10.244.1.0/24"), node("c")])
    assert refused.networks(POD_NETWORK) == (
        ipaddress.ip_network("10.244.0.0/23"),
        ipaddress.ip_network("fd00:10:244::/64"),
    )
    assert access.refusal("10.244.1.7") is not None
    pods.changed("ADDED", node("d", legacy="10.250.0.0/24"))  # clusters before dual-stack
    assert access.refusal("10.250.0.3") is not None
    pods.changed("DELETED", node("b", "10.244.1.0/24"))
    assert access.refusal("10.244.1.7") is None
    assert access.refusal("10.244.0.7") is not None
    pods.changed("MODIFIED", node("a", "not-a-cidr"))  # ignored, with a warning
    assert access.refusal("10.244.0.7") is None


def test_service_networks_follow_the_service_cidrs_and_add_to_the_configured_ones() -> None:
    refused = ClusterNetworks([ipaddress.ip_network("172.30.0.0/16")])
    access = AccessPolicy(refused=refused)
    services = ServiceNetworks(kubernetes.client.ApiClient(), refused)
    services.listed([service_cidr("kubernetes", "10.96.0.0/12", "fd00:10:96::/112")])
    assert "the cluster's service network" in (access.refusal("10.96.0.1") or "")
    assert "the cluster's service network" in (access.refusal("fd00:10:96::1") or "")
    assert "--registry-deny" in (access.refusal("172.30.4.4") or "")
    services.changed("ADDED", service_cidr("extra", "10.200.0.0/16"))
    assert access.refusal("10.200.9.9") is not None
    services.changed("DELETED", service_cidr("extra", "10.200.0.0/16"))
    assert access.refusal("10.200.9.9") is None
    assert refused.networks(SERVICE_NETWORK) == (
        ipaddress.ip_network("10.96.0.0/12"),
        ipaddress.ip_network("fd00:10:96::/112"),
    )
    assert access.refusal("10.1.2.3") is None  # an on-premises registry


def test_a_cluster_without_service_cidrs_ends_that_watch_quietly() -> None:
    class NotServed(Exception):
        status = 404

    calls: list[dict[str, Any]] = []

    def list_call(**kwargs: Any) -> Any:
        calls.append(kwargs)
        raise NotServed

    refused = ClusterNetworks()
    services = ServiceNetworks(kubernetes.client.ApiClient(), refused)
    services._list_call = list_call
    services._run()  # returns: the thread would end
    assert len(calls) == 1
    assert calls[0]["_headers"] == {}  # whole objects: the spec says the networks
    assert refused.networks(SERVICE_NETWORK) == ()
