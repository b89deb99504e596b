"""Errors a user can act on.

The library raises these; only ``lossbench.cli`` renders them, as one red line
with the fix and a documented exit code, never a traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: says what is wrong and how to fix it."""

    exit_code: int = 2

    def __init__(self, message: str, hint: str | None = None, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class SpecError(UserError):
    """A loss spec, dataset URI or parameter that cannot be parsed or validated."""


class SuiteError(UserError):
    """A suite file that is missing, malformed or inconsistent."""


class DataError(UserError):
    """A dataset that cannot be loaded or is unusable for its task."""


class DataUnavailable(DataError):
    """A dataset that cannot be had here (not in the local cache, no network): a suite's run skips it and says so."""


class ResultsError(UserError):
    """A results directory that cannot be read or written."""


class LossInputError(UserError, ValueError):
    """A loss received tensors that break its input contract."""


class IncomparableError(UserError):
    """Baseline and candidate results cannot be compared (exit code 3)."""

    exit_code = 3


class InfrastructureError(UserError):
    """Trials failed, so nothing could be judged (exit code 4)."""

    exit_code = 4
