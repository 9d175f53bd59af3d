"""DistroPolicyExceptions end to end: `distroguard run --dev` against the real kube-apiserver, an Alpine image
in the real registry, a deny policy, and exceptions as objects, with kubectl saying what a user sees.

One distroguard process serves the module, deciding at the moment written in a clock file (`--dev-clock`):
a test moves the moment to see an exception near its end and past it, with no sleeping; each test puts the
clock back. Exceptions are honoured only in namespaces named `exc-ok-*` (`--exception-namespaces`).
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from distroguard.cli.main import main as cli_main
from distroguard.operator.clock import write_moment
from support.distros import ALPINE_ROOT
from support.images import ImageBuilder, push
from support.kube import ControlPlane
from support.manifests import deployment
from support.operator_process import OperatorProcess, running_operator
from support.polling import eventually
from support.registry_server import RegistryServer
from support.scratch import Scratch, unique

pytestmark = [pytest.mark.e2e, pytest.mark.registry]

START = datetime(2027, 1, 1, 12, tzinfo=UTC)
"""The moment the operator decides at, unless a test moves it."""
ALLOWED = "exc-ok"
NOT_ALLOWED = "exc-no"
POLICY_LABELS = {"e2e.distroguard.dev/module": "exceptions"}
EXPIRED_REASON = "DistroPolicyExceptionExpired"


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def alpine(registry: RegistryServer) -> str:
    repo = unique("e2e/exc-alpine")
    asyncio.run(push(registry.url, repo, "1", ImageBuilder().layer(ALPINE_ROOT).build()))
    return f"{registry.address}/{repo}:1"


@pytest.fixture(scope="module")
def clock(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clock") / "now"
    write_moment(path, START)
    return path


@pytest.fixture(scope="module")
def distroguard(
    kube: ControlPlane, clock: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    args = [
        *("--dev-clock", str(clock)),
        *("--exception-namespaces", f"{ALLOWED}-*"),
        *("--audit-debounce", "0.5"),
        *("--metrics-port", "0"),
    ]
    log_dir = tmp_path_factory.mktemp("distroguard")
    with running_operator(kube, "distroguard-exc", log_dir, args, ready_log="audit completed: ") as process:
        yield process


@pytest.fixture(autouse=True)
def scratch(kube: ControlPlane, clock: Path) -> Iterator[Scratch]:
    """The test's namespaces (with their exceptions), its policies, and the clock put back."""
    scratch = Scratch(kube)
    try:
        yield scratch
    finally:
        write_moment(clock, START)
        selector = ",".join(f"{key}={value}" for key, value in POLICY_LABELS.items())
        kube.kubectl("delete", "distropolicies", "-l", selector, "--ignore-not-found", check=False)
        scratch.close()


def apply(kube: ControlPlane, manifest: dict[str, Any], *, dry_run: bool = False) -> Any:
    args = ["apply", "-f", "-", *(["--dry-run=server"] if dry_run else [])]
    return kube.kubectl(*args, input=json.dumps(manifest), check=False)


def no_musl(kube: ControlPlane, ns: str) -> str:
    """A deny policy `no-alpine-*` with one rule, no-musl, covering namespace `ns` only."""
    name = unique("no-alpine")
    kube.kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "distroguard.dev/v1alpha1",
                "kind": "DistroPolicy",
                "metadata": {"name": name, "labels": POLICY_LABELS},
                "spec": {
                    "action": "deny",
                    "match": {"namespaces": [ns]},
                    "rules": [{"name": "no-musl", "denyLibc": ["musl"]}],
                },
            }
        ),
    )
    return name


def exception(ns: str, policy: str, name: str = "migrate-off-alpine", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "distroguard.dev/v1alpha1",
        "kind": "DistroPolicyException",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "policies": [{"policyName": policy, "ruleNames": ["no-musl"]}],
            "match": {"kinds": ["Deployment"], "names": ["web*"]},
            "expires": "2027-03-31",
            "reason": "moving the web tier to Debian",
            "ticket": "OPS-123",
            **spec,
        },
    }


def denied_then(kube: ControlPlane, manifest: dict[str, Any]) -> None:
    """Until a dry run of `manifest` is refused for musl (the policy reached distroguard's watch)."""

    def refused() -> bool:
        done = apply(kube, manifest, dry_run=True)
        return done.returncode != 0 and "musl" in done.stderr

    eventually(refused, what="a dry run refused for musl")


def admitted_with(kube: ControlPlane, manifest: dict[str, Any], text: str) -> str:
    """Until a dry run of `manifest` is admitted with a warning holding `text`; its stderr."""

    def admitted() -> str:
        done = apply(kube, manifest, dry_run=True)
        return str(done.stderr) if done.returncode == 0 and text in done.stderr else ""

    return eventually(admitted, what=f"a dry run admitted with a warning holding {text!r}")


