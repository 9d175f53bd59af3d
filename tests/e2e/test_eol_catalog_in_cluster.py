"""The cluster's EOL data end to end: `distroguard run --dev` against the real kube-apiserver, with its audit
refreshing the EOLCatalog object from a local endoflife.date API (`support.eol_api`), and `distroguard eol
update --kubeconfig --from FILE` pushing one as an air-gapped cluster would. Admission and the audit follow
each change of the object with no restart; an older catalog never replaces a newer one; an invalid one is
ignored; stale data is a warning in the ClusterPolicyReport.

Decisions are made at the moment in a `--dev-clock` file, so dates pass without sleeping. The EOLCatalog is
cluster-wide: it is deleted when the module ends, so other modules see the bundled data again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from distroguard.cli.main import main
from distroguard.eol import bundled_snapshot
from distroguard.eol.fileformat import dumps
from distroguard.model.lifecycle import CatalogSnapshot, ProductLifecycle
from distroguard.operator.clock import write_moment
from support.distros import DEBIAN_12_ROOT
from support.eol_api import EolApiServer
from support.images import ImageBuilder, push
from support.kube import ControlPlane
from support.manifests import deployment
from support.operator_process import OperatorProcess, running_operator
from support.polling import eventually
from support.registry_server import RegistryServer
from support.scratch import Scratch, unique

pytestmark = [pytest.mark.e2e, pytest.mark.registry]

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
"""The moment decisions are made at (the bundled data, of 2026-08-22, says Debian 12's regular security
support ended on 2026-07-11)."""
LABELS = {"e2e.distroguard.dev/module": "eol-catalog"}
PAST_EOL = "past the end of security support"
MAX_OBJECT_BYTES = 1536 * 1024
"""etcd's default request size limit (--max-request-bytes), which bounds an object."""


def debian_12_ending(end: date) -> ProductLifecycle:
    debian = next(p for p in bundled_snapshot().products if p.name == "debian")
    cycles = tuple(c.model_copy(update={"eol": end}) if c.cycle == "12" else c for c in debian.cycles)
    return debian.model_copy(update={"cycles": cycles})


def catalog_with(debian: ProductLifecycle, day: date, source: str) -> CatalogSnapshot:
    bundled = bundled_snapshot()
    products = tuple(debian if p.name == "debian" else p for p in bundled.products)
    return bundled.model_copy(update={"snapshot": day, "source": source, "products": products})


@pytest.fixture(scope="module")
def eol_api() -> Iterator[EolApiServer]:
    """endoflife.date as the cluster's refresh sees it: Debian 12's end moved to mid-2027."""
    products = {p.name: p for p in bundled_snapshot().products}
    products["debian"] = debian_12_ending(date(2027, 6, 30))
    server = EolApiServer(products).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def image(registry: RegistryServer) -> str:
    repo = unique("e2e/eol-debian12")
    asyncio.run(push(registry.url, repo, "1", ImageBuilder().layer(DEBIAN_12_ROOT).build()))
    return f"{registry.address}/{repo}:1"


