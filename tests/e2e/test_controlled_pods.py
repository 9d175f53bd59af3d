"""A date that passes under running workloads, end to end: `distroguard run --dev --role all` against the
real kube-apiserver, with its clock in a file (`--dev-clock`) moved by the test, an image of Debian 12 in
the real registry (its regular security support ends on 2026-07-11 in the bundled catalog), and a policy
that denies a release past it.

The test control plane runs no controllers: the test creates a Deployment's ReplicaSet and the ReplicaSet's
pods itself, with the owner references a controller would set. A pod whose controller's template names its
image is admitted with a warning after the date (`controlledPods: warn`, the default); a new Deployment, a
bare pod, a pod whose owner's template names another image, or an owner reference with another uid are
judged as today (denied); `controlledPods: same-as-policy` judges the owned pod as a bare pod, and
`controlledPods: deny` denies it even under a warn policy. A CronJob admitted before the date starts its
Jobs after it. The audit, in the same process, reports the workload failing
while its pods stay.

Every namespace made here is removed with its contents at the end of its test (`support.scratch`), and
every policy made here is deleted by label.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from distroguard.operator.clock import write_moment
from support.distros import DEBIAN_12_ROOT
from support.images import ImageBuilder, push
from support.kube import ControlPlane
from support.manifests import deployment
from support.operator_process import OperatorProcess, running_operator
from support.polling import eventually
from support.registry_server import RegistryServer
from support.scratch import Scratch

pytestmark = [pytest.mark.e2e, pytest.mark.registry]

BEFORE = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
AFTER = datetime(2026, 7, 20, 12, 0, tzinfo=UTC)
"""Either side of Debian 12's end of regular security support (2026-07-11) in the bundled catalog."""
DENIED_NOW = "past the end of security support"
LABELS = {"e2e.distroguard.dev/module": "controlled-pods"}
"""On every policy made here: removed after each test (policies are cluster-wide)."""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def images(registry: RegistryServer) -> dict[str, str]:
    """One Debian 12 image under two tags: two image references a template can name."""
    repo = unique("e2e/bookworm")
    image = ImageBuilder().layer(DEBIAN_12_ROOT).build()
    for tag in ("1", "2"):
        asyncio.run(push(registry.url, repo, tag, image))
    return {"debian": f"{registry.address}/{repo}:1", "debian-other-tag": f"{registry.address}/{repo}:2"}


@pytest.fixture(scope="module")
def clock(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clock") / "now"
    write_moment(path, BEFORE)
    return path


@pytest.fixture(scope="module")
def distroguard(
    kube: ControlPlane, clock: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    args = [
        *("--dev-clock", str(clock)),
        *("--role", "all", "--audit-debounce", "0.5"),
        *("--metrics-listen", "127.0.0.1", "--metrics-port", "0"),
    ]
    with running_operator(
        kube, "distroguard-controlled", tmp_path_factory.mktemp("distroguard"), args
    ) as process:
        yield process


@pytest.fixture(autouse=True)
def _remove_policies(kube: ControlPlane) -> Iterator[None]:
    yield
    selector = ",".join(f"{key}={value}" for key, value in LABELS.items())
    kube.kubectl("delete", "distropolicies", "-l", selector, "--ignore-not-found", check=False)


# ------------------------------------------------------------------------------------------- helpers


def supported_policy(ns: str, **spec: Any) -> dict[str, Any]:
    """Deny a distribution release past its regular security support, in namespace `ns` only."""
    return {
        "apiVersion": "distroguard.dev/v1alpha1",
        "kind": "DistroPolicy",
        "metadata": {"name": unique("supported"), "labels": LABELS},
        "spec": {
            "action": "deny",
            "match": {"namespaces": [ns]},
            "rules": [{"name": "supported", "support": {}}],
            **spec,
        },
    }


def owner_ref(obj: dict[str, Any]) -> dict[str, Any]:
    """The controller owner reference a controller sets on what it makes from `obj`."""
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
    }


def replica_set(owner: dict[str, Any], name: str) -> dict[str, Any]:
    """What the Deployment controller would make of `owner`: a ReplicaSet with its template."""
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": owner["metadata"]["namespace"],
            "ownerReferences": [owner_ref(owner)],
        },
        "spec": {
            "replicas": 1,
            "selector": owner["spec"]["selector"],
            "template": owner["spec"]["template"],
        },
    }


