"""Shared plumbing for the compare, gate and calibrate verbs: file output and rendering (errors: ``cli.errors``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
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
    rich = "rich"
    json = "json"
    markdown = "markdown"
    csv = "csv"


def render(
    result: Any,
    output_format: OutputFormat,
    rich_tables: Callable[[Any], Iterable[Any]],
    as_text: dict[OutputFormat, Callable[[Any], str]],
    out: Path | None,
    console: Console,
) -> None:
    """Print ``result`` as Rich tables (with its notes), or as JSON, Markdown or CSV text to ``out``."""
    if output_format is OutputFormat.rich:
        for table in rich_tables(result):
            console.print(table)
        for note in result.notes:
            console.print(f"[dim]note: {note}[/]")
        return
    emit(as_text[output_format](result), out, console)
