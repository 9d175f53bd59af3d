"""A user's first hour, on a real node: distroguard's image built from the Dockerfile, `helm install` of
the chart with it, replicas and audit running under Pod Security "restricted" with a read-only root, an
Alpine Deployment refused by a replica, a Debian 12 one running, the audit's reports, and the release
rolled, disrupted, cut off from its registry and uninstalled while reviews go on.

The tests run in order on one release (the module's): each leaves it installed and healthy for the next,
the last uninstalls it.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from support import node as node_module
from support import node_host
from support.kube import KubectlError
from support.node import Node, NodeKeeper
from support.polling import eventually
from support.release import RELEASE, Release, Staged, stage
from support.review_load import ReviewLoad
from support.scratch import unique

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BUDGET = 3
"""The chart's webhook.budget."""
MIN_REVIEWS = 20
"""Reviews a disruption must have overlapped for its count to mean anything."""


@pytest.fixture(scope="module")
def node(node_keeper: NodeKeeper) -> Node:
    return node_keeper.get()


@pytest.fixture(scope="module")
def staged(node: Node, request: pytest.FixtureRequest) -> Staged:
    staged = stage(node)
    built = staged.built
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(
            f"\ndistroguard image for the node: built in {built.seconds:.1f} s, "
            f"{built.size / 1e6:.1f} MB uncompressed ({built.pushed})"
        )
    return staged


@pytest.fixture(scope="module")
def release(node: Node, staged: Staged) -> Iterator[Release]:
    release = Release(node, staged, namespace=unique("distroguard"))
    try:
        release.install()
        yield release
    finally:
        release.uninstall()


@pytest.fixture(scope="module")
def apps(node: Node) -> Iterator[str]:
    namespace = unique("apps")
    node.plane.kubectl("create", "namespace", namespace)
    try:
        yield namespace
    finally:
        node.plane.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")


@pytest.fixture(scope="module")
def no_musl(release: Release, staged: Staged, apps: str) -> Iterator[str]:
    """A DistroPolicy that denies musl, and images it cannot inspect; its name, once the replicas apply it."""
    name = unique("first-hour-no-musl")
    plane = release.node.plane
    plane.create(
        {
            "apiVersion": "distroguard.dev/v1alpha1",
            "kind": "DistroPolicy",
            "metadata": {"name": name},
            "spec": {
                "action": "deny",
                "onUnresolved": "deny",
                "rules": [{"name": "no-musl", "denyLibc": ["musl"]}],
            },
        }
    )
    try:
        # Both replicas watch the policies: the denial holds whichever one answers.
        eventually(
            lambda: all(refused_by(release, apps, staged.alpine, name) for _ in range(4)),
            timeout=60,
            what=f"replicas deny musl by {name}",
        )
        yield name
    finally:
        plane.kubectl("delete", "distropolicy", name, "--ignore-not-found")


def refused_by(release: Release, namespace: str, image: str, policy: str) -> bool:
    done = release.node.plane.kubectl(
        "create",
        "deployment",
        unique("probe"),
        "-n",
        namespace,
        f"--image={image}",
        "--dry-run=server",
        check=False,
    )
    return done.returncode != 0 and f"by policy {policy}/" in done.stderr


def ready(pod: dict[str, Any]) -> bool:
    conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
    return pod["status"].get("phase") == "Running" and conditions.get("Ready") == "True"


# ------------------------------------------------------------------------------------ installed


