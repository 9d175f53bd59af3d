"""Pods of workload controllers (`admission.controlled`): the pure parts, and `admit` with a real Resolver,
real images in `oci:` layouts, the bundled EOL catalog (Debian 12's security support ends 2026-07-11) and
the cluster's answers about owners given by the test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from distroguard.admission import AdmissionAnswer, admit, decode_review
from distroguard.admission.controlled import (
    Controller,
    controller_of,
    judge_controlled,
    relax,
    relaxable,
    template_names,
)
from distroguard.admission.decide import DecisionMemo
from distroguard.eol import EolCatalog, bundled_snapshot
from distroguard.model import Decision, DistroPolicy, Finding
from distroguard.model.decision import ContainerVerdict
from distroguard.model.workloads import BY_KIND, Container, Workload
from distroguard.registry.client import RegistryClient
from distroguard.resolver import Resolver
from support.admission import StaticCluster
from support.distros import ALPINE_ROOT, DEBIAN_12_ROOT
from support.images import ImageBuilder, write_oci_layout
from support.policies import policy
from support.reviews import container, pod_spec, review, workload

CATALOG = EolCatalog(bundled_snapshot())
BEFORE = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
AFTER = datetime(2026, 7, 20, 12, 0, tzinfo=UTC)
"""Debian 12's regular security support ends on 2026-07-11 in the bundled catalog."""
SUPPORTED = {"name": "supported", "support": {}}
NO_MUSL = {"name": "no-musl", "denyLibc": ["musl"]}
RS = Controller(BY_KIND["ReplicaSet"], "shop", "web-7d9", "uid-rs-1")


def ref(
    kind: str = "ReplicaSet", name: str = "web-7d9", uid: str = "uid-rs-1", **extra: Any
) -> dict[str, Any]:
    group = {"ReplicaSet": "apps", "StatefulSet": "apps", "Deployment": "apps"}.get(kind, "")
    group = "batch" if kind in ("Job", "CronJob") else group
    return {
        "apiVersion": f"{group}/v1" if group else "v1",
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        **extra,
    }


def owned(obj: dict[str, Any], *refs: dict[str, Any]) -> dict[str, Any]:
    obj["metadata"]["ownerReferences"] = list(refs)
    return obj


# ------------------------------------------------------------------------------------------ pure parts


@pytest.mark.parametrize(
    ("refs", "expected"),
    [
        pytest.param([ref()], RS, id="replicaset"),
        pytest.param(
            [ref("StatefulSet", "db", "u2")], Controller(BY_KIND["StatefulSet"], "shop", "db", "u2"), id="sts"
        ),
        pytest.param(
            [ref("Job", "nightly", "u3")], Controller(BY_KIND["Job"], "shop", "nightly", "u3"), id="job"
        ),
        pytest.param(
            [ref(controller=False), ref("StatefulSet", "db", "u2")],
            Controller(BY_KIND["StatefulSet"], "shop", "db", "u2"),
            id="the-controller-among-owners",
        ),
        pytest.param([ref(controller=False)], None, id="not-a-controller"),
        pytest.param([{**ref(), "controller": "true"}], None, id="controller-not-a-boolean"),
        pytest.param([ref("Node", "node-1")], None, id="static-pod-of-a-node"),
        pytest.param([ref("Pod", "other")], None, id="a-pod"),
        pytest.param([{**ref(), "apiVersion": "example.com/v1"}], None, id="another-group"),
        pytest.param([{**ref(), "uid": ""}], None, id="no-uid"),
        pytest.param([{**ref(), "name": None}], None, id="no-name"),
        pytest.param(["junk"], None, id="malformed"),
        pytest.param([], None, id="bare"),
    ],
)
def test_the_controller_is_the_owner_reference_marked_so_to_a_workload_kind(
    refs: list[Any], expected: Controller | None
) -> None:
    obj = owned(workload("Pod", pod_spec(container("app", "debian:12"))), *refs)
    assert controller_of(obj, "shop") == expected


def test_no_controller_without_a_namespace_or_metadata() -> None:
    assert controller_of(owned(workload("Pod", pod_spec()), ref()), None) is None
    assert controller_of({"metadata": {"ownerReferences": "x"}}, "shop") is None
    assert controller_of({}, "shop") is None
    assert controller_of(None, "shop") is None
    assert str(RS) == "ReplicaSet shop/web-7d9"


def finding(policy_name: str, action: str, container_name: str = "app") -> Finding:
    return Finding(
        policy=policy_name,
        rule="r",
        action=action,  # type: ignore[arg-type]
        severity="high",
        reason="eol",
        message=f"container {container_name!r} fails {policy_name}",
        container=container_name,
        image="img",
        facts={"os": "debian 12"},
    )


