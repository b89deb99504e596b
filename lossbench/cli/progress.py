"""Progress of `lossbench run`: a live bar on a terminal, one plain line at a steady interval otherwise.

A CI log must show that a long run is alive: with output piped, a line such as
``progress: 12/48 trials (ok 11, failed 1), 2m10s elapsed, eta 6m30s`` is printed every ``every`` seconds,
whether or not a trial finished in between, and once more at the end.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class RunProgress:
    """Counts finished trials and shows them: ``failed`` counts failed, crashed, timeout and oom."""

    def __init__(self, total: int, console: Console, *, quiet: bool = False, every: float = 30.0) -> None:
        self.total, self.console, self.quiet, self.every = total, console, quiet, every
        self.done = self.ok = self.diverged = self.failed = self.skipped = 0
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bar: Progress | None = None
        if not quiet and console.is_terminal:
            self._bar = Progress(
                TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[failed]}"),
                console=console, transient=False,
            )
            self._task = self._bar.add_task("trials", total=total, failed="")

    def __enter__(self) -> RunProgress:
        if self._bar is not None:
            self._bar.start()
        elif not self.quiet and self.total:
            self._thread = threading.Thread(target=self._beat, name="lossbench-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            if kind is None:
                self.console.print(self.line(), markup=False)

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            self.console.print(self.line(), markup=False)

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        counts = ", ".join([f"ok {self.ok}"] + [f"{name} {n}" for name, n in (
            ("diverged", self.diverged), ("failed", self.failed), ("skipped", self.skipped)) if n])
        if self.done >= self.total:
            eta = "done"
        elif self.done:
            eta = f"eta {duration(elapsed / self.done * (self.total - self.done))}"
        else:
            eta = "eta unknown"
        return f"progress: {self.done}/{self.total} trials ({counts}), {duration(elapsed)} elapsed, {eta}"

    def advance(self, row: dict[str, Any]) -> None:
        """Count one finished trial; a failure is printed at once with the first line of its error."""
        status = str(row["status"])
        self.done += 1
        if status == "ok":
            self.ok += 1
        elif status == "skipped":
            self.skipped += 1
        elif status == "diverged":
            self.diverged += 1
        else:
            self.failed += 1
        if status not in ("ok", "skipped") and not self.quiet:
            msg = str(row.get("error_msg") or "").splitlines()
            self.console.print(f"[red]{status}[/red] {escape(str(row['dataset']))} {escape(str(row['loss']))} "
                               f"seed {row['seed']}: {escape(msg[0][:120]) if msg else ''}")
        if self._bar is not None:
            self._bar.update(self._task, advance=1,
                             failed=f"[red]{self.failed} failed[/red]" if self.failed else "")
