"""`admit`: real images in `oci:` layouts, a real Resolver, the shipped policies, a fixed clock."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from distroguard.admission import AdmissionAnswer, admit, decode_review, opted_out, protected, respond
from distroguard.admission.decide import DecisionMemo
from distroguard.admission.decide import answer as answer_of
from distroguard.admission.review import MAX_WARNING_CHARS
from distroguard.admission.workloads import Container, Workload
from distroguard.eol import EolCatalog, bundled_snapshot
from distroguard.errors import DeadlineExceeded
from distroguard.model import DistroPolicy
from distroguard.model.facts import ImagePlatforms
from distroguard.model.platform import DEFAULT_PLATFORM
from distroguard.model.validation import parse_exception
from distroguard.policy import ContainerImage, EvaluationContext, evaluate
from distroguard.policy.exceptions import Exceptions
from distroguard.policyfiles import load_policies
from distroguard.registry.client import RegistryClient
from distroguard.resolver import Resolver
from support.admission import StaticCluster
from support.distros import ALPINE_ROOT, DEBIAN_12_ROOT
from support.images import ImageBuilder, write_oci_layout
from support.lifecycles import NOW, facts
from support.policies import policy
from support.reviews import container, pod_spec, review, workload

POLICIES = Path(__file__).parents[2] / "policies"
CATALOG = EolCatalog(bundled_snapshot())
NO_MUSL = {"name": "no-musl", "denyLibc": ["musl"]}


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("layouts")
    built = {
        "alpine": ImageBuilder().layer(ALPINE_ROOT).env("PYTHON_VERSION=3.12.8").build(),
        "debian": ImageBuilder().layer(DEBIAN_12_ROOT).build(),
    }
    return {name: f"oci:{write_oci_layout(root / name, image)}" for name, image in built.items()}


@pytest.fixture
async def resolver() -> AsyncIterator[Resolver]:
    async with RegistryClient() as client:
        resolver = Resolver(client)
        yield resolver
        await resolver.drain()


def no_musl() -> list[DistroPolicy]:
    return load_policies([POLICIES / "no-musl.yaml"])


def pod(*containers: dict[str, Any]) -> dict[str, Any]:
    return review(workload("Pod", pod_spec(*containers)))


async def decide(
    document: dict[str, Any], resolver: Resolver, policies: list[DistroPolicy], budget: float = 10.0
) -> AdmissionAnswer:
    return await admit(
        decode_review(document),
        StaticCluster(resolver),
        policies,
        CATALOG,
        budget=budget,
        now=NOW,
        local_images=True,
    )


async def test_deny_names_the_container_image_facts_and_remedy(
    images: dict[str, str], resolver: Resolver
) -> None:
    document = pod(container("app", images["alpine"]), container("db-proxy", images["debian"]))
    answer = await decide(document, resolver, no_musl())
    assert not answer.allowed
    assert answer.code == 403
    assert answer.decision is not None
    assert answer.decision.verdict == "deny"
    (finding,) = answer.decision.findings
    assert (finding.container, finding.image, finding.reason) == ("app", images["alpine"], "libc-denied")
    assert answer.message == finding.message
    assert answer.message.startswith(f'container "app" uses {images["alpine"]} (')
    assert "musl" in answer.message
    assert "glibc" in answer.message
    assert "db-proxy" not in answer.message
    response = respond("u-1", answer)["response"]
    assert response["uid"] == "u-1"
    assert response["status"] == {"code": 403, "message": answer.message}


async def test_every_offending_container_is_named_once(images: dict[str, str], resolver: Resolver) -> None:
    document = pod(container("app", images["alpine"]), container("worker", images["alpine"]))
    policies = [*no_musl(), policy("no-musl-again", NO_MUSL, action="deny")]
    answer = await decide(document, resolver, policies)
    lines = answer.message.splitlines()
    assert len(lines) == 4  # two containers x two policies
    assert sum('container "app"' in line for line in lines) == 2
    assert sum('container "worker"' in line for line in lines) == 2


@pytest.mark.parametrize(
    ("action", "allowed", "warned"),
    [("deny", False, False), ("warn", True, True), ("audit", True, False)],
)
async def test_actions_map_to_answers(
    images: dict[str, str], resolver: Resolver, action: str, allowed: bool, warned: bool
) -> None:
    answer = await decide(
        pod(container("app", images["alpine"])), resolver, [policy("musl", NO_MUSL, action=action)]
    )
    assert answer.allowed is allowed
    assert bool(answer.warnings) is warned
    if warned:
        assert answer.warnings[0].startswith('container "app" uses')
    if allowed:
        assert answer.message == ""
        assert "status" not in respond("u", answer)["response"]


async def test_warnings_accompany_a_denial(images: dict[str, str], resolver: Resolver) -> None:
    policies = [policy("deny-musl", NO_MUSL, action="deny"), policy("warn-musl", NO_MUSL, action="warn")]
    answer = await decide(pod(container("app", images["alpine"])), resolver, policies)
    assert not answer.allowed
    assert len(answer.warnings) == 1
    assert "warn-musl/no-musl" in answer.warnings[0]


async def test_glibc_images_pass(images: dict[str, str], resolver: Resolver) -> None:
    answer = await decide(pod(container("app", images["debian"])), resolver, no_musl())
    assert answer == AdmissionAnswer.allow()


async def test_dry_run_is_answered_the_same_way(images: dict[str, str], resolver: Resolver) -> None:
    document = pod(container("app", images["alpine"]))
    dry = copy.deepcopy(document)
    dry["request"]["dryRun"] = True
    first, second = await decide(document, resolver, no_musl()), await decide(dry, resolver, no_musl())
    assert (first.allowed, first.message, first.warnings) == (second.allowed, second.message, second.warnings)


@pytest.mark.parametrize(
    ("on_unresolved", "verdict", "action", "treated"),
    [
        ("allow", "allow", "audit", "allows"),
        ("warn", "warn", "warn", "warns about"),
        ("deny", "deny", "deny", "denies"),
    ],
)
async def test_an_image_that_cannot_be_read_follows_on_unresolved(
    tmp_path: Path, resolver: Resolver, on_unresolved: str, verdict: str, action: str, treated: str
) -> None:
    missing = f"oci:{tmp_path / 'nothing-here'}"
    policies = [policy("musl", NO_MUSL, action="deny", onUnresolved=on_unresolved)]
    answer = await decide(pod(container("app", missing)), resolver, policies)
    assert answer.decision is not None
    # allow and warn both admit with a warning; allow is counted as allowed (an audit finding), warn as warn.
    assert (answer.allowed, answer.decision.verdict) == (verdict != "deny", verdict)
    (finding,) = answer.decision.findings
    assert (finding.rule, finding.action, finding.reason) == ("onUnresolved", action, "unresolved")
    assert finding.message.startswith(
        f'container "app" uses {missing} (facts unknown): its image could not be inspected'
    )
    assert "no such OCI layout" in finding.message
    assert (
        f"policy musl {treated} images it cannot inspect (onUnresolved: {on_unresolved})" in finding.message
    )
    if answer.allowed:
        # A warning is shortened to what the API server passes on.
        (warning,) = answer.warnings
        assert warning[:-1] in finding.message
        assert "could not be inspected" in warning
    else:
        assert answer.message in finding.message
        assert answer.warnings == ()


def test_an_unknown_fact_of_an_inspected_image_under_on_unresolved_allow_is_silent() -> None:
    # The image was read, so the rules ran; only its C library is unknown: an audit finding, no warning.
    unknown_libc = facts("debian", "12", libc="unknown", libc_version=None)
    policies = [policy("musl", NO_MUSL, onUnresolved="allow")]
    decision = evaluate(
        [ContainerImage("app", "x:1", unknown_libc)], policies, EvaluationContext(now=NOW), CATALOG
    )
    assert [(f.rule, f.action, f.reason) for f in decision.findings] == [("no-musl", "audit", "libc-unknown")]
    assert answer_of(decision) == AdmissionAnswer.allow()


@pytest.mark.parametrize("on_unresolved", ["allow", "warn"])
def test_a_long_unresolved_reason_is_shortened_in_the_middle_of_the_warning(on_unresolved: str) -> None:
    reason = (
        "registry r.example.com: manifest r.example.com/app:1: " + "x" * 300 + " (gave up after 4 attempts)"
    )
    policies = [policy("musl", NO_MUSL, onUnresolved=on_unresolved)]
    decision = evaluate(
        [ContainerImage("app", "r.example.com/app:1", None, reason)],
        policies,
        EvaluationContext(now=NOW),
        CATALOG,
    )
    (warning,) = answer_of(decision).warnings
    treated = "allows" if on_unresolved == "allow" else "warns about"
    assert len(warning) == MAX_WARNING_CHARS
    assert warning.startswith(
        'container "app" uses r.example.com/app:1 (facts unknown): its image could not be inspected '
        "(registry r.example.com: manifest"
    )
    assert warning.count("…") == 1
    assert warning.endswith(
        f"xxx (gave up after 4 attempts)); policy musl {treated} images it cannot inspect "
        f"(onUnresolved: {on_unresolved})"
    )
    (finding,) = decision.findings
    assert reason in finding.message  # the finding itself keeps the whole reason, as do audit reports


def test_a_warning_too_long_before_its_reason_is_cut_at_the_end() -> None:
    image = "r.example.com/" + "a" * 250 + ":1"
    decision = evaluate(
        [ContainerImage("app", image, None, "timed out")],
        [policy("musl", NO_MUSL)],
        EvaluationContext(now=NOW),
        CATALOG,
    )
    (warning,) = answer_of(decision).warnings
    assert len(warning) == MAX_WARNING_CHARS
    assert warning == decision.findings[0].message[: MAX_WARNING_CHARS - 1] + "…"


async def test_out_of_budget_follows_on_unresolved_then_the_retry_is_answered(
    images: dict[str, str], resolver: Resolver
) -> None:
    document = pod(container("app", images["alpine"]))
    first = await decide(document, resolver, no_musl(), budget=0)
    assert first.allowed
    assert "not resolved within 0 s" in first.warnings[0]
    assert [type(error) for error in first.unresolved] == [DeadlineExceeded]
    await resolver.drain()  # the lookup went on in the background
    second = await decide(document, resolver, no_musl(), budget=10)
    assert not second.allowed
    assert "musl" in second.message


async def test_local_paths_are_not_read_unless_allowed(images: dict[str, str], resolver: Resolver) -> None:
    request = decode_review(pod(container("app", images["alpine"])))
    answer = await admit(request, StaticCluster(resolver), no_musl(), CATALOG, budget=10, now=NOW)
    assert answer.allowed  # no-musl warns about unresolved images
    assert "a local image path is not read by the admission controller" in answer.warnings[0]


@pytest.mark.parametrize(
    ("document", "code", "message"),
    [
        pytest.param(
            review(workload("ConfigMap", {})),
            400,
            "distroguard does not check v1 ConfigMap",
            id="unknown-kind",
        ),
        pytest.param(
            review(workload("Pod", pod_spec(*(container(f"c{i}", "busybox") for i in range(10_000))))),
            400,
            "distroguard cannot check this object: Pod shop/web: 10000 containers is more than",
            id="10000-containers",
        ),
    ],
)
async def test_what_cannot_be_checked_is_refused(
    document: dict[str, Any], resolver: Resolver, code: int, message: str
) -> None:
    answer = await decide(document, resolver, no_musl())
    assert (answer.allowed, answer.code) == (False, code)
    assert answer.message.startswith(message)


async def test_nothing_to_check_is_allowed_without_resolving(resolver: Resolver) -> None:
    old = workload("Deployment", pod_spec(container("app", "oci:/nonexistent")))
    answer = await decide(review(old, operation="UPDATE", old=old), resolver, no_musl())
    assert answer == AdmissionAnswer.allow()
    assert len(resolver.cache.failures) == 0


@pytest.mark.parametrize(
    ("namespace", "labels", "expected"),
    [
        ("kube-system", {}, True),
        ("distroguard", {}, True),
        ("shop", {"distroguard.dev/ignore": "true"}, True),
        ("shop", {"distroguard.dev/ignore": "false"}, False),
        ("shop", {}, False),
        (None, {}, False),
    ],
)
def test_excluded_namespaces(namespace: str | None, labels: dict[str, str], expected: bool) -> None:
    assert (protected(namespace, own_namespace="distroguard") or opted_out(labels)) is expected


@pytest.mark.parametrize(
    ("document", "namespace", "asked", "allowed"),
    [
        pytest.param(review(workload("Pod", pod_spec())), "kube-system", [], True, id="protected"),
        pytest.param(review(workload("Pod", pod_spec()), operation="DELETE"), "shop", [], True, id="delete"),
        pytest.param(review(workload("ConfigMap", {})), "shop", ["labels:shop"], False, id="not-handled"),
        pytest.param(review(workload("ConfigMap", {})), "quiet", ["labels:quiet"], True, id="opted-out"),
        pytest.param(
            review(workload("Pod", pod_spec(container("app", "oci:/nothing")))),
            "shop",
            ["labels:shop", "resolver:shop"],
            True,
            id="checked",
        ),
    ],
)
async def test_the_cluster_is_asked_only_what_the_answer_needs(
    resolver: Resolver, document: dict[str, Any], namespace: str, asked: list[str], allowed: bool
) -> None:
    document["request"]["namespace"] = namespace
    cluster = StaticCluster(resolver, {"quiet": {"distroguard.dev/ignore": "true"}})
    answer = await admit(
        decode_review(document), cluster, no_musl(), CATALOG, budget=1, now=NOW, own_namespace="distroguard"
    )
    assert answer.allowed is allowed
    assert cluster.asked == asked


# ------------------------------------------------------------------------------------- decision memo


def test_identical_reviews_share_one_decision_and_anything_that_matters_makes_a_new_one() -> None:
    memo = DecisionMemo()
    musl = facts("alpine", "3.21.0", libc="musl", libc_version="1.2.5").model_copy(
        update={"digest": "sha256:" + "a" * 64}
    )
    containers = [ContainerImage("app", "alpine:3.21", musl)]
    policies = [policy("no-musl", NO_MUSL)]
    context = EvaluationContext(now=NOW, namespace="shop", kind="Pod")
    first = memo.decide(containers, policies, context, CATALOG)
    assert first.verdict == "deny"
    assert memo.decide(list(containers), policies, context, CATALOG) is first
    assert first == evaluate(containers, policies, context, CATALOG)
    # A new policy snapshot, another namespace, another day, another image: evaluated again.
    assert memo.decide(containers, list(policies), context, CATALOG) is not first
    other_ns = EvaluationContext(now=NOW, namespace="other", kind="Pod")
    assert memo.decide(containers, policies, other_ns, CATALOG) is not first
    tomorrow = EvaluationContext(now=NOW + timedelta(days=1), namespace="shop", kind="Pod")
    assert memo.decide(containers, policies, tomorrow, CATALOG) is not first
    debian = [ContainerImage("app", "alpine:3.21", musl.model_copy(update={"digest": "sha256:" + "b" * 64}))]
    assert memo.decide(debian, policies, context, CATALOG) is not first
    # An image without facts is never remembered: the next review may have them.
    unresolved = [ContainerImage("app", "alpine:3.21", None, "deadline")]
    assert memo.decide(unresolved, policies, context, CATALOG) is not memo.decide(
        unresolved, policies, context, CATALOG
    )


def test_judged_containers_are_kept_while_each_image_has_the_very_same_answer() -> None:
    memo = DecisionMemo()
    pod = Workload(kind="Pod", containers=(Container("app", "shop/app:1", "containers"),))
    platforms = (DEFAULT_PLATFORM,)
    musl = facts("alpine", "3.21.0", libc="musl", libc_version="1.2.5")
    alpine = ImagePlatforms(("linux/amd64",), (musl,), single=True)
    first, owners = memo.judged(pod, platforms, "the cluster", "fast", {"shop/app:1": alpine})
    assert [(c.container, c.facts) for c in first] == [("app", musl)]
    assert list(owners) == [0]
    assert memo.judged(pod, platforms, "the cluster", "fast", {"shop/app:1": alpine})[0] is first
    # The image answered anew (its tag moved, its facts were learnt again): judged again, with them.
    debian = ImagePlatforms(("linux/amd64",), (facts("debian", "12"),), single=True)
    moved, _ = memo.judged(pod, platforms, "the cluster", "fast", {"shop/app:1": debian})
    assert [c.facts for c in moved] == [debian.facts[0]]
    # Equal platforms in another tuple (the nodes changed and changed back): judged again.
    again, _ = memo.judged(pod, (DEFAULT_PLATFORM,), "the cluster", "fast", {"shop/app:1": debian})
    assert again is not moved


async def test_identical_reviews_share_one_answer_equal_to_the_one_made_without_a_memo(
    images: dict[str, str], resolver: Resolver
) -> None:
    memo = DecisionMemo()
    document = review(workload("Deployment", pod_spec(container("app", images["alpine"]))))

    async def answered(memo: DecisionMemo | None, policies: list[DistroPolicy]) -> AdmissionAnswer:
        return await admit(
            decode_review(document),
            StaticCluster(resolver),
            policies,
            CATALOG,
            budget=10.0,
            now=NOW,
            local_images=True,
            memo=memo,
        )

    policies = no_musl()
    first = await answered(memo, policies)
    assert not first.allowed
    assert "musl" in first.message
    assert await answered(memo, policies) is first
    fresh = await answered(None, policies)
    assert (first, first.decision) == (fresh, fresh.decision)
    # Another policy snapshot: another decision, and its own answer.
    again = await answered(memo, list(policies))
    assert again is not first
    assert again.decision is not first.decision


async def test_a_remembered_decision_is_excepted_at_each_reviews_own_moment(
    images: dict[str, str], resolver: Resolver
) -> None:
    """The memo keeps what the policies say; the exception's end is judged at every review's `now`."""
    live = parse_exception(
        {
            "apiVersion": "distroguard.dev/v1alpha1",
            "kind": "DistroPolicyException",
            "metadata": {"name": "migrate", "namespace": "shop"},
            "spec": {
                "policies": [{"policyName": "no-musl"}],
                "match": {"kinds": ["Deployment"], "names": ["web"]},
                "expires": (NOW + timedelta(hours=1)).isoformat(),
                "reason": "moving to Debian",
            },
        },
        "test",
    )
    memo = DecisionMemo()
    document = review(workload("Deployment", pod_spec(container("app", images["alpine"]))))
    policies = no_musl()

    async def at(moment: Any) -> AdmissionAnswer:
        return await admit(
            decode_review(document),
            StaticCluster(resolver),
            policies,
            CATALOG,
            budget=10.0,
            now=moment,
            local_images=True,
            memo=memo,
            exceptions=Exceptions((live,)),
        )

    before = await at(NOW)
    assert before.allowed
    assert any("allowed by exception shop/migrate" in w for w in before.warnings)
    after = await at(NOW + timedelta(hours=1))  # the same day: the memo answers, the exception has ended
    assert not after.allowed
    assert "musl" in after.message
