"""`distroguard audit` against the real control plane and registry, and its HTML page in headless Chromium.

Without controllers no Deployment makes pods, so the test makes them: a Deployment owning a ReplicaSet
owning two Pods (grouped under the Deployment), a Deployment and a CronJob without pods (audited through
their templates), and a bare Pod. Every namespace (and the cluster policy) a test or fixture makes is
removed with its contents when it ends (`support.scratch`).

The verdicts do not depend on the day the tests run: the images are past all support already (Debian 11,
whose Debian LTS ended in 2026), denied whatever the day (Alpine's musl), or on a rolling distribution
that no date retires (a glibc Wolfi image), never on a release whose support ends later.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from distroguard.audit.html import COLUMNS
from distroguard.cli.main import main
from support.distros import ALPINE_ROOT, DEBIAN_11_ROOT, DEBIAN_12_ROOT, ELF, WOLFI, banner
from support.images import BuiltImage, ImageBuilder, push
from support.kube import ControlPlane
from support.registry_server import RegistryServer
from support.scratch import Scratch, pull_secret

pytestmark = [pytest.mark.e2e, pytest.mark.registry]

POLICIES = Path(__file__).resolve().parents[2] / "policies"
POLICY_FILES = (POLICIES / "no-musl.yaml", POLICIES / "no-eol-distro.yaml")
#: A rolling distribution with glibc: no release of it ever reaches end of life, so no-eol-distro lets it
#: pass on any day.
WOLFI_GLIBC_ROOT: dict[str, object] = {
    "/etc/os-release": WOLFI,
    "/lib/ld-linux-x86-64.so.2": ELF,
    "/lib/libc.so.6": banner("GNU C Library (GNU libc) stable release version 2.40."),
}


def python_on(root: dict[str, object]) -> BuiltImage:
    return (
        ImageBuilder()
        .layer(root)  # type: ignore[arg-type]
        .layer({"usr/local/bin/python3.12": ELF})
        .env("PYTHON_VERSION=3.12.8")
        .build()
    )


def pushed(server: RegistryServer, repo: str, root: dict[str, object], tag: str, **kw: Any) -> str:
    asyncio.run(push(server.url, repo, tag, python_on(root), **kw))
    return f"{server.address}/{repo}:{tag}"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def template(image: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": "x"}},
        "spec": {"containers": [{"name": "app", "image": image}], **spec},
    }


def owner(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
    }


def deployment(ns: str, name: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": template(image)},
    }


def pod(
    ns: str, name: str, image: str, owners: list[dict[str, Any]] | None = None, **spec: Any
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if owners:
        meta["ownerReferences"] = owners
    return {"apiVersion": "v1", "kind": "Pod", **template(image, **spec), "metadata": meta}


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["audit", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@dataclass(frozen=True)
class Shop:
    kube: ControlPlane
    ns: str
    alpine: str
    debian11: str
    rolling: str

    def audit(self, *args: str) -> tuple[int, str, str]:
        policy_args = [a for p in POLICY_FILES for a in ("--policy", str(p))]
        return run("--kubeconfig", str(self.kube.kubeconfig), "-n", self.ns, *policy_args, *args)


@pytest.fixture(scope="module")
def shop(kube: ControlPlane, registry: RegistryServer) -> Iterator[Shop]:
    scratch = Scratch(kube)
    try:
        yield _open_shop(kube, registry, scratch)
    finally:
        scratch.close()


def _open_shop(kube: ControlPlane, registry: RegistryServer, scratch: Scratch) -> Shop:
    repo = unique("t/audit")
    alpine = pushed(registry, repo, ALPINE_ROOT, "alpine")
    debian11 = pushed(registry, repo, DEBIAN_11_ROOT, "debian11")
    rolling = pushed(registry, repo, WOLFI_GLIBC_ROOT, "wolfi")
    ns = scratch.namespace("audit")
    web = kube.create(deployment(ns, "web", debian11))
    rs = kube.create(
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "web-5d9c", "namespace": ns, "ownerReferences": [owner(web)]},
            "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": template(debian11)},
        }
    )
    for suffix in ("a1", "b2"):
        kube.create(pod(ns, f"web-5d9c-{suffix}", debian11, [owner(rs)]))
    kube.create(deployment(ns, "api", rolling))  # no pods: audited through its template
    kube.create(
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "nightly", "namespace": ns},
            "spec": {
                "schedule": "0 3 * * *",
                "jobTemplate": {"spec": {"template": template(alpine, restartPolicy="Never")}},
            },
        }
    )
    kube.create(pod(ns, "debug", alpine))
    other = scratch.namespace("audit-other")
    kube.create(pod(other, "elsewhere", rolling))
    return Shop(kube, ns, alpine, debian11, rolling)


def test_json_groups_pods_by_top_owner_and_evaluates_every_workload(shop: Shop) -> None:
    code, out, err = shop.audit("-o", "json")
    assert code == 1, err  # deny findings
    assert err == ""
    report = json.loads(out)
    assert report["kind"] == "DistroguardAudit"
    assert report["namespace"] == shop.ns
    assert report["policies"] == ["no-musl", "no-eol-distro"]
    workloads = {(w["kind"], w["name"]): w for w in report["workloads"]}
    assert set(workloads) == {
        ("Deployment", "web"),
        ("Deployment", "api"),
        ("CronJob", "nightly"),
        ("Pod", "debug"),
    }
    web = workloads["Deployment", "web"]
    assert (web["source"], web["pods"], web["verdict"]) == ("pods", 2, "deny")
    assert web["containers"][0]["os"].startswith("Debian 11")
    assert web["containers"][0]["eolState"] == "eol"
    assert web["eol"] == "2024-08-14"
    assert [f["policy"] for f in web["findings"]] == ["no-eol-distro"]
    api = workloads["Deployment", "api"]
    assert (api["source"], api["pods"]) == ("template", 0)
    assert api["containers"][0]["os"].startswith("Wolfi")
    assert api["verdict"] == "allow"  # a rolling distribution: no release of it is ever past support
    for key in (("CronJob", "nightly"), ("Pod", "debug")):
        item = workloads[key]
        assert item["verdict"] == "deny"
        assert item["containers"][0]["libc"] == "musl"
        finding = next(f for f in item["findings"] if f["policy"] == "no-musl")
        assert {"policy", "rule", "action", "severity", "message", "container", "image"} <= set(finding)
        assert finding["action"] == "deny"
    summary = report["summary"]
    assert (summary["workloads"], summary["deny"], summary["images"], summary["problems"]) == (4, 3, 3, 0)
    assert {i["image"] for i in report["images"]} == {shop.alpine, shop.debian11, shop.rolling}


def test_table_groups_by_verdict(shop: Shop, tmp_path: Path) -> None:
    saved = tmp_path / "audit.txt"
    assert shop.audit("--out", str(saved))[0] == 1
    assert "DENY (3)" in saved.read_text()
    code, out, _ = shop.audit()
    assert code == 1
    deny = out.index("DENY (3)")
    assert out.index(f"{shop.ns}/Deployment/web") > deny
    assert "no-eol-distro" in out
    assert "no-musl" in out
    assert "elsewhere" not in out  # another namespace


def test_ci_reports_of_a_cluster(shop: Shop, tmp_path: Path) -> None:
    """--output sarif|junit|github: the same verdicts and exit status, a test suite per workload."""
    schema = Path(__file__).resolve().parents[1] / "fixtures" / "sarif" / "sarif-schema-2.1.0.json"
    saved = tmp_path / "audit.sarif"
    assert shop.audit("-o", "sarif", "--out", str(saved))[0] == 1
    log = json.loads(saved.read_text())
    jsonschema.Draft4Validator(json.loads(schema.read_text())).validate(log)
    rules = [rule["id"] for rule in log["runs"][0]["tool"]["driver"]["rules"]]
    assert rules[0] == "no-musl/no-musl"
    denied = {
        r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
        for r in log["runs"][0]["results"]
        if r["level"] == "error"
    }
    assert denied == {
        f"Deployment {shop.ns}/web: container app ({shop.debian11})",
        f"CronJob {shop.ns}/nightly: container app ({shop.alpine})",
        f"Pod {shop.ns}/debug: container app ({shop.alpine})",
    }

    code, out, _ = shop.audit("-o", "junit")
    assert code == 1
    root = ET.fromstring(out.encode())
    suites = {suite.get("name"): suite for suite in root.findall("testsuite")}
    assert set(suites) == {
        f"{kind} {shop.ns}/{name}"
        for kind, name in (
            ("Deployment", "web"),
            ("Deployment", "api"),
            ("CronJob", "nightly"),
            ("Pod", "debug"),
        )
    }
    # web fails no-eol-distro; each Alpine workload no-musl and no-eol-distro (3.19 is past support)
    assert root.get("failures") == "5"
    assert suites[f"Deployment {shop.ns}/api"].get("failures") == "0"

    code, out, _ = shop.audit("-o", "github")
    assert code == 1
    assert (
        sum(line.startswith("::error title=distroguard no-musl/no-musl::") for line in out.splitlines()) == 2
    )


def test_the_date_judged_is_injected(registry: RegistryServer, kube: ControlPlane, scratch: Scratch) -> None:
    """Debian 12 is supported on a day before its LTS ends (2028-06-30) and past its end on a day after:
    `--date` decides, not the day the test runs."""
    ns = scratch.namespace("audit-date")
    image = pushed(registry, unique("t/audit-date"), DEBIAN_12_ROOT, "debian12")
    kube.create(pod(ns, "bookworm", image))

    def verdict(day: str) -> tuple[int, str, str | None]:
        code, out, err = run(
            "--kubeconfig", str(kube.kubeconfig), "-n", ns, "--policy", str(POLICY_FILES[1]), "-o", "json",
            "--date", day,
        )  # fmt: skip
        assert code in (0, 1), err
        workload = json.loads(out)["workloads"][0]
        return code, workload["verdict"], workload["containers"][0]["eolState"]

    assert verdict("2025-01-15") == (0, "allow", "active")
    assert verdict("2030-01-15") == (1, "deny", "eol")
    code, _, err = run("--kubeconfig", str(kube.kubeconfig), "-n", ns, "--date", "next tuesday")
    assert code == 2
    assert "--date" in err


def test_fail_on_and_an_unresolvable_image(shop: Shop, registry: RegistryServer, scratch: Scratch) -> None:
    ns = scratch.namespace("audit-missing")
    shop.kube.create(pod(ns, "ghost", f"{registry.address}/t/nothing-here:1"))
    code, out, err = run(
        "--kubeconfig", str(shop.kube.kubeconfig), "-n", ns, "--policy", str(POLICY_FILES[1]), "-o", "json"
    )
    assert code == 2
    assert "error: " in err
    assert "nothing-here" in err
    ghost = json.loads(out)["workloads"][0]
    assert ghost["containers"][0]["error"]
    assert ghost["findings"][0]["rule"] == "onUnresolved"


def test_cluster_policies(shop: Shop, tmp_path: Path) -> None:
    from codegen.crds import render

    shop.kube.kubectl("apply", "-f", "-", input=render())
    shop.kube.kubectl(
        "wait", "--for=condition=Established", "crd/distropolicies.distroguard.dev", "--timeout=60s"
    )
    name = unique("musl")
    policy = (POLICIES / "no-musl.yaml").read_text().replace("name: no-musl", f"name: {name}")
    try:
        shop.kube.kubectl("apply", "-f", "-", input=policy)
        code, out, _ = run(
            "--kubeconfig", str(shop.kube.kubeconfig), "-n", shop.ns, "--cluster-policies", "-o", "json"
        )
    finally:  # cluster-wide, and a deny: it would apply to every later test's namespaces
        shop.kube.kubectl("delete", "distropolicy", name, "--ignore-not-found", check=False)
    report = json.loads(out)
    assert any(p.startswith("musl-") for p in report["policies"])
    debug = next(w for w in report["workloads"] if w["name"] == "debug")
    assert debug["verdict"] == "deny"
    assert code == 1


def test_pull_secrets_serve_their_own_namespace_only(
    kube: ControlPlane, basic_registry: RegistryServer, scratch: Scratch
) -> None:
    auth = (basic_registry.username, basic_registry.password)
    image = pushed(basic_registry, unique("t/private"), DEBIAN_12_ROOT, "v1", auth=auth)
    owner_ns = scratch.namespace("audit-secret")
    kube.create(pull_secret(owner_ns, basic_registry.address, *auth))
    kube.create(pod(owner_ns, "private", image, imagePullSecrets=[{"name": "pull"}]))
    stranger = scratch.namespace("audit-nosecret")
    kube.create(pod(stranger, "borrower", image))
    args = ("--kubeconfig", str(kube.kubeconfig), "--policy", str(POLICY_FILES[0]), "-o", "json")
    code, out, err = run(*args, "-n", owner_ns)
    assert code == 2, "without --use-pull-secrets the private registry refuses"
    code, out, err = run(*args, "-n", owner_ns, "--use-pull-secrets")
    assert (code, err) == (0, "")
    assert json.loads(out)["workloads"][0]["containers"][0]["os"].startswith("Debian 12")
    code, out, err = run(*args, "-n", stranger, "--use-pull-secrets")
    assert code == 2
    assert json.loads(out)["workloads"][0]["containers"][0]["error"]


# ---------------------------------------------------------------------------------------- the HTML page


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("Debian's chromium package is not installed (scripts/test installs it)", pytrace=False)
    return found


def browse(chromium: str, url: str, profile: Path, *extra: str) -> str:
    argv = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *extra,
        url,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


@pytest.fixture(scope="module")
def page(shop: Shop, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html") / "audit.html"
    code, _, err = shop.audit("-o", "html", "--out", str(out))
    assert code == 1
    assert err.startswith("wrote ")
    return out


def test_html_is_self_contained(page: Path) -> None:
    text = page.read_text()
    for external in ("http://", "https://", "<link", "src="):
        assert external not in text


def test_html_in_headless_chromium(page: Path, chromium: str, tmp_path: Path, shop: Shop) -> None:
    dom = browse(chromium, page.as_uri(), tmp_path / "profile", "--dump-dom")
    assert 'id="count-deny" data-count="3"' in dom
    assert 'id="count-workloads" data-count="4"' in dom
    assert 'data-name="musl" data-count="2"' in dom
    assert 'data-name="Debian 11 (bullseye)" data-count="1"' in dom
    assert f'data-policy="no-eol-distro" data-workload="Deployment {shop.ns}/web"' in dom
    assert "Remedy:" in dom
    assert 'data-eol="2024-08-14"' in dom  # on the timeline
    assert 'id="containers" data-sorted' not in dom  # nothing sorted until asked


def rows(dom: str) -> list[list[str]]:
    """The cells' text of each row of the containers table, in the order the page shows them."""
    body = dom[dom.index('id="containers"') :]
    return [
        re.findall(r"<td[^>]*>(.*?)</td>", row)
        for row in re.findall(r"<tr data-verdict=[^>]*>(.*?)</tr>", body)
    ]


