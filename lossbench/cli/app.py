"""The `lossbench` command: one Typer app joining one small module per verb."""

from __future__ import annotations

from typing import Annotated

import typer

import lossbench
from lossbench.cli.check_loss import check_loss
from lossbench.cli.compare import compare_command
from lossbench.cli.errors import handles_errors
from lossbench.cli.gate import calibrate_command, gate_command
from lossbench.cli.listing import list_command
from lossbench.cli.report import report_command
from lossbench.cli.run import run_command
from lossbench.cli.status import status_command

app = typer.Typer(
    name="lossbench",
    help="Benchmark loss functions with statistics you can trust.\n\n"
    "Run suites of paired, seeded trials in parallel, write Parquet results, compare and gate them.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"lossbench {lossbench.__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", callback=version_callback, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Benchmark loss functions with statistics you can trust."""


app.command("run")(run_command)
app.command("list")(list_command)
app.command("status")(status_command)
app.command("report")(report_command)
app.command("check-loss")(handles_errors(check_loss))
app.command("compare")(compare_command)
app.command("gate")(gate_command)
app.command("calibrate")(calibrate_command)


def main() -> None:
    app()
