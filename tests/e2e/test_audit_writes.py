"""What the in-cluster audit writes, counted by the API server: an audit that finds what the last one found
writes nothing, and one after a change writes only what changed.

`distroguard run --role audit` runs with a short interval, so that audits follow one another with nothing
changed in between. The writes are counted twice: by the audit's own log line, and by the API server
(`apiserver_request_total`, every write verb, for the kinds the audit writes), between two of those lines.
Small on purpose: the same shape at 100,000 pods is `bench/audit_bench.py`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.distros import ALPINE_ROOT, DEBIAN_9_ROOT, UBUNTU_2404_ROOT
from support.kube import ControlPlane, free_port
from support.manifests import deployment
from support.operator_process import OperatorProcess
from support.polling import eventually
from support.registry_server import RegistryServer, push_root
from support.scratch import Scratch, scratch_namespace, unique

pytestmark = [pytest.mark.e2e, pytest.mark.registry]

CHART = Path(__file__).resolve().parents[2] / "charts" / "distroguard"
AUDITED_KINDS = ("policyreports", "clusterpolicyreports", "imagefacts", "events")
"""The resources the audit writes (events: its rate-limited notices, fewer here than one audit's cap)."""
WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY"})
COMPLETED = re.compile(
    r"audit completed: .* ImageFacts (\d+) written, (\d+) deleted; "
    r"PolicyReports (\d+) written, (\d+) deleted; (\d+) events"
)


@pytest.fixture(scope="module")
def ns(kube: ControlPlane) -> Iterator[str]:
    with scratch_namespace(kube, "audit-writes") as name:
        yield name


@pytest.fixture(scope="module")
def images(registry: RegistryServer) -> dict[str, str]:
    return {
        "alpine": push_root(registry, unique("writes/alpine"), ALPINE_ROOT),
        "debian9": push_root(registry, unique("writes/debian9"), DEBIAN_9_ROOT),
        "ubuntu": push_root(registry, unique("writes/ubuntu2404"), UBUNTU_2404_ROOT),
    }


@pytest.fixture(scope="module")
def policy(kube: ControlPlane, ns: str) -> Iterator[str]:
    for path in (*sorted((CHART / "crds").glob("*.yaml")), CHART / "files" / "policyreport-crds.yaml"):
        kube.kubectl("apply", "--server-side", "-f", str(path))
    kube.kubectl("wait", "--for=condition=established", "--timeout=60s", "crd", "--all")
    name = unique("audit-writes")
    kube.create(
        {
            "apiVersion": "distroguard.dev/v1alpha1",
            "kind": "DistroPolicy",
            "metadata": {"name": name},
            "spec": {
                "action": "audit",
                "match": {"namespaces": [ns]},
                "rules": [{"name": "no-musl", "denyLibc": ["musl"]}, {"name": "supported", "support": {}}],
            },
        }
    )
    try:
        yield name
    finally:
        kube.kubectl("delete", "distropolicy", name, "--ignore-not-found", check=False)


@pytest.fixture(scope="module")
def auditor(
    kube: ControlPlane,
    ns: str,
    policy: str,
    images: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    for key, image in images.items():
        kube.create(deployment(ns, f"{key}-app", image))
    scratch = Scratch(kube)
    own = scratch.namespace("distroguard-audit-writes")
    process = OperatorProcess(
        kube,
        unique("distroguard-audit-writes"),
        own,
        tmp_path_factory.mktemp("audit-writes") / "run.log",
        [
            *("--role", "audit", "--audit-interval", "1", "--audit-debounce", "0"),
            *("--liveness", f"http://127.0.0.1:{free_port()}/healthz"),
            *("--metrics-listen", "127.0.0.1", "--metrics-port", "0"),
        ],
        dev=False,
    )
    try:
        process.start()
        process.wait_logged("audit completed: ", timeout=180)
        yield process
    finally:
        code = process.stop()
        print(process.log_text()[-6000:])
        scratch.close()
    assert code == 0, "distroguard run --role audit did not stop cleanly on SIGTERM"


def audits(process: OperatorProcess) -> list[tuple[int, ...]]:
    """(ImageFacts written, deleted, PolicyReports written, deleted, events) of each audit so far."""
    return [tuple(int(n) for n in m.groups()) for m in COMPLETED.finditer(process.log_text())]


def api_writes(kube: ControlPlane) -> Counter[str]:
    """Writes the API server has served so far to the kinds the audit writes, by resource."""
    status, body = kube.get("/metrics", timeout=30)
    assert status == 200, body[:300]
    writes: Counter[str] = Counter()
    for line in body.decode().splitlines():
        if line.startswith("apiserver_request_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
            if labels.get("verb") in WRITE_VERBS and labels.get("resource") in AUDITED_KINDS:
                writes[labels["resource"]] += int(float(line.rsplit(" ", 1)[1]))
    return writes


def next_audits(process: OperatorProcess, count: int) -> list[tuple[int, ...]]:
    """Wait until `count` more audits have completed; their counts."""
    seen = len(audits(process))
    eventually(lambda: len(audits(process)) >= seen + count, timeout=180, what=f"{count} more audits")
    return audits(process)[seen : seen + count]


def test_an_audit_that_finds_nothing_new_writes_nothing(
    kube: ControlPlane, ns: str, auditor: OperatorProcess
) -> None:
    assert audits(auditor)[0][2] >= 3, "the first audit wrote the reports of the three workloads"
    next_audits(auditor, 1)  # any audit under way when the count starts is left out
    before = api_writes(kube)
    quiet = next_audits(auditor, 2)
    after = api_writes(kube)
    assert quiet == [(0, 0, 0, 0, 0)] * 2, auditor.log_text()[-3000:]
    assert +(after - before) == Counter(), "the API server saw writes while nothing changed"


def test_an_audit_after_a_change_writes_only_what_changed(
    kube: ControlPlane, ns: str, images: dict[str, str], auditor: OperatorProcess
) -> None:
    next_audits(auditor, 1)
    before = api_writes(kube)
    kube.create(deployment(ns, "another-ubuntu-app", images["ubuntu"]))
    eventually(
        lambda: any(r[2] for r in audits(auditor)[-2:]), timeout=180, what="an audit writing the new report"
    )
    written = next(r for r in reversed(audits(auditor)) if r[2])
    next_audits(auditor, 1)  # and nothing after it
    after = api_writes(kube)
    # Its report and the summary (whose counts changed); no other workload's report, no ImageFacts (the
    # image is known), no Event (the workload passes).
    assert written == (0, 0, 2, 0, 0), auditor.log_text()[-3000:]
    assert +(after - before) == Counter({"policyreports": 1, "clusterpolicyreports": 1})
    found = kube.kubectl_json("get", "policyreports", "-n", ns)["items"]
    scopes: list[Any] = sorted(r["scope"]["name"] for r in found)
    assert scopes == ["alpine-app", "another-ubuntu-app", "debian9-app", "ubuntu-app"]
