"""`distroguard audit`: every workload of a cluster against the policies, from a laptop, no install needed."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from distroguard.audit.cluster import Cluster, Scope
from distroguard.audit.html import render_html
from distroguard.audit.jsonreport import audit_json
from distroguard.audit.resolve import DEFAULT_CONCURRENCY, Lookup, Outcome, ResolveSettings
from distroguard.audit.run import AuditRequest, run_audit
from distroguard.audit.run import Progress as AuditProgress
from distroguard.audit.table import render_table
from distroguard.cli.images import image_options, lookup_options
from distroguard.cli.proxies import PROXY_EPILOG
from distroguard.eol import EolCatalog, default_cache_path, load_catalog
from distroguard.errors import DistroguardError
from distroguard.model import Platform
from distroguard.model.exception import DistroPolicyException
from distroguard.model.policy import DistroPolicy
from distroguard.policy.exceptions import Exceptions, ExceptionTrust, ending_within
from distroguard.policy.scanning import scan_mode
from distroguard.policyfiles import load_policies

EXIT_VIOLATIONS = 1
EXIT_ERRORS = 2


class _Bar(AuditProgress):
    """A rich progress bar of image lookups, on stderr."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("resolving images"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task = self._progress.add_task("images", total=None)

    def __enter__(self) -> _Bar:
        self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def start(self, total: int) -> None:
        self._progress.update(self._task, total=total)

    def advance(self, lookup: Lookup, outcome: Outcome) -> None:
        self._progress.advance(self._task)


def _platforms(
    text: str, platform: Platform, listed: tuple[Platform, ...] | None
) -> tuple[Platform, ...] | None:
    """The platforms `--platform` fixes (None: not given, the Nodes' labels decide); `all` means nothing
    for pods that run on nodes, and is refused."""
    ctx = click.get_current_context()
    if ctx.get_parameter_source("platform_text") == click.core.ParameterSource.DEFAULT:
        return None
    if listed is None:
        raise click.BadParameter(
            f"{text!r}: give the platforms to judge on, not all", param_hint="--platform"
        )
    return listed or (platform,)


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_ERRORS)


