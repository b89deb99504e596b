"""`lossbench list`: the registries as Rich tables, JSON or Markdown."""

from __future__ import annotations

import json
from enum import Enum
from typing import Annotated, Any

import typer
from rich.table import Table

from lossbench.cli.console import console
from lossbench.cli.errors import handles_errors
from lossbench.errors import UserError


class What(str, Enum):
    losses = "losses"
    methods = "methods"
    suites = "suites"
    datasets = "datasets"
    metrics = "metrics"
    tasks = "tasks"


def loss_records() -> list[dict[str, Any]]:
    from lossbench.losses import LOSSES

    out = []
    for entry in LOSSES:
        info = entry.obj.info
        out.append({
            "name": info.name, "family": info.family, "tasks": sorted(info.tasks), "input": info.input,
            "params": {k: p.default for k, p in info.params.items()}, "batch_dependent": info.batch_dependent,
            "needs": sorted(info.needs), "summary": info.summary, "citation": info.citation,
        })
    return out


def method_records() -> list[dict[str, Any]]:
    from lossbench.methods import METHODS

    return [{"name": e.obj.info.name, "family": e.obj.info.family, "tasks": sorted(e.obj.info.tasks),
             "params": {k: p.default for k, p in e.obj.info.params.items()}, "base_loss": e.obj.info.base_loss,
             "summary": e.obj.info.summary, "citation": e.obj.info.citation} for e in METHODS]


def suite_records() -> list[dict[str, Any]]:
    from lossbench.suite import load_suite, packaged_suites

    out = []
    for name in packaged_suites():
        s = load_suite(name)
        out.append({"name": s.name, "version": s.version, "task": s.task, "datasets": len(s.datasets),
                    "losses": list(s.losses), "seeds": len(s.seeds), "primary_metric": s.primary_metric,
                    "description": s.description})
    return out


def dataset_records() -> list[dict[str, Any]]:
    from lossbench.sources import SOURCES
    from lossbench.suite import load_suite, packaged_suites

    out = [{"name": f"{e.name}:", "kind": "source", "used_by": "", "description": e.meta.get("description", ""),
            "example": e.meta.get("example", "")} for e in SOURCES]
    for name in packaged_suites():
        for uri in load_suite(name).datasets:
            out.append({"name": uri, "kind": "dataset", "used_by": name, "description": "", "example": ""})
    return out


def metric_records() -> list[dict[str, Any]]:
    from lossbench.metrics import METRICS

    return [{"name": e.name, "greater_is_better": e.obj.greater_is_better, "tasks": sorted(e.obj.tasks),
             "bounded": e.obj.bounded, "description": e.obj.description} for e in METRICS]


def task_records() -> list[dict[str, Any]]:
    from lossbench.tasks import TASK_TYPES

    return [{"name": e.name, "description": e.obj.description, "loss_tasks": sorted(e.obj.loss_tasks)}
            for e in TASK_TYPES]


RECORDS = {
    What.losses: loss_records, What.methods: method_records, What.suites: suite_records,
    What.datasets: dataset_records, What.metrics: metric_records, What.tasks: task_records,
}


def cell(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


@handles_errors
def list_command(
    what: Annotated[What, typer.Argument(help="What to list.")],
    format: Annotated[str, typer.Option("--format", "-f", help="table, json or markdown.")] = "table",
) -> None:
    """List registered losses, methods, suites, datasets, metrics or task types.

    Examples:

      lossbench list losses

      lossbench list suites --format json

      lossbench list losses --format markdown > docs/losses.md
    """
    if format not in ("table", "json", "markdown"):
        raise UserError(f"Unknown --format {format!r}.", "Use table, json or markdown.")
    if what is What.losses and format == "markdown":
        from lossbench.losses.catalogue import losses_markdown

        typer.echo(losses_markdown())
        return
    records = RECORDS[what]()
    if format == "json":
        typer.echo(json.dumps(records, indent=2))
        return
    columns = [c for c in (records[0] if records else {}) if c not in ("citation",)]
    if format == "markdown":
        typer.echo("| " + " | ".join(columns) + " |")
        typer.echo("|" + "---|" * len(columns))
        for r in records:
            typer.echo("| " + " | ".join(cell(r[c]).replace("|", "\\|") for c in columns) + " |")
        return
    table = Table(title=f"{len(records)} {what.value}", title_justify="left")
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in records:
        table.add_row(*(cell(r[c]) for c in columns))
    console.print(table)
