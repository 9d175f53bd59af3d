"""GitHub Actions workflow commands: each finding an annotation on the run (and on the Dockerfile's FROM
line, in the pull request's diff, when the image came from `--dockerfile`).

    ::error file=Dockerfile,line=3,title=distroguard no-musl/no-musl::container "..." uses ...

deny is `error`, warn is `warning`, audit (and a finding a DistroPolicyException covers) is `notice`; an
image that could not be judged is an `error`. Values are escaped as GitHub's toolkit escapes them: in the
message `%`, CR and LF; in a property also `:` and `,`. Each judged image also gets one plain line with
its verdict, for the log.
"""

from __future__ import annotations

from collections.abc import Sequence

from distroguard.cli.reports import Checked, Location

_COMMAND = {"deny": "error", "warn": "warning", "audit": "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str, location: Location | None, title: str) -> str:
    """`::NAME file=...,line=...,title=...::MESSAGE`, every value escaped."""
    properties = []
    if location is not None:
        properties += [f"file={escape_property(location.path)}", f"line={location.line}"]
    properties.append(f"title={escape_property(title)}")
    return f"::{name} {','.join(properties)}::{escape_data(message)}"


def workflow_commands(items: Sequence[Checked]) -> str:
    lines = []
    for item in items:
        prefix = "" if item.group == item.image else f"{item.group}: "
        if item.error is not None:
            message = f"{prefix}{item.subject}: {item.error}"
            lines.append(command("error", message, item.location, "distroguard"))
            continue
        verdict = (item.verdict or "allow").upper()
        lines.append(f"{verdict} {escape_data(prefix + item.subject)}")
        for finding in item.findings:
            lines.append(
                command(
                    _COMMAND[finding.action],
                    prefix + finding.message,
                    item.location,
                    f"distroguard {finding.policy}/{finding.rule}",
                )
            )
    return "".join(line + "\n" for line in lines)
