"""DistroPolicyException: the model, the pure matching, admission's view of a workload, the reports, the
operator's store and the exception files."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from distroguard.admission.decide import answer
from distroguard.admission.exceptions import target_of
from distroguard.admission.review import AdmissionRequest, GroupVersionKind
from distroguard.admission.workloads import Container
from distroguard.audit.inventory import AuditedWorkload, WorkloadRef
from distroguard.audit.policyreports import summary_of, workload_report, workload_results
from distroguard.audit.results import audit_workloads, summarize
from distroguard.cli.main import main as cli_main
from distroguard.errors import InvalidException
from distroguard.model import Decision, Finding
from distroguard.model.crd import exception_crd
from distroguard.model.decision import ContainerVerdict
from distroguard.model.exception import DistroPolicyException, ExceptionLimits
from distroguard.model.policyreport import Timestamp
from distroguard.model.validation import parse_exception
from distroguard.operator.exceptionstore import ExceptionStore
from distroguard.operator.metrics import EXCEPTIONS_ENDING_DAYS, Metrics
from distroguard.operator.settings import RunSettings
from distroguard.policy.exceptions import (
    Exceptions,
    ExceptionTarget,
    ExceptionTrust,
    apply_exceptions,
    ending_within,
    exception_warnings,
)
from distroguard.policyfiles import load_exceptions
from support.distros import ALPINE_ROOT
from support.images import ImageBuilder, write_oci_layout
from support.lifecycles import NOW, TODAY, facts
from support.lifecycles import catalog as make_catalog
from support.policies import policy

ALPINE = "registry.example/team/app:1"


def document(
    name: str = "migrate-off-alpine",
    namespace: str | None = "team-a",
    *,
    expires: object = "2026-03-31",
    policies: list[dict[str, Any]] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "distroguard.dev/v1alpha1",
        "kind": "DistroPolicyException",
        "metadata": {"name": name, **({"namespace": namespace} if namespace else {})},
        "spec": {
            "policies": [{"policyName": "no-alpine"}] if policies is None else policies,
            "expires": expires,
            "reason": "moving to Debian",
            **spec,
        },
    }


def exception(*args: Any, **kwargs: Any) -> DistroPolicyException:
    return parse_exception(document(*args, **kwargs), "test")


def finding(
    rule: str = "no-musl",
    *,
    policy: str = "no-alpine",
    action: Any = "deny",
    container: str = "app",
    image: str = ALPINE,
) -> Finding:
    return Finding(
        policy=policy,
        rule=rule,
        action=action,
        severity="high",
        reason="libc-denied",
        message=f'container "{container}": {image} uses musl',
        container=container,
        image=image,
    )


def decision(*findings: Finding) -> Decision:
    names = dict.fromkeys(f.container for f in findings) or {"app": None}
    verdict: Any = "deny" if any(f.action == "deny" for f in findings) else "allow"
    return Decision(verdict, tuple(ContainerVerdict(n, ALPINE, verdict) for n in names), findings)


TEAM_A = ExceptionTarget("team-a", "Deployment", "api")


# ------------------------------------------------------------------------------------------ the model


def test_expires_is_a_date_held_through_its_day_or_a_timestamp_with_its_zone() -> None:
    assert exception(expires="2027-03-31").spec.ends == datetime(2027, 4, 1, tzinfo=UTC)
    stamp = exception(expires="2027-03-31T18:00:00+02:00").spec
    assert stamp.ends == datetime(2027, 3, 31, 16, tzinfo=UTC)
    # YAML reads an unquoted date as a date: it is the same exception.
    assert exception(expires=date(2027, 3, 31)).spec.expires == "2027-03-31"
    for bad in ("2027-03-31T18:00:00", "next spring", "2027-02-30", datetime(2027, 3, 31, 18)):
        with pytest.raises(InvalidException, match=r"spec\.expires"):
            exception(expires=bad)


def test_reason_and_policies_are_required_and_unknown_fields_named() -> None:
    data = document()
    del data["spec"]["reason"]
    data["spec"]["tickets"] = "OPS-1"
    with pytest.raises(InvalidException) as caught:
        parse_exception(data, "x.yaml")
    text = str(caught.value)
    assert "spec.reason: required field is missing" in text
    assert "spec.tickets: unknown field (did you mean ticket?)" in text
    with pytest.raises(InvalidException, match=r"spec\.policies"):
        exception(policies=[])


def test_the_crd_says_what_the_model_says() -> None:
    crd = exception_crd()
    assert crd["spec"]["scope"] == "Namespaced"
    version = crd["spec"]["versions"][0]
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[:3] == ["Policies", "Expires", "Reason"]
    assert columns[-1] == "Age"
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert set(spec["required"]) == {"policies", "expires", "reason"}
    assert spec["properties"]["policies"]["items"]["required"] == ["policyName"]
    assert "pattern" in spec["properties"]["expires"]


def test_an_end_too_far_ahead_is_a_problem_measured_from_now() -> None:
    limits = ExceptionLimits(max_days=30)
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert limits.problems(exception(expires="2026-03-31"), now) == []
    (problem,) = limits.problems(exception(expires="2026-04-01"), now)
    assert "more than 30 days ahead" in problem
    assert "2026-03-31" in problem
    assert limits.problems(exception(expires="2026-03-31T12:00:00Z"), now) == []
    assert limits.problems(exception(expires="2026-03-31T12:00:01Z"), now)


# ------------------------------------------------------------------------------------------ matching


def test_a_covered_denial_is_admitted_with_a_warning_naming_the_exception() -> None:
    live = exception(expires="2027-03-31", ticket="OPS-123")
    now = datetime(2026, 12, 1, tzinfo=UTC)
    before = decision(finding())
    after = apply_exceptions(before, [live], TEAM_A, now)
    assert before.verdict == "deny"
    assert after.verdict == "allow"
    assert after.containers[0].verdict == "allow"
    (excepted,) = after.findings
    assert excepted.action == "audit"
    assert excepted.exception is not None
    assert excepted.exception.action == "deny"
    reply = answer(after)
    assert reply.allowed
    (warning,) = reply.warnings
    assert warning.startswith(
        "allowed by exception team-a/migrate-off-alpine until 2027-03-31 (ticket OPS-123)"
    )
    assert "uses musl" in warning


def test_in_its_last_days_the_warning_says_the_exception_is_about_to_end() -> None:
    live = exception(expires="2027-03-31", warnDaysBefore=14)
    early = apply_exceptions(decision(finding()), [live], TEAM_A, datetime(2027, 3, 1, tzinfo=UTC))
    late = apply_exceptions(decision(finding()), [live], TEAM_A, datetime(2027, 3, 25, tzinfo=UTC))
    assert "about to end" not in exception_warnings(early)[0]
    (warning,) = exception_warnings(late)
    assert "about to end (in 7 days): then this is denied" in warning


def test_an_expired_exception_is_ignored() -> None:
    ended = exception(expires="2026-03-31")
    at_end = datetime(2026, 4, 1, tzinfo=UTC)
    assert apply_exceptions(decision(finding()), [ended], TEAM_A, at_end).verdict == "deny"
    last_second = at_end - timedelta(seconds=1)
    assert apply_exceptions(decision(finding()), [ended], TEAM_A, last_second).verdict == "allow"


def test_only_the_named_rules_and_images_are_excepted() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    by_rule = exception(policies=[{"policyName": "no-alpine", "ruleNames": ["no-musl"]}])
    both = decision(finding("no-musl"), finding("eol"))
    after = apply_exceptions(both, [by_rule], TEAM_A, now)
    assert after.verdict == "deny"
    assert [f.exception is not None for f in after.findings] == [True, False]
    by_image = exception(match={"images": ["registry.example/other/*"]})
    assert apply_exceptions(decision(finding()), [by_image], TEAM_A, now).verdict == "deny"
    other_policy = exception(policies=[{"policyName": "supported"}])
    assert apply_exceptions(decision(finding()), [other_policy], TEAM_A, now).verdict == "deny"


def test_an_exception_covers_its_own_namespace_and_the_named_workloads_alone() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    named = exception(match={"kinds": ["Deployment"], "names": ["api*"]})
    assert apply_exceptions(decision(finding()), [named], TEAM_A, now).verdict == "allow"
    for target in (
        ExceptionTarget("team-b", "Deployment", "api"),
        ExceptionTarget("team-a", "StatefulSet", "api"),
        ExceptionTarget("team-a", "Deployment", "web"),
        ExceptionTarget("team-a", "Pod", ""),  # not named yet: not an exception's to cover
    ):
        assert apply_exceptions(decision(finding()), [named], target, now).verdict == "deny", target
    # Outside a cluster (`distroguard check`) nothing of the workload is known: the images decide.
    assert apply_exceptions(decision(finding()), [named], ExceptionTarget(), now).verdict == "allow"
    # A pod of the Deployment, by its ReplicaSet.
    pod = ExceptionTarget("team-a", "Pod", "api-5d8f-x", (("ReplicaSet", "api-5d8f"), ("Deployment", "api")))
    assert apply_exceptions(decision(finding()), [named], pod, now).verdict == "allow"


def test_trust_limits_where_exceptions_are_honoured_and_the_admin_namespace_holds_cluster_wide() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    local = exception()
    only_b = ExceptionTrust(namespaces=("team-b*",))
    assert apply_exceptions(decision(finding()), [local], TEAM_A, now, only_b).verdict == "deny"
    none = ExceptionTrust(namespaces=())
    assert apply_exceptions(decision(finding()), [local], TEAM_A, now, none).verdict == "deny"
    admin = ExceptionTrust(admin_namespace="platform")
    assert apply_exceptions(decision(finding()), [local], TEAM_A, now, admin).verdict == "deny"
    central = exception(namespace="platform", match={"namespaces": ["team-*"]})
    assert apply_exceptions(decision(finding()), [central], TEAM_A, now, admin).verdict == "allow"
    elsewhere = ExceptionTarget("shop", "Deployment", "api")
    assert apply_exceptions(decision(finding()), [central], elsewhere, now, admin).verdict == "deny"
    # Without the admin namespace, the same exception covers its own namespace only.
    assert apply_exceptions(decision(finding()), [central], TEAM_A, now).verdict == "deny"


def test_the_exception_that_ends_last_is_named_and_ending_soon_lists_the_first_first() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    soon, later = exception("soon", expires="2026-01-20"), exception("later", expires="2026-06-01")
    (excepted,) = apply_exceptions(decision(finding()), [soon, later], TEAM_A, now).findings
    assert excepted.exception is not None
    assert excepted.exception.exception == "team-a/later"
    assert [e.name for e in ending_within([later, soon], now, 30)] == ["soon"]
    assert [e.name for e in ending_within([later, soon], now, 365)] == ["soon", "later"]


def test_a_warning_finding_excepted_still_warns_an_audit_one_does_not() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    both = decision(finding("a", action="warn"), finding("b", action="audit"))
    after = apply_exceptions(both, [exception()], TEAM_A, now)
    (warning,) = exception_warnings(after)
    assert "allowed by exception" in warning


# ------------------------------------------------------------------------------------------ admission


def test_admission_sees_the_pod_of_a_deployment_through_its_replicaset() -> None:
    obj = {
        "metadata": {
            "generateName": "api-5d8f-",
            "labels": {"pod-template-hash": "5d8f"},
            "ownerReferences": [
                {"kind": "ReplicaSet", "name": "api-5d8f", "controller": True},
                {"kind": "Other", "name": "x"},
            ],
        }
    }
    request = AdmissionRequest(
        "uid", "CREATE", GroupVersionKind("", "v1", "Pod"), "pods", namespace="team-a", name="", object=obj
    )
    target = target_of(request, "Pod")
    assert target == ExceptionTarget("team-a", "Pod", "", (("ReplicaSet", "api-5d8f"), ("Deployment", "api")))


# ------------------------------------------------------------------------------------------ reports


def test_excepted_results_are_skip_with_the_exception_and_its_expiry_and_counted() -> None:
    catalog = make_catalog()
    policies = [policy("no-alpine", {"name": "no-musl", "denyLibc": ["musl"]})]
    image = "alpine"
    summary = summarize(image, facts("alpine", "3.21.0", libc="musl", reference=image), catalog, TODAY)
    workload = AuditedWorkload(
        WorkloadRef("team-a", "Deployment", "api"), "pods", (Container("app", image, "containers"),), 1
    )
    live = Exceptions((exception(expires=(NOW + timedelta(days=20)).date().isoformat(), ticket="OPS-9"),))
    (result,) = audit_workloads(
        [workload], {(workload.ref, image): summary}, policies, catalog, NOW, {}, None, live
    )
    assert result.verdict == "allow"
    results = workload_results(result, policies, Timestamp(seconds=0))
    (skipped,) = results
    assert skipped.result == "skip"
    assert skipped.properties["exception"] == "team-a/migrate-off-alpine"
    assert skipped.properties["exceptionExpires"] == (NOW + timedelta(days=20)).date().isoformat()
    assert skipped.properties["exceptionTicket"] == "OPS-9"
    assert skipped.properties["exceptedAction"] == "deny"
    assert summary_of(results).skip == 1
    assert workload_report(result, results)["summary"]["skip"] == 1


# ------------------------------------------------------------------------------------------ the store


def test_the_store_keeps_valid_honoured_exceptions_and_logs_why_it_ignores_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    store = ExceptionStore(
        trust=ExceptionTrust(namespaces=("team-*",)), limits=ExceptionLimits(90), clock=lambda: now
    )
    with caplog.at_level(logging.INFO):
        store.observe("ADDED", document("good", expires="2026-02-01"))
        store.observe("ADDED", document("far", expires="2027-01-01"))
        store.observe("ADDED", document("bad", expires="2026-02-01", reason=""))
        store.observe("ADDED", document("foreign", namespace="shop", expires="2026-02-01"))
    assert [e.name for e in store.current().items] == ["good"]
    assert "more than 90 days ahead" in caplog.text
    assert "spec.reason" in caplog.text
    assert "not honoured in its namespace" in caplog.text
    assert store.ending_within(31) == 0
    assert store.ending_within(32) == 1  # it holds through 2026-02-01: it ends 32 days from now
    assert store.expired(datetime(2026, 2, 2, tzinfo=UTC))[0].name == "good"
    # Fixed: loaded; deleted: gone.
    store.observe("MODIFIED", document("far", expires="2026-03-01"))
    assert [e.name for e in store.current().items] == ["far", "good"]
    store.observe("DELETED", document("good"))
    assert [e.name for e in store.current().items] == ["far"]


def test_exception_files_and_directories_load_and_names_are_unique(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(yaml.safe_dump_all([document("one"), document("two")]))
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "b.yml").write_text(yaml.safe_dump(document("three", namespace=None)))
    assert [e.ref for e in load_exceptions([tmp_path])] == ["team-a/one", "team-a/two", "three"]
    (tmp_path / "more" / "c.yaml").write_text(yaml.safe_dump(document("one")))
    with pytest.raises(InvalidException, match="already defined"):
        load_exceptions([tmp_path])


def test_the_metric_counts_the_exceptions_ending_soon() -> None:
    asked: list[float] = []

    def ending(days: float) -> int:
        asked.append(days)
        return 3

    metrics = Metrics(process=False)
    metrics.track_exceptions(ending)
    body, _ = metrics.render()
    assert "distroguard_exceptions_ending_soon 3.0" in body.decode()
    assert asked == [EXCEPTIONS_ENDING_DAYS]


def test_the_metric_says_when_each_exception_in_force_ends() -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    store = ExceptionStore(trust=ExceptionTrust(namespaces=("*",)), clock=lambda: now[0])
    store.observe("ADDED", document("soon", expires="2026-01-05"))
    store.observe("ADDED", document("later", namespace="team-b", expires="2026-03-01"))
    metrics = Metrics(process=False)
    metrics.track_exceptions(store.ending_within, store.ends)
    value = metrics.registry.get_sample_value
    name = "distroguard_exception_end_timestamp_seconds"
    soon = value(name, {"exception_namespace": "team-a", "exception": "soon"})
    later = value(name, {"exception_namespace": "team-b", "exception": "later"})
    assert soon is not None
    assert later is not None
    # The end is the day after `expires` (the exception holds through that date), as a Unix time.
    (ends,) = (e.spec.ends for e in store.current().items if e.name == "soon")
    assert datetime.fromtimestamp(soon, UTC) == ends == datetime(2026, 1, 6, tzinfo=UTC)
    assert later > soon
    now[0] = datetime(2026, 2, 1, tzinfo=UTC)  # `soon` has ended: no longer listed
    assert value(name, {"exception_namespace": "team-a", "exception": "soon"}) is None
    assert value(name, {"exception_namespace": "team-b", "exception": "later"}) == later


# ------------------------------------------------------------------------------------------ the CLI


def test_check_with_exception_files_does_what_the_cluster_would(tmp_path: Path) -> None:
    image = f"oci:{write_oci_layout(tmp_path / 'alpine', ImageBuilder().layer(ALPINE_ROOT).build())}"
    policies = tmp_path / "policy.yaml"
    policies.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "distroguard.dev/v1alpha1",
                "kind": "DistroPolicy",
                "metadata": {"name": "no-alpine"},
                "spec": {"rules": [{"name": "no-musl", "denyLibc": ["musl"]}]},
            }
        )
    )
    soon = (datetime.now(UTC) + timedelta(days=5)).date().isoformat()
    files = tmp_path / "exceptions"
    files.mkdir()
    (files / "live.yaml").write_text(yaml.safe_dump(document(expires=soon, ticket="OPS-1")))
    args = ["check", image, "--policy", str(policies), "-o", "json"]

    denied = CliRunner().invoke(cli_main, args)
    assert denied.exit_code == 1, denied.output
    excepted = CliRunner().invoke(cli_main, [*args, "--exception", str(files)])
    assert excepted.exit_code == 0, excepted.output
    (found,) = json.loads(excepted.stdout)["findings"]
    assert found["action"] == "audit"
    assert found["exception"] == {
        "name": "team-a/migrate-off-alpine",
        "expires": soon,
        "action": "deny",
        "ending": True,
        "ticket": "OPS-1",
    }
    table = CliRunner().invoke(cli_main, [*args[:-2], "--exception", str(files)])
    assert table.exit_code == 0
    assert "about to end" in table.stdout
    # Past its end, or further ahead than allowed: ignored, with a warning, as in the cluster.
    (files / "live.yaml").write_text(yaml.safe_dump(document(expires="2020-01-01")))
    expired = CliRunner().invoke(cli_main, [*args, "--exception", str(files)])
    assert expired.exit_code == 1
    assert "expired at 2020-01-01 and is ignored" in expired.stderr
    (files / "live.yaml").write_text(yaml.safe_dump(document(expires=soon)))
    too_far = CliRunner().invoke(cli_main, [*args, "--exception", str(files), "--exception-max-days", "1"])
    assert too_far.exit_code == 1
    assert "more than 1 days ahead" in too_far.stderr


def test_run_takes_the_namespaces_or_the_admin_namespace_not_both() -> None:
    with pytest.raises(ValueError, match="not both"):
        RunSettings(dev=True, exception_namespaces=("team-*",), exception_admin_namespace="platform")
    assert RunSettings(dev=True, exception_admin_namespace="platform").exception_admin_namespace == "platform"
    with pytest.raises(ValueError, match="exception-max-days"):
        RunSettings(dev=True, exception_max_days=0)


def test_an_excepted_unresolved_image_warns_once_naming_the_exception() -> None:
    unresolved = Finding(
        policy="no-alpine",
        rule="onUnresolved",
        action="deny",
        severity="low",
        reason="unresolved",
        message="its image could not be inspected (timeout); policy no-alpine denies such images",
        container="app",
        image=ALPINE,
    )
    after = apply_exceptions(decision(unresolved), [exception()], TEAM_A, datetime(2026, 1, 1, tzinfo=UTC))
    reply = answer(after)
    assert reply.allowed
    (warning,) = reply.warnings
    assert warning.startswith("allowed by exception team-a/migrate-off-alpine")