def pod_of(ns: str, name: str, image: str, owner: dict[str, Any] | None) -> dict[str, Any]:
    """A pod running `image` in container `app`, made by `owner` (None: a bare pod)."""
    metadata: dict[str, Any] = {"name": name, "namespace": ns, "labels": {"app": "web"}}
    if owner is not None:
        metadata["ownerReferences"] = [owner_ref(owner)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


def create(kube: ControlPlane, manifest: dict[str, Any], *, dry_run: bool = False) -> Any:
    args = ["create", "-f", "-", "-o", "json", *(["--dry-run=server"] if dry_run else [])]
    return kube.kubectl(*args, input=json.dumps(manifest), check=False)


def warnings_of(stderr: str) -> list[str]:
    return [line.removeprefix("Warning: ") for line in stderr.splitlines() if line.startswith("Warning: ")]


def in_force(kube: ControlPlane, clock: Path, ns: str, image: str) -> None:
    """Until the policy reaches distroguard's watch: a bare pod is refused after the date. The clock is
    left before the date."""
    write_moment(clock, AFTER)
    try:

        def denied() -> bool:
            done = create(kube, pod_of(ns, "probe", image, None), dry_run=True)
            return done.returncode != 0 and DENIED_NOW in done.stderr

        eventually(denied, what="the policy refuses a bare pod after the date")
    finally:
        write_moment(clock, BEFORE)


def admitted_before_the_date(
    kube: ControlPlane, ns: str, image: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Deployment and its ReplicaSet, admitted before the date (as the clock stands), with one pod."""
    made = create(kube, deployment(ns, "web", image))
    assert made.returncode == 0, made.stderr
    assert warnings_of(made.stderr) == []
    web = json.loads(made.stdout)
    made = create(kube, replica_set(web, "web-7d9"))
    assert made.returncode == 0, made.stderr
    rs = json.loads(made.stdout)
    made = create(kube, pod_of(ns, "web-7d9-first", image, rs))
    assert made.returncode == 0, made.stderr
    return web, rs


# ------------------------------------------------------------------------------------------------ tests


def test_a_replacement_pod_is_admitted_with_a_warning_after_the_date_and_the_rest_is_judged_as_today(
    kube: ControlPlane, scratch: Scratch, distroguard: OperatorProcess, clock: Path, images: dict[str, str]
) -> None:
    ns = scratch.namespace("controlled")
    image = images["debian"]
    kube.create(supported_policy(ns))
    in_force(kube, clock, ns, image)
    web, rs = admitted_before_the_date(kube, ns, image)

    write_moment(clock, AFTER)
    # The ReplicaSet replaces its pod (a node drained): admitted, with a warning naming it and saying why.
    replacement = create(kube, pod_of(ns, "web-7d9-second", image, rs))
    assert replacement.returncode == 0, replacement.stderr
    (warning,) = warnings_of(replacement.stderr)
    assert warning.startswith(
        f"allowed: pod of ReplicaSet {ns}/web-7d9, whose template names the same images; "
        f'would be denied now: container "app" uses {image} (Debian 12'
    ), warning  # the rest is cut at the length the API server keeps of a warning

    # A new Deployment of the same image: its template is where the policy is enforced.
    fresh = create(kube, deployment(ns, "web-next", image))
    assert fresh.returncode != 0
    assert DENIED_NOW in fresh.stderr
    # A bare pod.
    bare = create(kube, pod_of(ns, "bare", image, None))
    assert bare.returncode != 0
    assert DENIED_NOW in bare.stderr
    # A pod of the ReplicaSet naming an image its template does not name.
    other = create(kube, pod_of(ns, "web-7d9-edited", images["debian-other-tag"], rs))
    assert other.returncode != 0
    assert DENIED_NOW in other.stderr
    assert "allowed: pod of" not in other.stderr
    # An owner reference whose uid is not the ReplicaSet's (one deleted and made again under its name).
    impostor = {**rs, "metadata": {**rs["metadata"], "uid": str(uuid.uuid4())}}
    forged = create(kube, pod_of(ns, "web-7d9-forged", image, impostor))
    assert forged.returncode != 0
    assert DENIED_NOW in forged.stderr

    # The audit shows both: the workload fails in its report, and its pods are left running.
    def failing() -> Any:
        found = kube.kubectl_json("get", "policyreports", "-n", ns)["items"]
        report = next((r for r in found if r["scope"]["name"] == "web"), None)
        results = [r for r in (report or {}).get("results", ()) if r["rule"] == "supported"]
        return report if results and all(r["result"] == "fail" for r in results) else None

    report = eventually(failing, what="the Deployment's report fails after the date")
    assert report["scope"]["kind"] == "Deployment"
    assert report["scope"]["uid"] == web["metadata"]["uid"]

    def violation() -> list[dict[str, Any]]:
        found = kube.kubectl_json("get", "events", "-n", ns)["items"]
        return [
            e
            for e in found
            if e["reason"] == "DistroPolicyViolation"
            and e["involvedObject"]["name"] == "web"
            and DENIED_NOW in e["message"]
        ]

    (event, *_) = eventually(violation, what="a Warning event on the Deployment")
    assert event["involvedObject"]["kind"] == "Deployment"
    pods = {p["metadata"]["name"] for p in kube.kubectl_json("get", "pods", "-n", ns)["items"]}
    assert pods == {"web-7d9-first", "web-7d9-second"}


def test_controlled_pods_same_as_policy_judges_a_replacement_pod_as_a_bare_pod(
    kube: ControlPlane, scratch: Scratch, distroguard: OperatorProcess, clock: Path, images: dict[str, str]
) -> None:
    ns = scratch.namespace("strict")
    image = images["debian"]
    kube.create(supported_policy(ns, controlledPods="same-as-policy"))
    in_force(kube, clock, ns, image)
    _, rs = admitted_before_the_date(kube, ns, image)

    write_moment(clock, AFTER)
    replacement = create(kube, pod_of(ns, "web-7d9-second", image, rs))
    assert replacement.returncode != 0
    assert DENIED_NOW in replacement.stderr
    assert "allowed: pod of" not in replacement.stderr


def test_controlled_pods_deny_refuses_a_replacement_pod_even_under_a_warn_policy(
    kube: ControlPlane, scratch: Scratch, distroguard: OperatorProcess, clock: Path, images: dict[str, str]
) -> None:
    ns = scratch.namespace("deny")
    image = images["debian"]
    kube.create(supported_policy(ns, action="warn", controlledPods="deny"))
    write_moment(clock, AFTER)
    try:

        def warned() -> bool:
            done = create(kube, pod_of(ns, "probe", image, None), dry_run=True)
            return done.returncode == 0 and any(DENIED_NOW in w for w in warnings_of(done.stderr))

        eventually(warned, what="the warn policy warns about a bare pod after the date")
    finally:
        write_moment(clock, BEFORE)
    _, rs = admitted_before_the_date(kube, ns, image)

    write_moment(clock, AFTER)
    replacement = create(kube, pod_of(ns, "web-7d9-second", image, rs))
    assert replacement.returncode != 0
    assert DENIED_NOW in replacement.stderr
    bare = create(kube, pod_of(ns, "bare", image, None), dry_run=True)
    assert bare.returncode == 0, bare.stderr  # a bare pod: the policy's own action, a warning
    assert any(DENIED_NOW in w for w in warnings_of(bare.stderr))


def test_a_cronjob_admitted_before_the_date_starts_its_jobs_after_it(
    kube: ControlPlane, scratch: Scratch, distroguard: OperatorProcess, clock: Path, images: dict[str, str]
) -> None:
    ns = scratch.namespace("cron")
    image = images["debian"]
    kube.create(supported_policy(ns))
    in_force(kube, clock, ns, image)
    template = {"spec": {"restartPolicy": "Never", "containers": [{"name": "app", "image": image}]}}
    made = create(
        kube,
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "nightly", "namespace": ns},
            "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": template}}},
        },
    )
    assert made.returncode == 0, made.stderr
    cronjob = json.loads(made.stdout)

    write_moment(clock, AFTER)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "nightly-29170980", "namespace": ns, "ownerReferences": [owner_ref(cronjob)]},
        "spec": {"template": template},
    }
    started = create(kube, job)
    assert started.returncode == 0, started.stderr
    (warning,) = warnings_of(started.stderr)
    assert warning.startswith(f"allowed: Job of CronJob {ns}/nightly, whose template names the same images; ")
    # The same Job made by hand, with no owner: judged as today.
    bare = create(kube, {**job, "metadata": {"name": "by-hand", "namespace": ns}})
    assert bare.returncode != 0
    assert DENIED_NOW in bare.stderr
