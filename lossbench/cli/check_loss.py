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
    """One row per loss, one column per check; a cell sums up every configuration checked (the defaults and,
    with --all, the parameter grid): FAIL if any failed, skip if every one skipped."""
    from rich.table import Table

    from lossbench.conformance import CHECKS

    by_loss: dict[str, dict[str, list[CheckResult]]] = {}
    configs: dict[str, set[str]] = {}
    for r in results:
        by_loss.setdefault(r.loss, {}).setdefault(r.check, []).append(r)
        configs.setdefault(r.loss, set()).add(r.spec)
    several = any(len(c) > 1 for c in configs.values())
    table = Table(title="Loss conformance", show_lines=False)
    table.add_column("loss", style="bold", no_wrap=True)
    if several:
        table.add_column("configs", justify="right")
    checks = [c for c in CHECKS if any(r.check == c for r in results)]
    for check in checks:
        table.add_column(HEADERS.get(check, check), justify="center")
    for loss, row in by_loss.items():
        cells = []
        for check in checks:
            rs = row.get(check, [])
            if not rs:
                cells.append("")
            elif not all(r.passed for r in rs):
                cells.append("[red]FAIL[/red]")
            elif all(r.skipped for r in rs):
                cells.append("[yellow]skip[/yellow]")
            else:
                cells.append("[green]ok[/green]")
        label = loss if several else next(iter(configs[loss]))
        table.add_row(label, *([str(len(configs[loss]))] if several else []), *cells)
    return table


def check_loss(
    spec: Annotated[str | None, typer.Argument(
        help="A loss spec: a registered loss with or without parameters, e.g. focal or focal:gamma=0.5.",
        show_default=False)] = None,
    all_: Annotated[bool, typer.Option(
        "--all", help="Check every registered loss at its defaults and across its parameter grid.")] = False,
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]
    = OutputFormat.table,
) -> None:
    """Check that a loss is finite at extreme logits (±50, ±1e4; float32 and float64), has correct gradients,
    honours its declared batch dependence, reduction and defaults, is deterministic under a seed and runs on
    every device.

    --all checks every registered loss at its defaults and at a seeded grid over each declared parameter
    (both ends of its range, a quarter and four times the default, one random value; every choice), each
    configuration through the same checks.

    Exits with status 1 when any check fails.

    Example: lossbench check-loss focal:gamma=0.5  (or: lossbench check-loss --all --format json)
    """
    from lossbench.conformance import run_all, run_checks
    from lossbench.errors import SpecError

    if (spec is None) == (not all_):
        raise SpecError("Name one loss or pass --all.", "Example: lossbench check-loss focal:gamma=0.5")
    if all_:
        results = run_all()
    else:
        name, params = parse_loss_spec(str(spec))
        results = run_checks(name, params)
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
                console.print(f"[red]{r.spec} / {r.check}:[/red] {r.detail}", highlight=False)
    if not all(r.passed for r in results):
        raise typer.Exit(1)


def parse_loss_spec(text: str) -> tuple[str, dict[str, object]]:
    """A loss spec's name and its validated non-default parameters; a training method is refused."""
    from lossbench.errors import SpecError
    from lossbench.objectives import parse_objective

    parsed = parse_objective(text)
    if parsed.kind != "loss":
        raise SpecError(
            f"{parsed.name!r} is a training method; check-loss checks losses.",
            f"Check the loss it wraps, e.g. lossbench check-loss {parsed.loss_spec}.",
        )
    return parsed.name, parsed.param_dict
