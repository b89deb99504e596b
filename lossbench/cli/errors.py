"""Turn library errors and Click's usage errors into one red line with the fix and a documented exit code."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from lossbench.errors import UserError

F = TypeVar("F", bound=Callable[..., Any])

err_console = Console(stderr=True, highlight=False, soft_wrap=True)  # one line, never wrapped


def report_error(exc: UserError) -> None:
    # One line whatever the message holds: parser errors from pandas or pyarrow may embed newlines.
    text = f"[bold red]Error:[/bold red] {escape(' '.join(exc.message.split()))}"
    if exc.hint:
        text += f" [yellow]{escape(' '.join(exc.hint.split()))}[/yellow]"
    err_console.print(text, markup=True)


def usage_hint(exc: Exception, argv: Sequence[str]) -> str:
    """The fix for one of Click's usage errors: the verb's help, and what a flag given a value means."""
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "lossbench"
    if ctx is not None and "unexpected extra argument" in str(exc):
        flags = {name for p in ctx.command.get_params(ctx) if getattr(p, "is_flag", False) for name in p.opts}
        for before, after in itertools.pairwise(argv):
            if before in flags and after.lower() in ("true", "false", "yes", "no", "1", "0", "on", "off"):
                return f"{before} is a flag and takes no value: write {before} to turn it on, or leave it out."
    return f"See `{command} --help`."


@contextmanager
def user_errors() -> Iterator[None]:
    """Render a UserError as one red line plus its fix and exit with its documented code, no traceback."""
    try:
        yield
    except UserError as exc:
        report_error(exc)
        raise typer.Exit(exc.exit_code) from None


def handles_errors(fn: F) -> F:
    """Wrap a command so a :class:`UserError` prints one line and exits with its code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with user_errors():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
