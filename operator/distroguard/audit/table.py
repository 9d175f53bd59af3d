"""The terminal form of an audit: workloads grouped by verdict (deny first), with their findings."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from distroguard.audit.results import VERDICTS, AuditResult, WorkloadResult
from distroguard.model import Verdict

_STYLE: dict[Verdict, str] = {"allow": "green", "warn": "yellow", "deny": "bold red"}
_TITLE: dict[Verdict, str] = {"deny": "DENY", "warn": "WARN", "allow": "ALLOW"}


def _images(result: WorkloadResult) -> str:
    lines = []
    for c in result.containers:
        image = c.image
        facts = (
            f"{image.distribution}, {image.libc} {image.libc_version}".strip()
            if not image.error
            else "unresolved"
        )
        lines.append(f"{c.container}: {image.image} ({facts})")
    return "\n".join(lines)


def render_table(result: AuditResult, console: Console) -> None:
    counts = result.counts()
    where = f"namespace {result.namespace}" if result.namespace else "all namespaces"
    console.print(
        f"[bold]distroguard audit[/bold] of {escape(result.context or 'the cluster')}, {escape(where)}: "
        f"{len(result.workloads)} workloads, {len(result.images)} images; "
        + ", ".join(f"[{_STYLE[v]}]{counts[v]} {v}[/{_STYLE[v]}]" for v in VERDICTS)
    )
    for verdict in VERDICTS:
        group = result.by_verdict(verdict)
        if not group:
            continue
        style = _STYLE[verdict]
        table = Table(title=f"[{style}]{_TITLE[verdict]}[/{style}] ({len(group)})", title_justify="left")
        table.add_column("workload", overflow="fold")
        table.add_column("pods", justify="right")
        table.add_column("images", overflow="fold")
        table.add_column("EOL", no_wrap=True)
        for item in group:
            table.add_row(
                escape(f"{item.ref.namespace}/{item.ref.kind}/{item.ref.name}"),
                str(item.workload.pods) if item.workload.source == "pods" else "template",
                escape(_images(item)),
                item.eol.isoformat() if item.eol else "-",
            )
        console.print(table)
        for item in group:
            for f in item.decision.findings:
                where = escape(f"{item.ref.namespace}/{item.ref.kind}/{item.ref.name} {f.container}")
                use = f.exception
                action = (
                    f.action
                    if use is None
                    else f"skip ({use.action}: exception {use.exception} until {use.expires})"
                )
                console.print(
                    f"  [{_STYLE[verdict]}]{escape(action)}[/{_STYLE[verdict]}] {where}  "
                    f"{escape(f.policy)}/{escape(f.rule)}: {escape(f.message)}",
                    soft_wrap=True,
                )
        console.print()