def decision(*findings: Finding, containers: tuple[str, ...] = ("app", "side")) -> Decision:
    verdicts = []
    for name in containers:
        actions = [f.action for f in findings if f.container == name]
        verdict = "deny" if "deny" in actions else "warn" if "warn" in actions else "allow"
        verdicts.append(ContainerVerdict(name, "img", verdict))  # type: ignore[arg-type]
    overall = [v.verdict for v in verdicts]
    return Decision(
        "deny" if "deny" in overall else "warn" if "warn" in overall else "allow", tuple(verdicts), findings
    )


def test_only_deny_findings_of_policies_that_relax_controlled_pods_are_relaxable() -> None:
    relaxing = policy("relaxing", SUPPORTED)
    strict = policy("strict", SUPPORTED, controlledPods="same-as-policy")
    assert relaxing.spec.controlled_pods == "warn"  # the default
    policies = [relaxing, strict]
    assert relaxable(decision(finding("relaxing", "deny")), policies) == {"relaxing"}
    assert relaxable(decision(finding("strict", "deny")), policies) == frozenset()
    assert relaxable(decision(finding("relaxing", "warn")), policies) == frozenset()
    assert relaxable(decision(finding("relaxing", "deny"), finding("strict", "deny", "side")), policies) == {
        "relaxing"
    }
    assert relaxable(decision(), policies) == frozenset()


def test_relaxing_turns_denials_into_warnings_naming_the_owner() -> None:
    original = decision(finding("relaxing", "deny"), finding("relaxing", "audit", "side"))
    relaxed = relax(original, frozenset({"relaxing"}), RS)
    assert relaxed.verdict == "warn"
    assert [(c.container, c.verdict) for c in relaxed.containers] == [("app", "warn"), ("side", "allow")]
    first, second = relaxed.findings
    assert first.action == "warn"
    assert first.message == (
        "allowed: pod of ReplicaSet shop/web-7d9, whose template names the same images; "
        "would be denied now: container 'app' fails relaxing"
    )
    assert first.facts == {"os": "debian 12", "controller": "ReplicaSet shop/web-7d9"}
    assert second == original.findings[1]  # not a denial: kept as it was
    assert original.verdict == "deny"  # a new decision: the memoised one is never changed


def test_a_denial_of_a_policy_that_does_not_relax_still_denies() -> None:
    original = decision(finding("relaxing", "deny"), finding("strict", "deny", "side"))
    relaxed = relax(original, frozenset({"relaxing"}), RS)
    assert relaxed.verdict == "deny"
    assert [(c.container, c.verdict) for c in relaxed.containers] == [("app", "warn"), ("side", "deny")]
    assert [f.action for f in relaxed.findings] == ["warn", "deny"]


def test_the_template_must_name_the_same_image_for_every_container_checked() -> None:
    checked = Workload(
        "Pod", (Container("app", "reg/app:1", "containers"), Container("init", "reg/i:1", "initContainers"))
    )
    assert template_names(checked, {"app": "reg/app:1", "init": "reg/i:1", "other": "x"})
    assert not template_names(checked, {"app": "reg/app:2", "init": "reg/i:1"})
    assert not template_names(checked, {"app": "reg/app:1"})
    assert not template_names(checked, {})


class Lookup:
    def __init__(self, found: Mapping[str, str] | None) -> None:
        self.found = found
        self.asked: list[tuple[Controller, float]] = []

    async def controller_images(self, controller: Controller, *, budget: float) -> Mapping[str, str] | None:
        self.asked.append((controller, budget))
        return self.found


async def test_the_owner_is_read_only_for_a_denied_pod_with_a_controller() -> None:
    policies = [policy("relaxing", SUPPORTED)]
    checked = Workload("Pod", (Container("app", "img", "containers"),))
    pod = decode_review(review(owned(workload("Pod", pod_spec(container("app", "img"))), ref())))
    bare = decode_review(review(workload("Pod", pod_spec(container("app", "img")))))
    denied = decision(finding("relaxing", "deny"), containers=("app",))
    warned = decision(finding("relaxing", "warn"), containers=("app",))
    lookup = Lookup({"app": "img"})
    deadline = 1e12  # far away: whatever the clock says
    assert await judge_controlled(bare, checked, denied, policies, lookup, deadline=deadline) is denied
    assert await judge_controlled(pod, checked, warned, policies, lookup, deadline=deadline) is warned
    strict = [policy("relaxing", SUPPORTED, controlledPods="same-as-policy")]
    assert await judge_controlled(pod, checked, denied, strict, lookup, deadline=deadline) is denied
    assert lookup.asked == []
    relaxed = await judge_controlled(pod, checked, denied, policies, lookup, deadline=deadline)
    assert relaxed.verdict == "warn"
    ((asked, budget),) = lookup.asked
    assert asked == RS
    assert budget > 0
    # Past the deadline the lookup is still asked (a cached owner answers at once), with no time to wait.
    await judge_controlled(pod, checked, denied, policies, lookup, deadline=0.0)
    assert lookup.asked[-1] == (RS, 0.0)
    # Not confirmed, or other images: judged as a bare pod.
    assert await judge_controlled(pod, checked, denied, policies, Lookup(None), deadline=deadline) is denied
    other = Lookup({"app": "other"})
    assert await judge_controlled(pod, checked, denied, policies, other, deadline=deadline) is denied


