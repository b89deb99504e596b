"""The consoles every verb prints to; wide when output goes to a file or pipe, so tables stay readable."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape


def make_console(stderr: bool = False) -> Console:
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal:
        console = Console(stderr=stderr, highlight=False, width=160)
    return console


console = make_console()


class ConsoleNotes(logging.Handler):
    """Print the library's notes (INFO) and warnings once each: a dataset's preprocessing, a suspicious file."""

    def __init__(self, target: Console) -> None:
        super().__init__(logging.INFO)
        self.target = target
        self.seen: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if text in self.seen:
            return
        self.seen.add(text)
        if record.levelno >= logging.WARNING:
            self.target.print(f"[yellow]Warning:[/yellow] {escape(text)}", soft_wrap=True)
        else:
            self.target.print(f"[dim]note: {escape(text)}[/dim]", soft_wrap=True)


@contextmanager
def data_notes(target: Console, quiet: bool = False) -> Iterator[None]:
    """Show what the library logs while the block runs (the driver loading each dataset once); warnings also
    under ``quiet``. Workers, which load the data again, have no such handler and print nothing."""
    logger = logging.getLogger("lossbench")
    handler = ConsoleNotes(target)
    handler.setLevel(logging.WARNING if quiet else logging.INFO)
    previous = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # a library that configured the root logger (openml) would print each line twice
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.level, logger.propagate = previous