def test_replicas_and_audit_run_ready_under_restricted_pod_security(release: Release) -> None:
    plane = release.node.plane
    labels = plane.kubectl_json("get", "namespace", release.namespace)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    webhook, audit = release.webhook_pods(), release.pods("app.kubernetes.io/component=audit")
    assert len(webhook) == 2
    assert len(audit) == 1
    for pod in [*webhook, *audit]:
        assert ready(pod), pod["status"]  # startup and readiness probes passed
        assert pod["spec"]["nodeName"] == node_module.NODE_NAME
        (status,) = pod["status"]["containerStatuses"]
        assert status["restartCount"] == 0, status  # the liveness probe never failed
        (container,) = pod["spec"]["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["spec"]["securityContext"]["runAsUser"] == 65532
    # The label is enforced, not decorative: a privileged pod is refused in that namespace.
    with pytest.raises(KubectlError) as refused:
        plane.create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "privileged", "namespace": release.namespace},
                "spec": {
                    "containers": [
                        {"name": "c", "image": release.staged.debian, "securityContext": {"privileged": True}}
                    ]
                },
            }
        )
    assert 'violates PodSecurity "restricted:latest"' in refused.value.stderr
    # Inside a replica: the image's user, a root it cannot write, the certificate mounted.
    script = (
        "import os\n"
        "print(os.getuid(), os.getgid())\n"
        "try:\n    open('/probe', 'w')\nexcept OSError as e:\n    print(e.strerror)\n"
        "print(open('/etc/distroguard/tls/tls.crt').readline().strip())\n"
    )
    inside = plane.kubectl(
        "exec", "-n", release.namespace, webhook[0]["metadata"]["name"], "--", "python", "-c", script
    )
    assert inside.stdout.splitlines() == [
        "65532 65532",
        "Read-only file system",
        "-----BEGIN CERTIFICATE-----",
    ]


def test_an_alpine_deployment_is_refused_with_a_replicas_message(
    release: Release, staged: Staged, apps: str, no_musl: str
) -> None:
    before = release.admission_counts()
    name = unique("alpine")
    with pytest.raises(KubectlError) as refused:
        release.node.plane.kubectl("create", "deployment", name, "-n", apps, f"--image={staged.alpine}")
    message = refused.value.stderr
    assert 'admission webhook "deployments.distroguard.distroguard.dev" denied the request' in message
    assert f"uses {staged.alpine} (Alpine Linux" in message, message
    assert f"musl is not allowed by policy {no_musl}/no-musl" in message, message
    # A replica pod answered: their own count of denials grew by this one.
    assert release.admission_counts()["deny"] == before["deny"] + 1
    gone = release.node.plane.kubectl("get", "deployment", name, "-n", apps, check=False)
    assert gone.returncode != 0
    assert "NotFound" in gone.stderr


@pytest.fixture(scope="module")
def debian_deployment(release: Release, staged: Staged, apps: str, no_musl: str) -> dict[str, Any]:
    """A Debian 12 Deployment, admitted; its running pod."""
    name = unique("debian")
    release.node.plane.kubectl(
        "create",
        "deployment",
        name,
        "-n",
        apps,
        f"--image={staged.debian}",
        "--",
        "sh",
        "-c",
        "cat /etc/debian_version; exec sleep 3600",
    )

    def running() -> dict[str, Any] | None:
        pods = release.node.plane.kubectl_json("get", "pods", "-n", apps, "-l", f"app={name}")["items"]
        return next((p for p in pods if ready(p)), None)

    pod: dict[str, Any] = eventually(running, timeout=node_module.POD_TIMEOUT_SECONDS, what=f"{name} runs")
    return {"name": name, "pod": pod}


def test_a_debian_12_deployment_is_admitted_and_runs(
    release: Release, apps: str, debian_deployment: Any
) -> None:
    pod = debian_deployment["pod"]
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    logs = release.node.plane.kubectl("logs", "-n", apps, pod["metadata"]["name"]).stdout
    assert logs.startswith("12."), logs


