"""Loading DistroPolicy YAML from files and directories (`distroguard.policyfiles`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from distroguard.errors import InvalidPolicy
from distroguard.policyfiles import load_policies, parse_policy_text

ONE = """\
apiVersion: distroguard.dev/v1alpha1
kind: DistroPolicy
metadata:
  name: {name}
spec:
  rules:
    - name: no-musl
      denyLibc: [musl]
"""


def test_a_file_with_several_documents(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(ONE.format(name="first") + "---\n# only a comment\n---\n" + ONE.format(name="second"))
    assert [p.name for p in load_policies([path])] == ["first", "second"]


def test_a_directory_recursively_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text(ONE.format(name="b"))
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "a.yml").write_text(ONE.format(name="nested-a"))
    (tmp_path / "README.md").write_text("not a policy")
    assert [p.name for p in load_policies([tmp_path])] == ["b", "nested-a"]


def test_other_engines_subdirectories_are_not_read(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text(ONE.format(name="b"))
    for engine in ("gatekeeper", "kyverno"):
        (tmp_path / engine / "deep").mkdir(parents=True)
        (tmp_path / engine / "template.yaml").write_text("apiVersion: templates.gatekeeper.sh/v1\n")
        (tmp_path / engine / "deep" / "other.yaml").write_text("kind: ClusterPolicy\n")
    (tmp_path / "team" / "gatekeeper-ish").mkdir(parents=True)
    (tmp_path / "team" / "gatekeeper-ish" / "c.yaml").write_text(ONE.format(name="c"))
    assert [p.name for p in load_policies([tmp_path])] == ["b", "c"]


def test_problems_name_the_file_and_the_document(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        ONE.format(name="good")
        + "---\n"
        + ONE.format(name="bad").replace("musl]", "musl]\n      action: block")
    )
    with pytest.raises(InvalidPolicy) as caught:
        load_policies([path])
    assert caught.value.source == f"{path} (document 2)"
    assert caught.value.problems == [
        "spec.rules[0] (no-musl).action: Input should be 'deny', 'warn' or 'audit' (got 'block')"
    ]


def test_yaml_errors_say_where(tmp_path: Path) -> None:
    with pytest.raises(InvalidPolicy, match=r"not valid YAML: .* at line 3, column 1"):
        parse_policy_text("spec:\n  rules: [\n", "broken.yaml")


@pytest.mark.parametrize(
    ("setup", "problem"),
    [
        ("missing", "no such file or directory"),
        ("empty-dir", "the directory holds no policy files (*.yaml, *.yml)"),
        ("empty-file", "no policy in the file (it is empty)"),
        ("duplicate", "policy 'same' is already defined in"),
    ],
)
def test_file_level_problems(tmp_path: Path, setup: str, problem: str) -> None:
    target = tmp_path / "policies"
    if setup == "empty-dir":
        target.mkdir()
    elif setup == "empty-file":
        target = tmp_path / "empty.yaml"
        target.write_text("# nothing yet\n")
    elif setup == "duplicate":
        target.mkdir()
        (target / "a.yaml").write_text(ONE.format(name="same"))
        (target / "b.yaml").write_text(ONE.format(name="same"))
    with pytest.raises(InvalidPolicy) as caught:
        load_policies([target])
    assert caught.value.problems[0].startswith(problem)
