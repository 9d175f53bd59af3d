"""The JSON form of an audit: stable for scripts (keys are only ever added, never renamed).

    {
      "kind": "DistroguardAudit", "version": 1,
      "generated": "2026-01-31T12:00:00Z", "context": "prod", "namespace": "shop" | null (all),
      "policies": ["no-musl", ...], "eolCatalog": "2026-01-15",
      "summary": {"workloads": 12, "deny": 2, "warn": 1, "allow": 9, "images": 7, "problems": 0},
      "workloads": [{
        "kind": "Deployment", "namespace": "shop", "name": "web",
        "source": "pods" | "template", "pods": 3, "verdict": "deny" | "warn" | "allow",
        "eol": "2024-08-14" | null,
        "containers": [{
          "container": "app", "section": "containers", "image": "...", "digest": "sha256:..." | null,
          "verdict": "deny", "os": "Debian 11 (bullseye)", "libc": "glibc", "libcVersion": "2.31",
          "eol": "2024-08-14" | null, "eolState": "eol", "error": "..." (when unresolved)}],
        "findings": [{
          "policy": "no-eol-distro", "rule": "distro-supported", "action": "deny", "severity": "high",
          "message": "...", "suggestion": "..." (when there is one), "container": "app", "image": "...",
          "exception": {"name", "expires", "action", "ending", "ticket"?} (when a DistroPolicyException
          covers it)}]
      }],
      "images": [{
        "image": "...", "digest": "sha256:..." | null, "os": "...", "osId": "debian", "libc": "glibc",
        "libcVersion": "2.31", "eol": "2024-08-14" | null, "extendedUntil": "2026-08-31" | null,
        "eolState": "active" | "security" | "extended" | "eol" | "rolling" | "unknown" | "no-os",
        "error": "..." (when unresolved)}],
      "problems": ["..."]
    }

Workloads are sorted by namespace, kind and name; images by reference. Findings use the shape of
`distroguard check`'s, with the container and image they concern.
"""

from __future__ import annotations

import json
from datetime import UTC, date
from typing import Any

from distroguard.audit.results import AuditResult, ImageSummary, WorkloadResult
from distroguard.model import Finding
from distroguard.model.exception import ExceptionUse

KIND = "DistroguardAudit"
VERSION = 1


def _date(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def finding_json(finding: Finding) -> dict[str, Any]:
    return {
        "policy": finding.policy,
        "rule": finding.rule,
        "action": finding.action,
        "severity": finding.severity,
        "message": finding.message,
        **({"suggestion": finding.suggestion} if finding.suggestion else {}),
        "container": finding.container,
        "image": finding.image,
        **({"exception": exception_json(finding.exception)} if finding.exception is not None else {}),
    }


def exception_json(use: ExceptionUse) -> dict[str, Any]:
    """The exception that covers a finding (its `action` is then `audit`; `action` here is what the rule
    would have done)."""
    return {
        "name": use.exception,
        "expires": use.expires,
        "action": use.action,
        "ending": use.ending,
        **({"ticket": use.ticket} if use.ticket else {}),
    }


def image_json(image: ImageSummary) -> dict[str, Any]:
    return {
        "image": image.image,
        "digest": image.facts.digest if image.facts is not None else None,
        "os": image.distribution,
        "osId": image.distro_id,
        "libc": image.libc,
        "libcVersion": image.libc_version,
        "eol": _date(image.eol),
        "extendedUntil": _date(image.extended_until),
        "eolState": image.eol_state,
        **({"error": image.error} if image.error else {}),
    }


def workload_json(result: WorkloadResult) -> dict[str, Any]:
    ref = result.ref
    return {
        "kind": ref.kind,
        "namespace": ref.namespace,
        "name": ref.name,
        "source": result.workload.source,
        "pods": result.workload.pods,
        "verdict": result.verdict,
        "eol": _date(result.eol),
        "containers": [
            {
                "container": c.container,
                "section": c.section,
                "image": c.image.image,
                "digest": c.image.facts.digest if c.image.facts is not None else None,
                "verdict": c.verdict,
                "os": c.image.distribution,
                "libc": c.image.libc,
                "libcVersion": c.image.libc_version,
                "eol": _date(c.image.eol),
                "eolState": c.image.eol_state,
                **({"error": c.image.error} if c.image.error else {}),
            }
            for c in result.containers
        ],
        "findings": [finding_json(f) for f in result.decision.findings],
    }


def audit_json(result: AuditResult) -> dict[str, Any]:
    counts = result.counts()
    return {
        "kind": KIND,
        "version": VERSION,
        "generated": result.generated.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "context": result.context,
        "namespace": result.namespace,
        "policies": list(result.policies),
        "eolCatalog": result.catalog_snapshot.isoformat(),
        "summary": {
            "workloads": len(result.workloads),
            "deny": counts["deny"],
            "warn": counts["warn"],
            "allow": counts["allow"],
            "images": len(result.images),
            "problems": len(result.problems),
        },
        "workloads": [workload_json(w) for w in sorted(result.workloads, key=lambda w: w.ref)],
        "images": [image_json(i) for i in sorted(result.images, key=lambda i: i.image)],
        "problems": list(result.problems),
    }


def render_json(result: AuditResult) -> str:
    return json.dumps(audit_json(result), indent=2)