def test_the_audit_pod_writes_the_report_and_the_facts(
    release: Release, staged: Staged, apps: str, no_musl: str, debian_deployment: Any
) -> None:
    plane = release.node.plane
    report_name = f"distroguard-deployment-{debian_deployment['name']}"

    def report() -> Any:
        found = plane.kubectl("get", "policyreport", report_name, "-n", apps, "-o", "json", check=False)
        if found.returncode != 0:
            return None
        document = json.loads(found.stdout)
        return document if any(r["policy"] == no_musl for r in document.get("results", [])) else None

    document = eventually(report, timeout=120, what=f"PolicyReport {apps}/{report_name} with {no_musl}")
    (ours,) = [r for r in document["results"] if r["policy"] == no_musl]
    assert ours["result"] == "pass", ours
    assert document["scope"]["name"] == debian_deployment["name"]

    def facts() -> Any:
        items = plane.kubectl_json("get", "imagefacts")["items"]
        return next((i for i in items if i["spec"]["image"] == staged.debian), None)

    found = eventually(facts, timeout=120, what=f"ImageFacts of {staged.debian}")
    (platform,) = found["spec"]["platforms"]
    assert (platform["os"]["id"], platform["os"]["versionId"]) == ("debian", "12"), platform
    assert platform["libc"]["family"] == "glibc", platform


# --------------------------------------------------------------------------- while reviews go on