@click.command(epilog=PROXY_EPILOG.format(what="registries"))
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False),
    help="Kubeconfig file (default: $KUBECONFIG or ~/.kube/config).",
)
@click.option("--context", "context_name", help="Kubeconfig context (default: the current one).")
@click.option("--namespace", "-n", help="Audit this namespace (default: the context's namespace).")
@click.option("--all-namespaces", "-A", is_flag=True, help="Audit every namespace.")
@click.option(
    "--policy",
    "policy_paths",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A policy file or a directory of them (repeatable).",
)
@click.option("--cluster-policies", is_flag=True, help="Evaluate the DistroPolicies stored in the cluster.")
@click.option(
    "--use-pull-secrets",
    is_flag=True,
    help="Also use each namespace's image pull secrets (the pods' and their service accounts'), "
    "for that namespace's images only.",
)
@click.option(
    "--output",
    "-o",
    type=click.Choice(["table", "json", "html", "sarif", "junit", "github"]),
    default="table",
    show_default=True,
)
@click.option(
    "--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the output to FILE."
)
@click.option(
    "--fail-on",
    type=click.Choice(["deny", "warn"]),
    default="deny",
    show_default=True,
    help="Exit 1 when a workload's verdict is at least this.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=DEFAULT_CONCURRENCY,
    show_default=True,
    help="Images resolved at the same time.",
)
@click.option(
    "--date",
    "on",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Judge support dates as of this day (default: today): what a coming day will refuse.",
)
@click.option(
    "--cluster-exceptions/--no-cluster-exceptions",
    default=True,
    show_default=True,
    help="Apply the cluster's live DistroPolicyExceptions, as the cluster does (excepted findings are "
    "shown as skip), and list those that end within --exceptions-ending-days.",
)
@click.option(
    "--exception-namespaces",
    default="*",
    show_default=True,
    metavar="LIST",
    help="As `run --exception-namespaces`: whose exceptions are honoured.",
)
@click.option(
    "--exception-admin-namespace",
    metavar="NAMESPACE",
    help="As `run --exception-admin-namespace`: honour only this namespace's exceptions, cluster-wide.",
)
@click.option(
    "--exceptions-ending-days",
    type=click.IntRange(0, 3650),
    default=30,
    show_default=True,
    help="List the exceptions that end within this many days.",
)
@image_options
def audit(
    kubeconfig: str | None,
    context_name: str | None,
    namespace: str | None,
    all_namespaces: bool,
    policy_paths: tuple[Path, ...],
    cluster_policies: bool,
    use_pull_secrets: bool,
    output: str,
    out_path: Path | None,
    fail_on: str,
    concurrency: int,
    on: datetime | None,
    cluster_exceptions: bool,
    exception_namespaces: str,
    exception_admin_namespace: str | None,
    exceptions_ending_days: int,
    platform_text: str,
    thorough: bool,
    insecure_registry: tuple[str, ...],
    docker_config: str | None,
) -> None:
    """Audit a cluster's workloads: what their images are built on, and what the policies say.

    Pods are grouped by their top owner (Deployment, StatefulSet, DaemonSet, CronJob or Job, or the bare
    Pod); a workload without pods (scaled to zero, a CronJob between runs) is audited through its pod
    template. Each distinct image is resolved once; every policy is evaluated whatever its action.

    \b
    Output:
      table  workloads grouped by verdict (deny, warn, allow)
      json   one object, stable for scripts (keys are only ever added):
             {"kind": "DistroguardAudit", "version": 1, "generated", "context", "namespace" (null: all),
              "policies": [names], "eolCatalog": date,
              "summary": {"workloads", "deny", "warn", "allow", "images", "problems"},
              "workloads": [{"kind", "namespace", "name", "source": "pods"|"template", "pods",
                             "verdict", "eol", "containers": [{"container", "section", "image", "digest",
                             "verdict", "os", "libc", "libcVersion", "eol", "eolState", "error"?}],
                             "findings": [{"policy", "rule", "action", "severity", "message",
                                           "suggestion"?, "container", "image"}]}],
              "images": [{"image", "digest", "os", "osId", "libc", "libcVersion", "eol",
                          "extendedUntil", "eolState", "error"?}],
              "problems": [messages]}
      html   one self-contained page (needs --out): counts by distribution and C library, an EOL
             timeline, the violations with their remedies, a sortable table of every container
      sarif  SARIF 2.1.0 (code scanning): one rule per policy rule, one result per finding
      junit  JUnit XML: a test suite per workload, a test case per container x policy rule
      github GitHub Actions workflow commands: one annotation per finding

    Platforms: without --platform, a scheduled pod's images are judged on its node's platform (the Node's
    kubernetes.io/os and kubernetes.io/arch labels), and a workload without pods on the Nodes' platforms
    (those its pod spec pins to kubernetes.io/arch, if it does), as the admission webhook judges them;
    linux/amd64 when Nodes cannot be listed. --platform LIST judges every workload on that list instead.

    Exit status: 0 when no workload's verdict reaches --fail-on, 1 when one does, 2 on errors (the
    cluster cannot be read, a bad policy, an image that cannot be resolved).
    """
    if namespace and all_namespaces:
        raise click.UsageError("give --namespace or --all-namespaces, not both")
    if bool(policy_paths) == cluster_policies:
        raise click.UsageError("give --policy FILE_OR_DIR or --cluster-policies (one of them)")
    trust = ExceptionTrust(
        tuple(n.strip() for n in exception_namespaces.split(",") if n.strip()), exception_admin_namespace
    )
    if output == "html" and out_path is None:
        raise click.UsageError("--output html writes a file: give --out FILE")
    options = lookup_options(platform_text, thorough, insecure_registry, docker_config)
    platforms = _platforms(platform_text, options.platform, options.platforms)
    policies: list[DistroPolicy] = []
    if policy_paths:
        try:
            policies = load_policies(policy_paths)
        except DistroguardError as exc:
            _fail(str(exc))
    loaded = load_catalog(default_cache_path())
    for warning in loaded.warnings:
        click.echo(f"warning: {warning}", err=True)
    catalog: EolCatalog = loaded.catalog
    try:
        cluster = Cluster.from_kubeconfig(kubeconfig, context_name)
    except DistroguardError as exc:
        _fail(str(exc))
    try:
        if cluster_policies:
            policies = cluster.distro_policies()
            if not policies:
                _fail("the cluster holds no DistroPolicy")
        now = datetime.now(UTC) if on is None else on.replace(tzinfo=UTC)
        exceptions: list[DistroPolicyException] = []
        if cluster_exceptions:
            found, invalid = cluster.policy_exceptions()
            for problem in invalid:
                click.echo(f"warning: {problem} (ignored)", err=True)
            exceptions = [e for e in found if trust.honours(e)]
        request = AuditRequest(
            scope=Scope(None if all_namespaces else namespace or cluster.default_namespace),
            policies=policies,
            resolve=ResolveSettings(
                platform=options.platform,
                mode=scan_mode(policies, options.mode),
                registry=options.settings,
                credentials=options.credentials,
                concurrency=concurrency,
            ),
            catalog=catalog,
            now=now,
            use_pull_secrets=use_pull_secrets,
            platforms=platforms,
            exceptions=Exceptions(tuple(exceptions), trust),
        )
        stderr = Console(stderr=True)
        if stderr.is_terminal:
            with _Bar(stderr) as bar:
                result = run_audit(cluster, request, bar)
        else:
            result = run_audit(cluster, request)
    except DistroguardError as exc:
        _fail(str(exc))
    finally:
        cluster.close()
    ending = ending_within(exceptions, now, exceptions_ending_days)
    if output == "json":
        document = audit_json(result)
        document["exceptionsEndingSoon"] = [_ending_json(e, now) for e in ending]
        text = json.dumps(document, indent=2) + "\n"
    elif output == "html":
        text = render_html(result)
    elif output != "table":
        from distroguard.cli.reports.commands import audit_report  # only a CI report needs it

        text = audit_report(output, result, policies)
    else:
        buffer = io.StringIO()
        console = Console(file=buffer, width=160) if out_path else Console()
        render_table(result, console)
        _render_ending(ending, now, exceptions_ending_days, console)
        text = buffer.getvalue()
    if out_path is not None:
        out_path.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out_path}", err=True)
    elif text:
        click.echo(text, nl=False)
    for problem in result.problems:
        click.echo(f"error: {problem}", err=True)
    if result.problems:
        sys.exit(EXIT_ERRORS)
    threshold = ("deny",) if fail_on == "deny" else ("deny", "warn")
    sys.exit(EXIT_VIOLATIONS if any(w.verdict in threshold for w in result.workloads) else 0)


def _ending_json(exception: DistroPolicyException, now: datetime) -> dict[str, Any]:
    spec = exception.spec
    return {
        "namespace": exception.namespace,
        "name": exception.name,
        "policies": [{"policyName": p.policy_name, "ruleNames": list(p.rule_names)} for p in spec.policies],
        "expires": spec.expires,
        "daysLeft": (spec.ends - now).days,
        "reason": spec.reason,
        **({"ticket": spec.ticket} if spec.ticket else {}),
    }


def _render_ending(
    ending: Sequence[DistroPolicyException], now: datetime, days: int, console: Console
) -> None:
    """The exceptions that end soon: what teams must finish before their workloads are judged again."""
    if not ending:
        return
    console.print(f"\n[bold]Exceptions ending within {days} days[/bold]")
    for exception in ending:
        spec = exception.spec
        ticket = f" (ticket {escape(spec.ticket)})" if spec.ticket else ""
        left = (spec.ends - now).days
        policies = ", ".join(p.policy_name for p in spec.policies)
        console.print(
            f"  {escape(exception.ref)}: until {spec.expires} ({left} days left){ticket}; "
            f"policies {escape(policies)}; {escape(spec.reason)}"
        )
