"""`python -m distroguard.cli.precommit [CHECK OPTIONS] FILE...`: the hook of `.pre-commit-hooks.yaml`.

pre-commit runs a hook's entry with its args and then the staged files that match; `check` takes one
`--dockerfile`, and its positional arguments are images. So this reads the command line as `check` reads
it: the trailing positional arguments are the files, and each is checked as
`distroguard check [CHECK OPTIONS] --dockerfile FILE`. The exit status is the worst of them (0 all pass, 1
a verdict reached --fail-on, 2 an error), as `check` has it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click


def main(argv: Sequence[str] | None = None) -> int:
    from distroguard.cli.check import check

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        with check.make_context("distroguard check", list(args)) as ctx:
            files = list(ctx.params.get("images") or ())
    except click.ClickException as exc:
        exc.show()
        return 2
    if not files or args[len(args) - len(files) :] != files:
        click.echo("error: give the Dockerfiles last, after the check options", err=True)
        return 2
    options = args[: len(args) - len(files)]
    status = 0
    for file in files:
        click.echo(f"== {file}")
        try:
            check.main([*options, "--dockerfile", file], prog_name="distroguard check")
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
            status = max(status, code)
    return status


if __name__ == "__main__":
    sys.exit(main())