@contextlib.contextmanager
def pdb_watch(release: Release) -> Iterator[list[tuple[int, int]]]:
    """Samples the PodDisruptionBudget's (currentHealthy, desiredHealthy) until the block ends."""
    samples: list[tuple[int, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            status = release.node.plane.kubectl_json("get", "pdb", RELEASE, "-n", release.namespace)["status"]
            samples.append((status.get("currentHealthy", 0), status.get("desiredHealthy", 0)))
            stop.wait(0.5)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join(30)


def failed_calls(release: Release) -> list[str]:
    """The API server's own account of webhook calls that failed (and were admitted: failing open)."""
    log = release.node.plane.workdir / "kube-apiserver.log"
    return [line for line in log.read_text(errors="replace").splitlines() if "ailed calling webhook" in line][
        -5:
    ]


def secret_and_bundle(release: Release) -> tuple[str, str]:
    plane = release.node.plane
    secret = plane.kubectl_json("get", "secret", f"{RELEASE}-tls", "-n", release.namespace)
    configs = plane.kubectl_json(
        "get", "validatingwebhookconfigurations", "-l", f"app.kubernetes.io/instance={RELEASE}"
    )
    (config,) = [c for c in configs["items"] if c["metadata"]["name"] == RELEASE]
    bundles = {w["clientConfig"]["caBundle"] for w in config["webhooks"]}
    assert len(bundles) == 1
    return secret["data"]["tls.crt"], bundles.pop()


def test_helm_upgrade_rolls_the_replicas_and_loses_no_review(
    release: Release, staged: Staged, apps: str, no_musl: str
) -> None:
    before_pods = {p["metadata"]["name"] for p in release.webhook_pods()}
    certificate = secret_and_bundle(release)
    with (
        pdb_watch(release) as pdb,
        ReviewLoad(release.node.plane, apps, staged.alpine, f"by policy {no_musl}/") as load,
    ):
        release.upgrade(["webhook.certCheckInterval=30"])  # a changed value: new pod template
        release.wait_rolled_out()
        time.sleep(2)  # reviews after the last old replica left
    after_pods = {p["metadata"]["name"] for p in release.webhook_pods()}
    assert before_pods.isdisjoint(after_pods)
    assert len(after_pods) == 2
    assert load.sent >= MIN_REVIEWS, load.answers
    assert load.answers == {"refused": load.sent}, (load.unexpected[:5], failed_calls(release))
    assert secret_and_bundle(release) == certificate  # the certificate kept
    assert pdb
    assert all(healthy >= desired for healthy, desired in pdb), pdb


def test_a_deleted_replica_leaves_the_other_answering(
    release: Release, staged: Staged, apps: str, no_musl: str
) -> None:
    victim = release.webhook_pods()[0]["metadata"]["name"]
    with ReviewLoad(release.node.plane, apps, staged.alpine, f"by policy {no_musl}/") as load:
        release.node.plane.kubectl("delete", "pod", victim, "-n", release.namespace, timeout=120)
        release.wait_rolled_out()
        eventually(lambda: all(ready(p) for p in release.webhook_pods()), timeout=120, what="replicas Ready")
    assert victim not in {p["metadata"]["name"] for p in release.webhook_pods()}
    assert load.sent >= MIN_REVIEWS, load.answers
    assert load.answers == {"refused": load.sent}, (load.unexpected[:5], failed_calls(release))


@contextlib.contextmanager
def registry_cut_off_from_pods(release: Release) -> Iterator[None]:
    """Pods' packets to the registry's port are dropped (they wait, as for a dead host); the node's
    own pulls (containerd, from this machine) still work. Marked as the fence, so `down` removes it."""
    port = release.staged.registry.rpartition(":")[2]
    rule = [
        "INPUT",
        "-s",
        node_host.POD_CIDR,
        "-d",
        node_host.BRIDGE_IP,
        "-p",
        "tcp",
        "--dport",
        port,
        "-m",
        "comment",
        "--comment",
        node_host.FENCE_COMMENT,
        "-j",
        "DROP",
    ]
    node_host.run(["iptables", "-w", "-I", *rule[:1], "1", *rule[1:]])
    try:
        yield
    finally:
        node_host.run(["iptables", "-w", "-D", *rule])


def test_a_replica_started_without_its_registry_answers_in_time_with_on_unresolved(
    release: Release, staged: Staged, apps: str, no_musl: str
) -> None:
    plane = release.node.plane
    unseen = f"{staged.alpine.rpartition(':')[0]}:{unique('unseen')}"
    with registry_cut_off_from_pods(release):
        plane.kubectl("rollout", "restart", f"deployment/{RELEASE}", "-n", release.namespace)
        release.wait_rolled_out()
        assert release.admission_counts()["deny"] == 0  # only replicas started while cut off answer now
        with pytest.raises(KubectlError) as refused:
            plane.kubectl("create", "deployment", unique("unseen"), "-n", apps, f"--image={unseen}")
        message = refused.value.stderr
        assert f"not resolved within {BUDGET} s" in message, message
        assert f"policy {no_musl} denies images it cannot inspect (onUnresolved: deny)" in message, message
        assert release.admission_counts()["deny"] == 1
    # Answered by a replica within its budget: past the webhook's timeout the API server would have
    # admitted the Deployment (failurePolicy Ignore), not refused it with this message.
    # With the registry back, the same replicas know Alpine again.
    eventually(
        lambda: refused_by(release, apps, staged.alpine, no_musl), timeout=60, what="musl denied again"
    )


@pytest.mark.parametrize(
    ("image", "why"),
    [
        (
            "169.254.169.254/latest/meta-data:1",
            "registry address not allowed: 169.254.169.254 is a metadata address",
        ),
        ("127.0.0.1:9090/metrics:1", "registry address not allowed: 127.0.0.1 is a loopback address"),
    ],
    ids=["metadata-service", "own-loopback"],
)
def test_a_replica_fetches_nothing_from_where_a_pod_creator_points_it(
    release: Release, apps: str, no_musl: str, image: str, why: str
) -> None:
    # Whoever creates a pod chooses the registry: not the cloud metadata service, not the replica's own
    # metrics port. The image is unresolved, so onUnresolved (deny, here) decides, saying why.
    with pytest.raises(KubectlError) as refused:
        release.node.plane.kubectl("create", "deployment", unique("probe"), "-n", apps, f"--image={image}")
    message = refused.value.stderr
    assert why in message, message
    assert "--registry-allow" in message, message
    assert f"policy {no_musl} denies images it cannot inspect" in message, message


def test_helm_uninstall_leaves_no_webhook_configuration(release: Release, staged: Staged, apps: str) -> None:
    plane = release.node.plane
    release.uninstall()
    configs = plane.kubectl_json("get", "validatingwebhookconfigurations")["items"]
    assert [c["metadata"]["name"] for c in configs if "distroguard" in c["metadata"]["name"]] == []
    # Nothing is left to ask: an Alpine Deployment is admitted again, at once.
    plane.kubectl(
        "create", "deployment", unique("after"), "-n", apps, f"--image={staged.alpine}", "--dry-run=server"
    )
