"""Shared plumbing of the verbs' output: the --format vocabulary, file output, rendering (errors: ``cli.errors``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

from rich.console import Console

from lossbench.errors import UserError


def write_text(path: Path, text: str, append: bool = False) -> None:
    """Write (or append) a report file, creating its folder; failures are user errors."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a" if append else "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise UserError(
            f"Cannot write {str(path)!r} ({exc.strerror or exc}).", "Choose a writable path."
        ) from None


def emit(text: str, out: Path | None, console: Console) -> None:
    if out is None:
        console.print(text, markup=False, highlight=False, soft_wrap=True, end="")
    else:
        write_text(out, text)


class OutputFormat(str, Enum):
    """The one ``--format`` vocabulary of every verb: terminal tables, or text for machines and documents."""

    table = "table"
    json = "json"
    markdown = "markdown"
    csv = "csv"
    rich = "table"  # the terminal tables' former name, kept for callers in code; not offered on the command line


def cell(value: Any) -> str:
    """One value as table text: lists joined with commas, mappings as key=value."""
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def records_to_markdown(records: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c, "")).replace("|", "\\|") for c in columns) + " |" for r in records]
    return "\n".join(lines) + "\n"


def records_to_csv(records: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([cell(r.get(c, "")) for c in columns] for r in records)
    return buffer.getvalue()


def render(
    result: Any,
    output_format: OutputFormat,
    rich_tables: Callable[[Any], Iterable[Any]],
    as_text: dict[OutputFormat, Callable[[Any], str]],
    out: Path | None,
    console: Console,
) -> None:
    """Print ``result`` as Rich tables (with its notes), or as JSON, Markdown or CSV text to ``out``."""
    if output_format is OutputFormat.table:
        for table in rich_tables(result):
            console.print(table)
        for note in result.notes:
            console.print(f"[dim]note: {note}[/]")
        return
    emit(as_text[output_format](result), out, console)
