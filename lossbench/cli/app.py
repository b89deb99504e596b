"""The `lossbench` command: one Typer app joining one small module per verb.

A verb's module is imported only when that verb runs or shows its help, so `lossbench --help`, `--version`
and a usage error never pay for torch, pandas or the registries. Every error, Click's usage errors included,
ends as one line through :func:`lossbench.cli.errors.report_error`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer import Context
from typer.core import TyperCommand, TyperGroup

import lossbench
from lossbench.cli.errors import report_error, usage_hint
from lossbench.errors import UserError

#: name → (module, function, the one-line summary `lossbench --help` lists without importing the module)
VERBS: dict[str, tuple[str, str, str]] = {
    "run": ("lossbench.cli.run", "run_command", "Run a benchmark suite and write one Parquet row per trial."),
    "list": ("lossbench.cli.listing", "list_command",
             "List registered losses, methods, suites, datasets, metrics or task types."),
    "status": ("lossbench.cli.status", "status_command",
               "Show which trials are done, failed or pending, and why a trial would rerun."),
    "report": ("lossbench.cli.report", "report_command", "Print the summary tables of a results directory."),
    "check-loss": ("lossbench.cli.check_loss", "check_loss", "Run the conformance checks of one or every loss."),
    "compare": ("lossbench.cli.compare", "compare_command", "Compare losses with paired statistics."),
    "gate": ("lossbench.cli.gate", "gate_command", "Gate a candidate run against a baseline (CI)."),
    "calibrate": ("lossbench.cli.gate", "calibrate_command",
                  "Measure seed-to-seed noise from an A/A pair, for the gate's margin."),
}


def flags_as_flags(params: list[Any]) -> list[Any]:
    """Help shows a boolean flag as a flag (`--dry-run`), not as an option taking a `<bool>` value."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class FlagsAsFlags(TyperCommand):
    def get_params(self, ctx: Context) -> list[Any]:
        return flags_as_flags(super().get_params(ctx))


class Verbs(TyperGroup):
    """The verbs of :data:`VERBS`, each built from its module on first use."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands.update(dict.fromkeys(VERBS))  # names known (for "did you mean"), commands built on use
        self._summaries_only = False

    def get_command(self, ctx: Context, cmd_name: str) -> Any:
        if cmd_name not in VERBS:
            return None
        module, function, summary = VERBS[cmd_name]
        if self._summaries_only:  # the top-level help lists summaries: no module is imported for it
            return TyperCommand(name=cmd_name, help=summary)
        if self.commands.get(cmd_name) is None:
            verb = typer.Typer(rich_markup_mode="rich", pretty_exceptions_enable=False, add_completion=False)
            verb.command(cmd_name, cls=FlagsAsFlags)(getattr(importlib.import_module(module), function))
            self.commands[cmd_name] = typer.main.get_command(verb)
        return self.commands[cmd_name]

    def format_help(self, ctx: Context, formatter: Any) -> None:
        self._summaries_only = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._summaries_only = False

    def get_params(self, ctx: Context) -> list[Any]:
        return flags_as_flags(super().get_params(ctx))

    def main(self, args: Sequence[str] | None = None, *rest: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """Run a verb; every error ends as one line and its documented exit code (docs/cli.md)."""
        if not standalone_mode:
            return super().main(args, *rest, standalone_mode=False, **kwargs)
        argv = list(sys.argv[1:] if args is None else args)
        try:
            code = super().main(argv, *rest, standalone_mode=False, **kwargs)
        except typer.TyperException as exc:  # Click's usage errors
            if type(exc).__name__ == "NoArgsIsHelpError":  # bare `lossbench`: the help was printed
                sys.exit(0)
            message = exc.format_message().replace("Value error, ", "").rstrip()  # pydantic's prefix says nothing
            message += "" if message.endswith((".", "?", "!")) else "."
            report_error(UserError(message, usage_hint(exc, argv), exc.exit_code))
            sys.exit(exc.exit_code)
        except UserError as exc:  # raised outside a command's own handler (a parameter callback)
            report_error(exc)
            sys.exit(exc.exit_code)
        except typer.Abort:
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"lossbench {lossbench.__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="lossbench",
    cls=Verbs,
    help="Benchmark loss functions with statistics you can trust.\n\n"
    "Run suites of paired, seeded trials in parallel, write Parquet results, compare and gate them.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", callback=version_callback, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Benchmark loss functions with statistics you can trust."""


def main() -> None:
    app()



