"""`lossbench list`: the registries, one line per entry by default, filtered by name, task and family."""

from __future__ import annotations

import fnmatch
import json
from enum import Enum
from typing import Annotated, Any

import typer

from lossbench.cli.console import console
from lossbench.cli.errors import handles_errors
from lossbench.cli.output import OutputFormat, cell, records_to_csv, records_to_markdown


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
#: The one-line view: these columns, the last one cut to the terminal's width.
COMPACT = {
    What.losses: ("name", "family", "tasks", "summary"),
    What.methods: ("name", "family", "tasks", "summary"),
    What.suites: ("name", "task", "datasets", "seeds", "description"),
    What.datasets: ("name", "kind", "used_by", "description"),
    What.metrics: ("name", "tasks", "description"),
    What.tasks: ("name", "loss_tasks", "description"),
}


def record_tasks(record: dict[str, Any]) -> list[str]:
    for key in ("tasks", "loss_tasks"):
        if key in record:
            return list(record[key])
    return [record["task"]] if "task" in record else []


def matches(name: str, pattern: str) -> bool:
    """A glob (``anyloss-*``) when the pattern has wildcards, else a case-insensitive substring."""
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(name.lower(), pattern.lower())
    return pattern.lower() in name.lower()


def select(records: list[dict[str, Any]], what: What, pattern: str | None, task: str | None,
           family: str | None) -> list[dict[str, Any]]:
    from lossbench.errors import UserError

    if family is not None:
        if records and "family" not in records[0]:
            raise UserError(f"--family does not apply to {what.value}.", "It filters losses and methods.")
        families = sorted({r["family"] for r in records})
        if family not in families:
            raise UserError(f"No {what.value} of family {family!r}.", f"Families: {', '.join(families)}.")
        records = [r for r in records if r["family"] == family]
    if task is not None:
        tasks = sorted({t for r in records for t in record_tasks(r)})
        if not tasks:
            raise UserError(f"--task does not apply to {what.value}.")
        if task not in tasks:
            raise UserError(f"No {what.value} for task {task!r}.", f"Tasks: {', '.join(tasks)}.")
        records = [r for r in records if task in record_tasks(r)]
    if pattern is not None:
        records = [r for r in records if matches(str(r["name"]), pattern)]
    return records


@handles_errors
def list_command(
    what: Annotated[What, typer.Argument(help="What to list.")],
    pattern: Annotated[str | None, typer.Argument(help="Only names containing this text, or matching this glob "
                                                  "(anyloss-*). One exact loss or method name shows its details.",
                                                  show_default=False)] = None,
    task: Annotated[str | None, typer.Option("--task", "-t", help="Only entries for this task, e.g. binary, "
                                             "multiclass, embedding, segmentation.")] = None,
    family: Annotated[str | None, typer.Option("--family", help="Only losses or methods of this family, e.g. "
                                               "metric-surrogate.")] = None,
    details: Annotated[bool, typer.Option("--details", help="Every field, not one line per entry.")] = False,
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format; json and csv "
                                                        "carry every field.")] = OutputFormat.table,
) -> None:
    """List registered losses, methods, suites, datasets, metrics or task types, one line each.

    Examples:

      lossbench list losses

      lossbench list losses --task multiclass --family metric-surrogate

      lossbench list losses 'anyloss-*'

      lossbench list losses focal          (the details of one loss)

      lossbench list suites --format json

      lossbench list losses --format markdown > docs/losses.md
    """
    from lossbench.errors import UserError

    records = RECORDS[what]()
    exact = [r for r in records if pattern is not None and r["name"] == pattern]
    selected = select(records, what, pattern, task, family)
    if pattern is not None and not selected:
        raise UserError(f"No {what.value} match {pattern!r}" + (" with these filters." if task or family else "."),
                        f"See `lossbench list {what.value}`.")
    if what is What.losses and output_format is OutputFormat.markdown and selected == records:
        from lossbench.losses.catalogue import losses_markdown

        typer.echo(losses_markdown(), nl=False)
        return
    if output_format is OutputFormat.json:
        typer.echo(json.dumps(selected, indent=2))
        return
    one = exact[0] if len(exact) == 1 and what in (What.losses, What.methods) and not (task or family) else None
    if one is not None and output_format is OutputFormat.table:
        show_details(what, one)
        return
    columns = [c for c in (selected[0] if selected else {}) if c != "citation"]
    compact = list(COMPACT[what]) if not details and output_format is OutputFormat.table else columns
    if output_format is OutputFormat.csv:
        typer.echo(records_to_csv(selected, columns), nl=False)
        return
    if output_format is OutputFormat.markdown:
        typer.echo(records_to_markdown(selected, columns), nl=False)
        return
    from rich.markup import escape
    from rich.table import Table

    shown = f"{len(selected)} of {len(records)}" if len(selected) != len(records) else str(len(records))
    hint = "" if details else f"  (details: lossbench list {what.value} NAME, or --details)"
    table = Table(title=f"{shown} {what.value}{hint}", title_justify="left", box=None, pad_edge=False)
    rows = [[cell(r[c]) for c in compact] for r in selected]
    # One line per entry: whole names, and the last column (a description) cut to what the line has left.
    widths = [max([len(c), *(len(row[i]) for row in rows)]) for i, c in enumerate(compact)]
    widths[1:-1] = [min(w, 20) for w in widths[1:-1]]
    widths[-1] = max(12, min(widths[-1], console.width - sum(widths[:-1]) - 2 * (len(widths) - 1)))
    for c, width in zip(compact, widths, strict=True):
        if details:
            table.add_column(c, overflow="fold")
        else:
            table.add_column(c, no_wrap=True, overflow="ellipsis", width=width)
    for row in rows:
        table.add_row(*map(escape, row))
    console.print(table)


def show_details(what: What, record: dict[str, Any]) -> None:
    """One loss as its catalogue entry (docs/losses.md); one method as its fields."""
    from rich.markdown import Markdown

    if what is What.losses:
        from lossbench.losses import LOSSES
        from lossbench.losses.catalogue import loss_markdown

        console.print(Markdown(loss_markdown(LOSSES.get(record["name"]).info)))
        return
    console.print(Markdown("\n".join(f"* **{k}:** {cell(v)}" for k, v in record.items())))
