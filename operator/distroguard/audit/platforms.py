"""The platforms each audited workload's images are judged on.

A scheduled pod runs on its node's platform, so a workload's pods are judged on their nodes' platforms
(the `kubernetes.io/os` and `kubernetes.io/arch` labels of each); a workload audited through its template,
or with a pod not on a node yet (or on a node whose platform is unknown), is also judged as admission
judges it: on the cluster's platforms, or the architecture its pod spec pins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from distroguard.audit.inventory import AuditedWorkload
from distroguard.model import Platform
from distroguard.model.platform import DEFAULT_PLATFORM
from distroguard.policy.platforms import nodes_text, platforms_for

Judging = tuple[tuple[Platform, ...], str]
"""The platforms a workload's images are judged on, and how a message names them."""


class NodeView(Protocol):
    """What the audit needs to know of the cluster's Nodes (`operator.nodeplatforms` fits)."""

    def current(self) -> tuple[Platform, ...]:
        """The platforms that matter: the Nodes' (linux/amd64 without any), or a fixed list."""

    def platform_of(self, node: str) -> Platform | None:
        """The platform of the Node named `node`; None when it is not known."""


@dataclass(frozen=True, slots=True)
class ListedNodes:
    """The Nodes listed once (`distroguard audit`): their platforms by name; `fixed` (from `--platform`)
    stands for the cluster's platforms and ignores the nodes'."""

    nodes: Mapping[str, Platform] = field(default_factory=dict)
    fixed: tuple[Platform, ...] | None = None

    def current(self) -> tuple[Platform, ...]:
        if self.fixed is not None:
            return self.fixed
        return tuple(sorted(set(self.nodes.values()), key=str)) or (DEFAULT_PLATFORM,)

    def platform_of(self, node: str) -> Platform | None:
        return None if self.fixed is not None else self.nodes.get(node)


def judging(workload: AuditedWorkload, view: NodeView) -> Judging:
    """The platforms `workload`'s images are judged on (see the module's docstring)."""
    found = [view.platform_of(node) for node in workload.nodes]
    known = tuple(sorted({p for p in found if p is not None}, key=str))
    if known and not workload.unscheduled and None not in found:
        return known, nodes_text(known)
    platforms, where = platforms_for(workload.architectures, view.current())
    if not known:
        return platforms, where
    both = tuple(sorted({*known, *platforms}, key=str))
    return both, f"{nodes_text(known)}; {where}"
