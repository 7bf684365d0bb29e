"""Usage errors as the README promises: one line on stderr naming the option and the fix, exit 1.

Click (under Typer) would print a five-line Rich box and exit 2. `KeelGroup` runs the command
line in Click's non-standalone mode and renders every Click error itself; `finite_float` parses
every float option, so ``--threshold 1e309`` (infinity) is such an error and not a
traceback from the JSON encoder.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

import typer
from rich.console import Console
from rich.text import Text
from typer._click.exceptions import NoArgsIsHelpError
from typer.core import TyperGroup


def finite_float(value: str | float) -> float:
    """The ``parser=`` of every float option: a number, not NaN or infinity (``1e309``)."""
    try:
        number = float(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a number; give one such as 0.25.") from None
    if not math.isfinite(number):
        raise typer.BadParameter(f"{value!r} is not a finite number; give one such as 0.25.")
    return number


def usage_line(exc: typer.TyperException) -> Text:
    """``Error: <Click's message> Run 'keel <command> --help' for usage.`` on one line."""
    message = " ".join(exc.format_message().split())
    if not message.endswith((".", "?", "!")):
        message += "."
    ctx = getattr(exc, "ctx", None)
    hint = f" Run '{ctx.command_path} --help' for usage." if ctx is not None else ""
    return Text.assemble(("Error: ", "bold red"), message + hint)


class KeelGroup(TyperGroup):
    """The `keel` command group: Click errors become one line on stderr and exit code 1."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as exc:
            # `keel monitor` alone: the group's help, as with --help.
            typer.echo(exc.ctx.get_help())
            sys.exit(0)
        except typer.TyperException as exc:
            err = Console(stderr=True)
            err.print(usage_line(exc), soft_wrap=True, highlight=False)
            sys.exit(1)
        except typer.Abort:
            Console(stderr=True).print("Aborted.")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)