# --------------------------------------------------------------------------------------------- admit


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("layouts")
    built = {
        "debian": ImageBuilder().layer(DEBIAN_12_ROOT).build(),
        "alpine": ImageBuilder().layer(ALPINE_ROOT).build(),
    }
    return {name: f"oci:{write_oci_layout(root / name, image)}" for name, image in built.items()}


@pytest.fixture
async def resolver() -> AsyncIterator[Resolver]:
    async with RegistryClient() as client:
        resolver = Resolver(client)
        yield resolver
        await resolver.drain()


async def decide(
    document: dict[str, Any],
    cluster: StaticCluster,
    policies: list[DistroPolicy],
    *,
    now: datetime = AFTER,
    memo: DecisionMemo | None = None,
) -> AdmissionAnswer:
    return await admit(
        decode_review(document),
        cluster,
        policies,
        CATALOG,
        budget=10.0,
        now=now,
        local_images=True,
        memo=memo,
    )


def pod_of(image: str, *owners: dict[str, Any]) -> dict[str, Any]:
    return review(owned(workload("Pod", pod_spec(container("app", image))), *owners))


async def test_a_pod_of_a_replicaset_whose_template_names_its_image_is_admitted_with_a_warning(
    images: dict[str, str], resolver: Resolver
) -> None:
    cluster = StaticCluster(resolver, controllers={RS: {"app": images["debian"]}})
    policies = [policy("supported-distro", SUPPORTED)]
    # Before the date the pod passes, and nobody reads its owner.
    before = await decide(pod_of(images["debian"], ref()), cluster, policies, now=BEFORE)
    assert before.allowed
    assert before.warnings == ()
    assert cluster.asked == ["labels:shop", "resolver:shop"]
    # After it, the owner confirms the pod: a warning naming the owner and what would be denied.
    cluster.asked.clear()
    after = await decide(pod_of(images["debian"], ref()), cluster, policies)
    assert after.allowed, after.message
    assert after.decision is not None
    assert after.decision.verdict == "warn"
    (warning,) = after.warnings
    assert warning.startswith(
        "allowed: pod of ReplicaSet shop/web-7d9, whose template names the same images; would be denied "
        'now: container "app" uses '
    )
    assert "Debian 12" in warning  # cut at the warnings' length: the decision holds the whole message
    (relaxed,) = after.decision.findings
    assert (relaxed.action, relaxed.facts["controller"]) == ("warn", "ReplicaSet shop/web-7d9")
    assert "past the end of security support (since 2026-07-11)" in relaxed.message
    assert cluster.asked == ["labels:shop", "resolver:shop", "controller:ReplicaSet shop/web-7d9"]


async def test_what_the_owner_does_not_confirm_is_judged_as_a_bare_pod(
    images: dict[str, str], resolver: Resolver
) -> None:
    policies = [policy("supported-distro", SUPPORTED)]
    cluster = StaticCluster(
        resolver,
        controllers={
            RS: {"app": images["alpine"]},  # its template names another image
            Controller(BY_KIND["StatefulSet"], "shop", "db", "uid-db"): {"app": images["debian"]},
        },
    )
    for document, why in [
        (review(workload("Pod", pod_spec(container("app", images["debian"])))), "a bare pod"),
        (pod_of(images["debian"], ref()), "a template naming another image"),
        (pod_of(images["debian"], ref("StatefulSet", "db", "uid-other")), "an owner with another uid"),
        (pod_of(images["debian"], ref("StatefulSet", "gone", "uid-gone")), "an owner that does not exist"),
        (pod_of(images["debian"], ref("Node", "node-1")), "an owner of a kind not in the table"),
    ]:
        answer = await decide(document, cluster, policies)
        assert not answer.allowed, why
        assert "past the end of security support" in answer.message, why
        assert "allowed: pod of" not in " ".join(answer.warnings), why


