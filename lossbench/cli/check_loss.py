"""``lossbench check-loss``: run the conformance checks and print a loss × check table."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lossbench.cli.console import make_console
from lossbench.cli.output import OutputFormat, records_to_csv, records_to_markdown

if TYPE_CHECKING:
    from rich.table import Table

    from lossbench.conformance import CheckResult

#: Short column headers so the table fits a terminal.
HEADERS = {
    "defaults": "defaults",
    "extreme-logits": "extreme",
    "one-class-batch": "1-class",
    "batch-of-one": "B=1",
    "gradcheck": "grad",
    "batch-dependence": "batch-dep",
    "determinism": "seeded",
    "devices": "devices",
    "reduction": "reduce",
}


def render_table(results: list[CheckResult]) -> Table:
    """One row per loss, one column per check; a failing cell names the reason below the table."""
    from rich.table import Table

    from lossbench.conformance import CHECKS

    table = Table(title="Loss conformance", show_lines=False)
    table.add_column("loss", style="bold", no_wrap=True)
    checks = [c for c in CHECKS if any(r.check == c for r in results)]
    for check in checks:
        table.add_column(HEADERS.get(check, check), justify="center")
    by_loss: dict[str, dict[str, CheckResult]] = {}
    for r in results:
        by_loss.setdefault(r.loss, {})[r.check] = r
    for loss, row in by_loss.items():
        cells = []
        for check in checks:
            r = row.get(check)
            if r is None:
                cells.append("")
            elif not r.passed:
                cells.append("[red]FAIL[/red]")
            elif r.detail.split(": ", 1)[-1].startswith("skipped"):
                cells.append("[yellow]skip[/yellow]")
            else:
                cells.append("[green]ok[/green]")
        table.add_row(loss, *cells)
    return table


def check_loss(
    name: Annotated[str | None, typer.Argument(help="A registered loss name, e.g. focal.", show_default=False)]
    = None,
    all_: Annotated[bool, typer.Option("--all", help="Check every registered loss.")] = False,
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]
    = OutputFormat.table,
) -> None:
    """Check that a loss is finite at extreme logits, has correct gradients, honours its declared
    batch dependence, reduction and defaults, is deterministic under a seed and runs on every device.

    Exits with status 1 when any check fails.

    Example: lossbench check-loss focal  (or: lossbench check-loss --all --format json)
    """
    from lossbench.conformance import run_all, run_checks
    from lossbench.errors import SpecError

    if (name is None) == (not all_):
        raise SpecError("Name one loss or pass --all.", "Example: lossbench check-loss focal")
    results = run_all() if all_ else run_checks(str(name))
    console = make_console()
    records: list[dict[str, Any]] = [r.to_dict() for r in results]
    if output_format is OutputFormat.json:
        console.print_json(json.dumps(records))
    elif output_format in (OutputFormat.markdown, OutputFormat.csv):
        render = records_to_csv if output_format is OutputFormat.csv else records_to_markdown
        typer.echo(render(records, list(records[0]) if records else []), nl=False)
    else:
        console.print(render_table(results))
        for r in results:
            if not r.passed:
                console.print(f"[red]{r.loss} / {r.check}:[/red] {r.detail}", highlight=False)
    if not all(r.passed for r in results):
        raise typer.Exit(1)
