"""Which training rows to forget: a random fraction of them, or every row of one class.

The selection is a pure function of (labels, seed, option), so every method of a seed sees the same forget set and
the oracle cache can key on it. Rows are positions in the training split, returned sorted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossbench import streams
from lossbench.errors import SpecError, UserError


@dataclass(frozen=True)
class ForgetOption:
    """``fraction`` of the training rows drawn at random, or every row of class ``cls`` (exactly one is set)."""

    fraction: float | None = None
    cls: int | None = None

    def __post_init__(self) -> None:
        if (self.fraction is None) == (self.cls is None):
            raise SpecError("A forget set is either a fraction of the training rows or one class.",
                            'Write forget = "fraction=0.1" or forget = "class=3".')
        if self.fraction is not None:
            f = self.fraction
            if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0.0 < f < 1.0:
                raise SpecError(f"The forget fraction must lie strictly between 0 and 1. Got {f!r}.",
                                "Forgetting no row or every row leaves nothing to compare; try fraction=0.1.")
        if self.cls is not None and (isinstance(self.cls, bool) or not isinstance(self.cls, int) or self.cls < 0):
            raise SpecError(f"The forget class must be a class index (an integer >= 0). Got {self.cls!r}.",
                            'Example: forget = "class=3".')

    @property
    def label(self) -> str:
        """The canonical text form, used in result rows and cache keys."""
        return f"fraction={self.fraction:g}" if self.fraction is not None else f"class={self.cls}"


def parse_forget(value: str | Mapping[str, Any] | ForgetOption) -> ForgetOption:
    """``"fraction=0.1"``, ``"class=3"`` or ``{"fraction": 0.1}`` / ``{"class": 3}`` → :class:`ForgetOption`."""
    if isinstance(value, ForgetOption):
        return value
    if isinstance(value, str):
        key, sep, raw = value.partition("=")
        if not sep:
            raise SpecError(f"Cannot read the forget option {value!r}.", 'Write "fraction=0.1" or "class=3".')
        try:
            number: Any = float(raw) if key.strip() == "fraction" else int(raw)
        except ValueError:
            raise SpecError(f"Cannot read the number in the forget option {value!r}.",
                            'Write "fraction=0.1" or "class=3".') from None
        value = {key.strip(): number}
    if not isinstance(value, Mapping) or len(value) != 1 or next(iter(value)) not in ("fraction", "class"):
        raise SpecError(f"Cannot read the forget option {value!r}.", 'Write "fraction=0.1" or "class=3".')
    (key, number), = value.items()
    return ForgetOption(fraction=number) if key == "fraction" else ForgetOption(cls=number)


def select_forget(labels: np.ndarray, seed: int, option: ForgetOption | str | Mapping[str, Any]) -> np.ndarray:
    """Sorted positions of the training rows to forget.

    A fraction draws ``round(fraction · n)`` rows without replacement (at least one, never all); a class takes all
    of its rows and fails when the class has no training row, or when it is the only class present.
    """
    option = parse_forget(option)
    labels = np.asarray(labels)
    n = len(labels)
    if option.cls is not None:
        present = np.unique(labels)
        if option.cls not in present:
            raise UserError(f"Class {option.cls} has no row in the training split, so it cannot be forgotten.",
                            f"Choose one of the classes present: {', '.join(map(str, present.tolist()))}.")
        if len(present) == 1:
            raise UserError("The training split has a single class; forgetting it leaves nothing to retain.",
                            "Forget a fraction of the rows instead.")
        return np.flatnonzero(labels == option.cls).astype(np.int64)
    assert option.fraction is not None
    count = round(option.fraction * n)
    if count < 1 or count > n - 1:
        raise UserError(f"A forget fraction of {option.fraction:g} of {n} training rows selects {count} rows.",
                        "Choose a fraction that keeps at least one row on each side.")
    rng = streams.rng(seed, "forget")  # independent of the split and batch streams
    return np.sort(rng.choice(n, size=count, replace=False)).astype(np.int64)


def forget_key(labels: np.ndarray, seed: int, option: ForgetOption | str | Mapping[str, Any]) -> str:
    """A short content hash of the selected rows: the oracle cache key's forget-set part."""
    rows = select_forget(labels, seed, option)
    return hashlib.sha256(rows.tobytes()).hexdigest()[:16]
