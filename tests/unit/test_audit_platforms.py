"""Which platforms each audited workload is judged on: its pods' nodes', or as admission judges it."""

from __future__ import annotations

from distroguard.admission.workloads import Container
from distroguard.audit.inventory import AuditedWorkload, WorkloadRef, build_inventory
from distroguard.audit.platforms import ListedNodes, judging
from distroguard.model import Platform

AMD, ARM = Platform.parse("linux/amd64"), Platform.parse("linux/arm64")
NODES = ListedNodes({"a1": AMD, "r1": ARM})


def workload(
    nodes: tuple[str, ...] = (), *, unscheduled: bool = False, arch: tuple[str, ...] = ()
) -> AuditedWorkload:
    return AuditedWorkload(
        WorkloadRef("shop", "Pod", "web"),
        "pods",
        (Container("app", "python:3.12", "containers"),),
        1,
        nodes=nodes,
        unscheduled=unscheduled,
        architectures=arch,
    )


def test_scheduled_pods_are_judged_on_their_nodes_platforms() -> None:
    assert judging(workload(("r1",)), NODES) == ((ARM,), "its pods' nodes are linux/arm64")
    assert judging(workload(("a1", "r1")), NODES)[0] == (AMD, ARM)


def test_templates_and_unscheduled_pods_are_judged_as_admission_judges_them() -> None:
    assert judging(workload(unscheduled=True), NODES) == (
        (AMD, ARM),
        "the cluster's nodes are linux/amd64, linux/arm64",
    )
    assert judging(workload(unscheduled=True, arch=("arm64",)), NODES)[0] == (ARM,)
    platforms, where = judging(workload(("a1",), unscheduled=True, arch=("arm64",)), NODES)
    assert platforms == (AMD, ARM)
    assert where.startswith("its pods' nodes are linux/amd64; the pod is pinned to kubernetes.io/arch arm64")
    # A node not known (yet): judged as admission would.
    assert judging(workload(("gone",)), NODES)[0] == (AMD, ARM)


def test_a_fixed_list_ignores_the_nodes_and_no_nodes_means_linux_amd64() -> None:
    assert judging(workload(("r1",)), ListedNodes(NODES.nodes, fixed=(AMD,)))[0] == (AMD,)
    assert judging(workload(unscheduled=True), ListedNodes())[0] == (AMD,)


def pod(name: str, node: str | None) -> dict[str, object]:
    spec: dict[str, object] = {"containers": [{"name": "app", "image": "python:3.12"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name, "namespace": "shop"}, "spec": spec}


def test_the_inventory_knows_each_workloads_nodes_and_pins() -> None:
    found = build_inventory(
        [pod("a", "r1"), pod("b", None)],
        [],
    ).workloads
    by_name = {w.ref.name: w for w in found}
    assert (by_name["a"].nodes, by_name["a"].unscheduled) == (("r1",), False)
    assert (by_name["b"].nodes, by_name["b"].unscheduled) == ((), True)
    pinned = {
        "metadata": {"name": "c", "namespace": "shop"},
        "spec": {
            "nodeSelector": {"kubernetes.io/arch": "arm64"},
            "containers": [{"name": "app", "image": "x"}],
        },
    }
    (c,) = build_inventory([pinned], []).workloads
    assert c.architectures == ("arm64",)