async def test_a_policy_with_controlled_pods_policy_denies_the_owned_pod_without_reading_its_owner(
    images: dict[str, str], resolver: Resolver
) -> None:
    cluster = StaticCluster(resolver, controllers={RS: {"app": images["debian"]}})
    policies = [policy("supported-distro", SUPPORTED, controlledPods="same-as-policy")]
    answer = await decide(pod_of(images["debian"], ref()), cluster, policies)
    assert not answer.allowed
    assert "past the end of security support" in answer.message
    assert cluster.asked == ["labels:shop", "resolver:shop"]


async def test_controlled_pods_deny_makes_a_warn_policy_deny_an_owned_pod_but_not_a_bare_one(
    images: dict[str, str], resolver: Resolver
) -> None:
    cluster = StaticCluster(resolver, controllers={RS: {"app": images["debian"]}})
    policies = [policy("supported-distro", SUPPORTED, action="warn", controlledPods="deny")]
    owned = await decide(pod_of(images["debian"], ref()), cluster, policies)
    assert not owned.allowed
    assert "past the end of security support" in owned.message
    assert owned.decision is not None
    assert [f.facts.get("controlledPods") for f in owned.decision.findings] == ["deny"]
    assert "controller" not in " ".join(cluster.asked)  # nothing to confirm: no owner is read
    bare = await decide(pod_of(images["debian"]), cluster, policies)
    assert bare.allowed
    assert any("past the end of security support" in w for w in bare.warnings)


async def test_a_policy_that_does_not_relax_still_denies_an_owned_pod_that_another_relaxes(
    images: dict[str, str], resolver: Resolver
) -> None:
    cluster = StaticCluster(resolver, controllers={RS: {"app": images["alpine"]}})
    policies = [
        policy("supported-distro", SUPPORTED),
        policy("no-musl", NO_MUSL, controlledPods="same-as-policy"),
    ]
    answer = await decide(pod_of(images["alpine"], ref()), cluster, policies, now=BEFORE)
    assert not answer.allowed
    assert "musl" in answer.message
    assert answer.decision is not None
    assert {f.policy: f.action for f in answer.decision.findings}["no-musl"] == "deny"


async def test_a_job_that_a_cronjob_starts_from_its_template_is_admitted_with_a_warning(
    images: dict[str, str], resolver: Resolver
) -> None:
    """One level up: a CronJob admitted before the date keeps starting its Jobs after it."""
    cronjob = Controller(BY_KIND["CronJob"], "shop", "nightly", "uid-cj")
    cluster = StaticCluster(resolver, controllers={cronjob: {"app": images["debian"]}})
    policies = [policy("supported-distro", SUPPORTED)]
    job = owned(
        workload("Job", pod_spec(container("app", images["debian"]))), ref("CronJob", "nightly", "uid-cj")
    )
    answer = await decide(review(job), cluster, policies)
    assert answer.allowed, answer.message
    (warning,) = answer.warnings
    assert warning.startswith("allowed: Job of CronJob shop/nightly, whose template names the same images;")
    assert cluster.asked[-1] == "controller:CronJob shop/nightly"


async def test_a_workload_without_a_confirmed_controller_is_judged_as_today(
    images: dict[str, str], resolver: Resolver
) -> None:
    cluster = StaticCluster(resolver, controllers={RS: {"app": images["debian"]}})
    policies = [policy("supported-distro", SUPPORTED)]
    bare = review(workload("Deployment", pod_spec(container("app", images["debian"]))))
    assert not (await decide(bare, cluster, policies)).allowed
    assert not any(a.startswith("controller:") for a in cluster.asked)
    # A ReplicaSet whose Deployment (not found here) would have to name its images.
    rs = owned(workload("ReplicaSet", pod_spec(container("app", images["debian"]))), ref("Deployment"))
    assert not (await decide(review(rs), cluster, policies)).allowed
    assert cluster.asked[-1] == "controller:Deployment shop/web-7d9"


async def test_the_memoised_decision_is_not_the_relaxed_one(
    images: dict[str, str], resolver: Resolver
) -> None:
    """The memo keys on the containers, not the owner: an owned pod and a bare pod with the same image share
    one memoised decision, and each is answered for itself."""
    memo = DecisionMemo()
    cluster = StaticCluster(resolver, controllers={RS: {"app": images["debian"]}})
    policies = [policy("supported-distro", SUPPORTED)]
    bare = review(workload("Pod", pod_spec(container("app", images["debian"]))))
    assert (await decide(pod_of(images["debian"], ref()), cluster, policies, memo=memo)).allowed
    assert not (await decide(bare, cluster, policies, memo=memo)).allowed
    assert (await decide(pod_of(images["debian"], ref()), cluster, policies, memo=memo)).allowed
