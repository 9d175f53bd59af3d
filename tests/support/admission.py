"""`AdmissionCluster`s for tests and benchmarks that call `admit` without an operator.

- `StaticCluster`: fixed namespace labels, and one resolver (routed as the operator routes it, with no
  credentials) for every workload;
- `PoolCluster`: a `ResolverPool`'s anonymous routing, and each namespace's share of cold lookups
  (`ColdLookups`) as `distroguard run` wires them, or no share at all."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from distroguard.admission import Workload
from distroguard.admission.controlled import Controller
from distroguard.model import Platform
from distroguard.resolver import Resolver
from distroguard.resolver.fairness import ColdLookups
from distroguard.resolver.routing import NO_CREDENTIALS, ResolverPool, RoutedResolver


class StaticCluster:
    def __init__(
        self,
        resolver: Resolver,
        labels: Mapping[str, Mapping[str, str]] | None = None,
        platforms: Sequence[str] = ("linux/amd64",),
        controllers: Mapping[Controller, Mapping[str, str]] | None = None,
    ) -> None:
        self.routed = RoutedResolver(resolver)
        self.labels = labels or {}
        self.nodes = tuple(Platform.parse(p) for p in platforms)
        """The platforms of the cluster's nodes, as `platforms()` tells them (change it between reviews)."""
        self.controllers = dict(controllers or {})
        """The pod controllers that exist: their templates' images by container name."""
        self.asked: list[str] = []
        """What was asked, in order: `labels:NAMESPACE`, `resolver:NAMESPACE`, `controller:KIND NS/NAME`."""

    async def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        self.asked.append(f"labels:{namespace}")
        return self.labels.get(namespace, {})

    async def resolver(self, namespace: str | None, workload: Workload) -> RoutedResolver:
        self.asked.append(f"resolver:{namespace}")
        return self.routed

    def platforms(self) -> tuple[Platform, ...]:
        return self.nodes

    async def controller_images(self, controller: Controller, *, budget: float) -> Mapping[str, str] | None:
        self.asked.append(f"controller:{controller}")
        return self.controllers.get(controller)


class PoolCluster:
    def __init__(self, pool: ResolverPool, cold: ColdLookups | None) -> None:
        self.pool, self.cold = pool, cold

    async def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        return {}

    def platforms(self) -> tuple[Platform, ...]:
        return (Platform(),)

    async def controller_images(self, controller: Controller, *, budget: float) -> Mapping[str, str] | None:
        return None

    async def resolver(self, namespace: str | None, workload: object) -> RoutedResolver:
        routed = await self.pool.resolver(namespace or "", NO_CREDENTIALS)
        if self.cold is None or namespace is None:
            return routed
        return dataclasses.replace(routed, gate=self.cold.gate(namespace))
