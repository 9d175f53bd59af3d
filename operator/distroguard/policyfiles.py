"""Load DistroPolicy YAML from files and directories: the I/O edge in front of the pure `policy`
package.

A path is a YAML file (one or more `---`-separated documents) or a directory, whose `*.yaml` /
`*.yml` files are read recursively in name order, except under subdirectories named after other policy
engines (`OTHER_ENGINES`: the repository's policies/ ships their examples beside ours). Every problem is
an `InvalidPolicy` naming the file, the document and the field.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml

from distroguard.errors import InvalidException, InvalidPolicy
from distroguard.model.exception import DistroPolicyException
from distroguard.model.policy import DistroPolicy
from distroguard.model.validation import parse_exception, parse_policy

SUFFIXES = (".yaml", ".yml")
OTHER_ENGINES = frozenset({"gatekeeper", "kyverno"})
"""Subdirectories of a policy directory that hold other engines' policies (Gatekeeper's ConstraintTemplates,
Kyverno's ClusterPolicies using distroguard's facts API), never read as DistroPolicies."""


def policy_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.suffix in SUFFIXES
            and p.is_file()
            and not OTHER_ENGINES.intersection(p.relative_to(path).parts[:-1])
        )
        if not files:
            raise InvalidPolicy(str(path), ["the directory holds no policy files (*.yaml, *.yml)"])
        return files
    if not path.exists():
        raise InvalidPolicy(str(path), ["no such file or directory"])
    return [path]


def parse_policy_text(text: str, source: str) -> list[DistroPolicy]:
    """Every document of one YAML text; empty documents (a lone `---`, comments only) are
    skipped."""
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        raise InvalidPolicy(source, [f"not valid YAML: {_yaml_problem(exc)}"]) from None
    if not documents:
        raise InvalidPolicy(source, ["no policy in the file (it is empty)"])
    several = len(documents) > 1
    return [
        parse_policy(doc, f"{source} (document {n})" if several else source)
        for n, doc in enumerate(documents, start=1)
    ]


def load_policies(paths: Iterable[Path]) -> list[DistroPolicy]:
    """All policies under `paths`; policy names must be unique, as they are in a cluster."""
    policies: list[DistroPolicy] = []
    where: dict[str, Path] = {}
    for path in paths:
        for file in policy_files(path):
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidPolicy(str(file), [f"cannot read the file: {exc}"]) from None
            for policy in parse_policy_text(text, str(file)):
                if policy.name in where:
                    raise InvalidPolicy(
                        str(file),
                        [f"policy {policy.name!r} is already defined in {where[policy.name]}"],
                    )
                where[policy.name] = file
                policies.append(policy)
    return policies


def load_exceptions(paths: Iterable[Path]) -> list[DistroPolicyException]:
    """All DistroPolicyExceptions under `paths` (files or directories, as for policies); (namespace, name)
    must be unique, as in a cluster."""
    found: list[DistroPolicyException] = []
    where: dict[tuple[str | None, str], Path] = {}
    for path in paths:
        try:
            files = policy_files(path)
        except InvalidPolicy as exc:
            problems = [p.replace("policy files", "exception files") for p in exc.problems]
            raise InvalidException(exc.source, problems) from None
        for file in files:
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidException(str(file), [f"cannot read the file: {exc}"]) from None
            try:
                documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
            except yaml.YAMLError as exc:
                raise InvalidException(str(file), [f"not valid YAML: {_yaml_problem(exc)}"]) from None
            if not documents:
                raise InvalidException(str(file), ["no exception in the file (it is empty)"])
            several = len(documents) > 1
            for n, document in enumerate(documents, start=1):
                exception = parse_exception(document, f"{file} (document {n})" if several else str(file))
                key = (exception.namespace, exception.name)
                if key in where:
                    raise InvalidException(
                        str(file), [f"exception {exception.ref!r} is already defined in {where[key]}"]
                    )
                where[key] = file
                found.append(exception)
    return found


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem} at line {mark.line + 1}, column {mark.column + 1}"
    return str(exc)
