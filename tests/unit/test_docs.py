"""The generated references (docs/policy-reference.md, docs/cli.md) match the code and leave nothing out."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from pydantic import BaseModel

from codegen import docs as docgen
from distroguard.cli.main import main as cli_main
from distroguard.model.policy import DistroPolicy

REPO = Path(__file__).resolve().parent.parent.parent
DOCS = REPO / "docs"


@pytest.mark.parametrize("name", [docgen.POLICY_FILE, docgen.CLI_FILE])
def test_the_committed_file_is_what_the_code_generates(name: str) -> None:
    assert (DOCS / name).read_text(encoding="utf-8") == docgen.rendered()[name], "run: python -m codegen.docs"


def test_check_mode(tmp_path: Path) -> None:
    assert docgen.main(["--check", str(tmp_path)]) == 1
    assert docgen.main([str(tmp_path)]) == 0
    assert docgen.main(["--check", str(tmp_path)]) == 0
    (tmp_path / docgen.CLI_FILE).write_text("stale\n", encoding="utf-8")
    assert docgen.main(["--check", str(tmp_path)]) == 1


def _models(root: type[BaseModel]) -> list[type[BaseModel]]:
    """Every model a policy is made of, found from the field annotations (independently of docgen)."""
    found = [root]
    for model in found:
        for info in model.model_fields.values():
            pending = [info.annotation]
            while pending:
                annotation = pending.pop()
                if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                    if annotation not in found:
                        found.append(annotation)
                else:
                    pending.extend(getattr(annotation, "__args__", ()))
    return found


def _section(text: str, model: type[BaseModel]) -> str:
    """The text under the model's heading, up to the next heading of any level."""
    match = re.search(rf"^#+ {model.__name__}\n(.*?)(?=^#+ |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match is not None, f"docs/{docgen.POLICY_FILE} has no section for {model.__name__}"
    return match.group(1)


def test_every_field_of_every_model_is_in_the_reference() -> None:
    text = docgen.render_policy_reference()
    models = _models(DistroPolicy)
    assert len(models) >= 10
    missing = []
    for model in models:
        section = _section(text, model)
        if model.__name__ == "Rule":  # the rule kinds have a table of their own, after the common fields
            section = text[text.index("### Rule\n") : text.index("## Rule kinds")]
        for name, info in model.model_fields.items():
            wire = info.alias or name
            if f"| `{wire}` |" not in section:
                missing.append(f"{model.__name__}.{name} (`{wire}`)")
    assert missing == [], f"fields missing from the policy reference: {missing}"


def test_every_field_is_described() -> None:
    undescribed = [
        f"{row.model.__name__}.{row.attribute}"
        for model in docgen.reachable_models()
        for row in docgen.field_docs(model)
        if not row.description.strip()
    ]
    assert undescribed == [], f"give these fields a description= in distroguard.model.policy: {undescribed}"


def test_every_rule_kind_has_a_section() -> None:
    text = docgen.render_policy_reference()
    for _, wire in docgen.RULE_KINDS:
        assert f"\n### {wire}\n" in text


def test_every_command_and_option_is_in_the_cli_reference() -> None:
    text = docgen.render_cli_reference()
    missing = []

    def walk(command: click.Command, ctx: click.Context) -> None:
        heading = f"`{ctx.command_path}`\n"
        if heading not in text:
            missing.append(ctx.command_path)
            return
        section = text.split(heading, 1)[1].split("\n#", 1)[0]
        for param in command.get_params(ctx):
            if isinstance(param, click.Option):
                for opt in param.opts:
                    if f"`{opt}`" not in section:
                        missing.append(f"{ctx.command_path} {opt}")
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None
                walk(sub, click.Context(sub, info_name=name, parent=ctx))

    walk(cli_main, click.Context(cli_main, info_name="distroguard"))
    assert missing == [], f"missing from the CLI reference: {missing}"


def test_defaults_and_choices_are_shown() -> None:
    text = docgen.render_cli_reference()
    assert "| `--budget` | `FLOAT` | `3.0` |" in text
    assert "`table` \\| `json`" in text
    assert "UNSET" not in text
    assert "Sentinel" not in text