def metrics_of(process: OperatorProcess) -> str:
    found = re.search(r"metrics on 127\.0\.0\.1:(\d+)/metrics", process.log_text())
    assert found, "the metrics endpoint was not announced"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{found.group(1)}/metrics", timeout=10) as response:
        return str(response.read().decode())


# ------------------------------------------------------------------------------------------------ tests


def test_a_denial_becomes_an_admission_with_a_warning_naming_the_exception(
    kube: ControlPlane, distroguard: OperatorProcess, alpine: str, scratch: Scratch
) -> None:
    ns = scratch.namespace(ALLOWED)
    policy = no_musl(kube, ns)
    web = deployment(ns, "web", alpine)
    denied_then(kube, web)

    kube.create(exception(ns, policy))
    expected = f"allowed by exception {ns}/migrate-off-alpine until 2027-03-31 (ticket OPS-123)"
    admitted_with(kube, web, expected)
    done = apply(kube, web)
    assert done.returncode == 0, done.stderr
    assert expected in done.stderr
    assert "musl" in done.stderr
    assert "about to end" not in done.stderr
    # The exception names `web*` Deployments: another workload of the namespace is still refused.
    other = apply(kube, deployment(ns, "api", alpine), dry_run=True)
    assert other.returncode != 0
    assert "musl" in other.stderr
    # kubectl shows it as a table with its policies, end and reason.
    table = kube.kubectl("get", "distropolicyexceptions", "-n", ns).stdout
    assert "POLICIES" in table
    assert policy in table
    assert "2027-03-31" in table
    assert "moving the web tier" in table


def test_an_exception_warns_before_its_end_and_is_ignored_after_it_with_one_event(
    kube: ControlPlane, distroguard: OperatorProcess, alpine: str, clock: Path, scratch: Scratch
) -> None:
    ns = scratch.namespace(ALLOWED)
    policy = no_musl(kube, ns)
    web = deployment(ns, "web", alpine)
    denied_then(kube, web)
    kube.create(exception(ns, policy, expires="2027-02-01T00:00:00Z", warnDaysBefore=14))
    admitted_with(kube, web, "allowed by exception")

    write_moment(clock, datetime(2027, 1, 25, 12, tzinfo=UTC))  # in its last 14 days
    warned = admitted_with(kube, web, "about to end")
    assert "about to end (in 6 days): then this is denied" in warned

    write_moment(clock, datetime(2027, 2, 1, 0, 0, tzinfo=UTC))  # its end
    denied_then(kube, web)

    def expiry_events() -> list[dict[str, Any]]:
        found = kube.kubectl_json("get", "events", "-n", ns)["items"]
        return [e for e in found if e["reason"] == EXPIRED_REASON]

    # A change to the exception starts an audit (the audit is the one writer of Events).
    kube.kubectl("annotate", "distropolicyexception", "migrate-off-alpine", "-n", ns, "touched=1")
    (event,) = eventually(expiry_events, what="a Warning event on the expired exception")
    assert event["type"] == "Warning"
    assert event["involvedObject"]["kind"] == "DistroPolicyException"
    assert event["involvedObject"]["name"] == "migrate-off-alpine"
    assert "expired at 2027-02-01T00:00:00Z" in event["message"]
    # Once: a later audit posts no second one.
    audits = distroguard.log_text().count("audit completed: ")
    touch = ("annotate", "distropolicyexception", "migrate-off-alpine", "-n", ns)
    kube.kubectl(*touch, "touched=2", "--overwrite")
    eventually(lambda: distroguard.log_text().count("audit completed: ") > audits, what="another audit")
    assert len(expiry_events()) == 1

    # Moved back before its end (the clock, not the store, decides): honoured again.
    write_moment(clock, START)
    admitted_with(kube, web, "allowed by exception")


def test_an_exception_in_a_namespace_not_allowed_is_ignored_with_a_logged_reason(
    kube: ControlPlane, distroguard: OperatorProcess, alpine: str, scratch: Scratch
) -> None:
    ns = scratch.namespace(NOT_ALLOWED)
    policy = no_musl(kube, ns)
    web = deployment(ns, "web", alpine)
    denied_then(kube, web)
    kube.create(exception(ns, policy))
    eventually(
        lambda: (
            f"DistroPolicyException {ns}/migrate-off-alpine is ignored: exceptions are not honoured"
            in distroguard.log_text()
        ),
        what="the exception ignored, with the reason in the log",
    )
    done = apply(kube, web)
    assert done.returncode != 0
    assert "musl" in done.stderr
    assert "allowed by exception" not in done.stderr