def test_html_sorts_in_the_browser(page: Path, chromium: str, tmp_path: Path, shop: Shop) -> None:
    eol = [key for key, _ in COLUMNS].index("eol")
    image = [key for key, _ in COLUMNS].index("image")
    dom = browse(chromium, page.as_uri() + "?sort=eol&dir=asc", tmp_path / "profile", "--dump-dom")
    assert 'data-sorted="eol:asc"' in dom
    assert 'aria-sort="ascending"' in dom
    shown = rows(dom)
    dates = [r[eol] for r in shown if r[eol]]
    assert dates == sorted(dates)
    assert len(dates) >= 2
    assert shown[0][image] == shop.debian11  # the earliest EOL first
    assert [r[eol] for r in shown[len(dates) :]] == [""] * (len(shown) - len(dates))  # no date: last
    desc = rows(browse(chromium, page.as_uri() + "?sort=eol&dir=desc", tmp_path / "profile2", "--dump-dom"))
    assert [r[eol] for r in desc if r[eol]] == sorted(dates, reverse=True)
    by_name = rows(browse(chromium, page.as_uri() + "?sort=workload", tmp_path / "profile3", "--dump-dom"))
    names = [r[[key for key, _ in COLUMNS].index("workload")] for r in by_name]
    assert names == sorted(names)


def test_html_screenshot(page: Path, chromium: str, tmp_path: Path) -> None:
    shot = tmp_path / "audit.png"
    browse(chromium, page.as_uri(), tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2200")
    assert shot.stat().st_size > 10_000