@pytest.fixture(scope="module")
def clock(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clock") / "now"
    write_moment(path, NOW)
    return path


@pytest.fixture(scope="module")
def ns(kube: ControlPlane) -> Iterator[str]:
    scratch = Scratch(kube)
    try:
        yield scratch.namespace("eol")
    finally:
        scratch.close()


@pytest.fixture(scope="module")
def policy(kube: ControlPlane, ns: str, distroguard: OperatorProcess) -> Iterator[str]:
    """Deny a distribution release past its regular security support, in the test's namespace."""
    name = unique("eol-e2e")
    document = {
        "apiVersion": "distroguard.dev/v1alpha1",
        "kind": "DistroPolicy",
        "metadata": {"name": name, "labels": LABELS},
        "spec": {
            "action": "deny",
            "match": {"namespaces": [ns]},
            "rules": [{"name": "supported", "support": {}}],
        },
    }
    kube.kubectl("apply", "-f", "-", input=json.dumps(document))
    distroguard.wait_logged(f"policy {name} loaded")
    try:
        yield name
    finally:
        kube.kubectl("delete", "distropolicy", name, "--ignore-not-found", check=False)


@pytest.fixture(scope="module")
def distroguard(
    kube: ControlPlane, eol_api: EolApiServer, clock: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    args = [
        *("--dev-clock", str(clock), "--eol-url", eol_api.url),
        *("--audit-debounce", "0.5", "--metrics-port", "0"),
    ]
    delete_catalog(kube)
    try:
        with running_operator(
            kube,
            "distroguard-eol",
            tmp_path_factory.mktemp("distroguard-eol"),
            args,
            namespace="distroguard-eol",
            log_tail=8000,
        ) as process:
            yield process
    finally:
        delete_catalog(kube)


def delete_catalog(kube: ControlPlane) -> None:
    kube.kubectl("delete", "eolcatalog", "default", "--ignore-not-found", check=False)


def stored(kube: ControlPlane) -> dict[str, Any]:
    found: dict[str, Any] = kube.kubectl_json("get", "eolcatalog", "default", "-o", "json")
    return found


def debian_12_end(kube: ControlPlane) -> str:
    debian = next(p for p in stored(kube)["spec"]["products"] if p["name"] == "debian")
    return str(next(c for c in debian["cycles"] if c["cycle"] == "12")["eol"])


def pod(ns: str, name: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


def dry_run(kube: ControlPlane, manifest: dict[str, Any]) -> Any:
    return kube.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(manifest), check=False)


def push_file(kube: ControlPlane, catalog: CatalogSnapshot, directory: Path) -> Any:
    """`distroguard eol update --kubeconfig K --from FILE`, as a user runs it."""
    path = directory / f"eol-{catalog.snapshot}-{unique('c')}.json"
    path.write_text(dumps(catalog), encoding="utf-8")
    return CliRunner().invoke(
        main,
        ["eol", "update", "--kubeconfig", str(kube.kubeconfig), "--from", str(path)],
        catch_exceptions=False,
    )


def report_results(kube: ControlPlane, ns: str, workload: str, policy: str) -> dict[str, str]:
    found = kube.kubectl(
        "get", "policyreport", "-n", ns, f"distroguard-deployment-{workload}", "-o", "json", check=False
    )
    if found.returncode != 0:
        return {}
    return {r["rule"]: r["result"] for r in json.loads(found.stdout)["results"] if r["policy"] == policy}


# ------------------------------------------------------------------------------------------------ tests


def test_the_audit_creates_the_catalog_from_the_api_and_kubectl_shows_its_date_source_and_age(
    kube: ControlPlane, distroguard: OperatorProcess, eol_api: EolApiServer
) -> None:
    eventually(
        lambda: kube.kubectl("get", "eolcatalog", "default", check=False).returncode == 0,
        what="the refresher creates EOLCatalog default",
    )
    distroguard.wait_logged("EOL catalog in use: cluster data of 2026-12-01")
    found = stored(kube)
    assert found["spec"]["snapshot"] == "2026-12-01"
    assert found["spec"]["source"] == f"endoflife.date API v1 at {eol_api.url}"
    assert len(found["spec"]["products"]) == len(bundled_snapshot().products)
    assert debian_12_end(kube) == "2027-06-30"
    status = eventually(
        lambda: stored(kube).get("status", {}).get("checked") and stored(kube)["status"],
        what="the refresh's status",
    )
    assert status["observedGeneration"] == found["metadata"]["generation"]
    assert status["products"]["debian"]["etag"]
    assert status["products"]["debian"]["lastModified"]
    table = kube.kubectl("get", "eolcatalogs").stdout
    header, row = table.splitlines()[:2]
    assert header.split() == ["NAME", "DATA", "DATA-AGE", "SOURCE", "AGE"]
    assert row.split()[:2] == ["default", "2026-12-01"]
    age = row.split()[2]  # measured from the data's day (the real clock's, as kubectl knows no other)
    assert age[0].isdigit(), row
    # Its size as the API server serves it (what etcd stores, managedFields included), against etcd's
    # request limit of 1.5 MiB: docs/operations.md gives the figure.
    raw = kube.kubectl("get", "--raw", "/apis/distroguard.dev/v1alpha1/eolcatalogs/default").stdout
    products = len(bundled_snapshot().products)
    print(f"EOLCatalog default: {len(raw.encode())} bytes as served, {products} products")
    assert len(raw.encode()) < MAX_OBJECT_BYTES // 10
    assert kube.kubectl("get", "eol", "-o", "wide").stdout.splitlines()[0].split()[-3:] == [
        "CHECKED",
        "ERROR",
        "AGE",
    ]


def test_admission_and_audit_follow_a_change_of_the_object_without_a_restart(
    kube: ControlPlane,
    distroguard: OperatorProcess,
    ns: str,
    policy: str,
    image: str,
    tmp_path: Path,
) -> None:
    distroguard.wait_logged("EOL catalog in use: cluster data of 2026-12-01")
    # The API's data says Debian 12 is supported until 2027-06-30: admitted (the bundled data would deny).
    admitted = dry_run(kube, pod(ns, "before", image))
    assert admitted.returncode == 0, admitted.stderr
    kube.kubectl("apply", "-f", "-", input=json.dumps(deployment(ns, "web", image)))
    eventually(
        lambda: report_results(kube, ns, "web", policy) == {"supported": "pass"},
        what="the audit reports the workload passing",
    )
    assert distroguard.popen is not None
    pid = distroguard.popen.pid

    # An air-gapped push (a file) of the same day moves Debian 12's end into the past.
    moved = catalog_with(debian_12_ending(date(2026, 11, 1)), NOW.date(), "a file, carried in")
    done = push_file(kube, moved, tmp_path)
    assert done.exit_code == 0, done.output
    assert "replacing data of 2026-12-01" in done.output
    assert debian_12_end(kube) == "2026-11-01"

    def denied() -> bool:
        answer = dry_run(kube, pod(ns, "after", image))
        return answer.returncode != 0 and PAST_EOL in answer.stderr

    eventually(denied, what="the next review is denied with the new date")
    answer = dry_run(kube, pod(ns, "after", image))
    assert "since 2026-11-01" in answer.stderr
    eventually(
        lambda: report_results(kube, ns, "web", policy) == {"supported": "fail"},
        what="the audit's report fails the workload",
    )
    assert distroguard.alive()
    assert distroguard.popen.pid == pid  # the same process: no restart


def test_an_older_catalog_never_replaces_the_newer_one(
    kube: ControlPlane, distroguard: OperatorProcess, tmp_path: Path
) -> None:
    distroguard.wait_logged("EOL catalog in use: cluster data of 2026-12-01")
    before = stored(kube)
    older = catalog_with(debian_12_ending(date(2029, 1, 1)), date(2026, 11, 1), "an old file")
    done = push_file(kube, older, tmp_path)
    assert done.exit_code == 2
    assert "older than the cluster's EOLCatalog" in done.output
    after = stored(kube)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["spec"] == before["spec"]


def test_an_invalid_object_is_ignored_and_the_data_in_use_stays(
    kube: ControlPlane, distroguard: OperatorProcess, ns: str, policy: str, image: str, tmp_path: Path
) -> None:
    moved = catalog_with(debian_12_ending(date(2026, 11, 1)), NOW.date(), "a file, carried in")
    push_file(kube, moved, tmp_path)

    def denied() -> bool:
        answer = dry_run(kube, pod(ns, "invalid", image))
        return answer.returncode != 0 and PAST_EOL in answer.stderr

    eventually(denied, what="the pushed data is in use")
    body = stored(kube)
    body["spec"]["products"] = []  # the schema allows it; distroguard does not
    body["metadata"] = {"name": "default", "resourceVersion": body["metadata"]["resourceVersion"]}
    body.pop("status", None)
    kube.kubectl("replace", "-f", "-", input=json.dumps(body))
    distroguard.wait_logged("lists no products")
    assert denied()  # still the pushed data, not an empty catalog (which would make Debian 12 unknown)


def test_stale_data_warns_in_the_cluster_summary(
    kube: ControlPlane, distroguard: OperatorProcess, policy: str, clock: Path
) -> None:
    write_moment(clock, datetime(2027, 2, 1, 12, 0, tzinfo=UTC))  # the data (of 2026-12-01) is 62 days old
    # A policy change starts an audit (the dev clock's does not).
    kube.kubectl("label", "distropolicy", policy, "e2e.distroguard.dev/poke=1", "--overwrite")

    def stale() -> dict[str, Any] | None:
        found = kube.kubectl("get", "clusterpolicyreport", "distroguard-summary", "-o", "json", check=False)
        if found.returncode != 0:
            return None
        results = json.loads(found.stdout)["results"]
        return next((r for r in results if r["policy"] == "distroguard"), None)

    warning = eventually(stale, what="the summary warns about the EOL data's age")
    assert warning["rule"] == "eol-data-age"
    assert warning["result"] == "warn"
    assert "62 days old" in warning["message"]
    distroguard.wait_logged("the EOL data is 62 days old")
    write_moment(clock, NOW)


def test_eol_update_fetches_from_the_api_and_pushes_into_the_cluster(
    kube: ControlPlane, distroguard: OperatorProcess, eol_api: EolApiServer, ns: str, policy: str, image: str
) -> None:
    """From a machine that reaches endoflife.date: fetched there, written into the cluster (dated today)."""
    argv = ["eol", "update", "--kubeconfig", str(kube.kubeconfig), "--url", eol_api.url, "--timeout", "30"]
    done = CliRunner().invoke(main, argv, catch_exceptions=False)
    assert done.exit_code == 0, done.output
    today = datetime.now(UTC).date()
    assert f"snapshot {today}" in done.output
    assert stored(kube)["spec"]["snapshot"] == today.isoformat()
    assert debian_12_end(kube) == "2027-06-30"
    assert stored(kube)["status"]["snapshotTime"] == f"{today.isoformat()}T00:00:00Z"

    def admitted() -> bool:
        return bool(dry_run(kube, pod(ns, "again", image)).returncode == 0)

    eventually(admitted, what="the next review uses the API's dates again")