def test_a_malformed_exception_is_refused_by_the_schema_or_ignored_with_a_logged_reason(
    kube: ControlPlane, distroguard: OperatorProcess, alpine: str, scratch: Scratch
) -> None:
    ns = scratch.namespace(ALLOWED)
    policy = no_musl(kube, ns)
    web = deployment(ns, "web", alpine)
    denied_then(kube, web)

    no_reason = exception(ns, policy, "no-reason")
    del no_reason["spec"]["reason"]
    refused = apply(kube, no_reason)
    assert refused.returncode != 0
    assert "spec.reason" in refused.stderr
    not_a_date = apply(kube, exception(ns, policy, "not-a-date", expires="after the migration"))
    assert not_a_date.returncode != 0
    assert "spec.expires" in not_a_date.stderr
    no_policy = apply(kube, exception(ns, policy, "no-policy", policies=[]))
    assert no_policy.returncode != 0
    assert "spec.policies" in no_policy.stderr

    # Valid for the schema, but further ahead than --exception-max-days (365) from the operator's clock.
    kube.create(exception(ns, policy, "too-long", expires="2028-06-30"))
    logged = f"DistroPolicyException {ns}/too-long:\n  spec.expires: 2028-06-30 is more than 365 days ahead"
    eventually(lambda: logged in distroguard.log_text(), what="the exception ignored, the reason logged")
    done = apply(kube, web, dry_run=True)
    assert done.returncode != 0
    assert "allowed by exception" not in done.stderr


def test_excepted_results_are_skip_in_the_reports_and_ending_ones_are_counted(
    kube: ControlPlane, distroguard: OperatorProcess, alpine: str, scratch: Scratch
) -> None:
    ns = scratch.namespace(ALLOWED)
    policy = no_musl(kube, ns)
    web = deployment(ns, "web", alpine)
    denied_then(kube, web)
    kube.create(exception(ns, policy, expires="2027-01-20"))  # 19 days after START: ends within 30
    admitted_with(kube, web, "allowed by exception")
    assert apply(kube, web).returncode == 0

    def skipped() -> dict[str, Any] | None:
        found = kube.kubectl_json("get", "policyreports", "-n", ns)["items"]
        for report in found:
            if report["scope"]["name"] == "web" and report.get("summary", {}).get("skip"):
                return dict(report)
        return None

    report = eventually(skipped, what="a PolicyReport of web with a skip result")
    (result,) = [r for r in report["results"] if r["policy"] == policy]
    assert result["rule"] == "no-musl"
    assert result["result"] == "skip"
    assert result["properties"]["exception"] == f"{ns}/migrate-off-alpine"
    assert result["properties"]["exceptionExpires"] == "2027-01-20"
    assert result["properties"]["exceptionTicket"] == "OPS-123"
    assert result["properties"]["exceptedAction"] == "deny"
    assert report["summary"]["skip"] == 1
    assert report["summary"]["fail"] == 0
    assert "allowed by exception" in result["message"]

    metrics = metrics_of(distroguard)
    found = re.search(r"^distroguard_exceptions_ending_soon (\S+)$", metrics, re.MULTILINE)
    assert found is not None
    assert float(found.group(1)) >= 1
    # When it ends, for the alert on exceptions ending soon: the day after its expires, 00:00 UTC.
    labels = f'exception="migrate-off-alpine",exception_namespace="{ns}"'
    end = re.search(rf"^distroguard_exception_end_timestamp_seconds\{{{labels}\}} (\S+)$", metrics, re.M)
    assert end is not None, metrics
    assert float(end.group(1)) == datetime(2027, 1, 21, tzinfo=UTC).timestamp()


def test_the_audit_cli_applies_the_clusters_exceptions_and_lists_those_ending_soon(
    kube: ControlPlane, distroguard: OperatorProcess, alpine: str, scratch: Scratch
) -> None:
    ns = scratch.namespace(ALLOWED)
    policy = no_musl(kube, ns)
    web = deployment(ns, "web", alpine)
    denied_then(kube, web)
    kube.create(exception(ns, policy, expires="2027-01-20"))
    kube.create(exception(ns, policy, "later", expires="2027-06-30"))
    admitted_with(kube, web, "allowed by exception")
    assert apply(kube, web).returncode == 0

    def audit(*args: str) -> Any:
        argv = ["audit", "--kubeconfig", str(kube.kubeconfig), "-n", ns, "--cluster-policies"]
        done = CliRunner().invoke(cli_main, [*argv, "--date", "2027-01-01", *args])
        if done.exception and not isinstance(done.exception, SystemExit):
            raise done.exception
        return done

    found = audit("-o", "json")
    assert found.exit_code == 0, found.output
    report = json.loads(found.stdout)
    assert [e["name"] for e in report["exceptionsEndingSoon"]] == ["migrate-off-alpine"]
    assert report["exceptionsEndingSoon"][0]["daysLeft"] == 20  # it holds through 2027-01-20
    (workload,) = report["workloads"]
    assert workload["verdict"] == "allow"
    (finding,) = workload["findings"]
    # Two exceptions cover it: the one that ends last is named.
    assert finding["exception"]["name"] == f"{ns}/later"
    table = audit()
    assert "Exceptions ending within 30 days" in table.stdout
    assert f"{ns}/migrate-off-alpine: until 2027-01-20" in table.stdout
    ignored = audit("-o", "json", "--no-cluster-exceptions")
    assert ignored.exit_code == 1
    assert json.loads(ignored.stdout)["workloads"][0]["verdict"] == "deny"
