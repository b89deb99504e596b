"""The dataset every source returns, and the registry of URI schemes."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lossbench.errors import DataError
from lossbench.registry import Registry
from lossbench.specs import DatasetURI


@dataclass
class Dataset:
    """A loaded table: features, integer labels ``0..K-1`` and their names.

    For binary data, class 1 is the positive class (the minority class unless the
    URI names ``positive=``), so "F1" means F1 of the class that matters.
    """

    name: str
    uri: str
    X: pd.DataFrame
    y: np.ndarray
    classes: list[str]
    meta: dict[str, Any] = field(default_factory=dict)
    #: Multi-label data: an (n, L) 0/1 matrix (``y`` then holds one label per row, for stratification).
    targets: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y, dtype=np.int64)
        if self.targets is not None:
            self.targets = np.asarray(self.targets, dtype=np.int8)
            if self.targets.ndim != 2 or len(self.targets) != len(self.y):
                raise DataError(f"Dataset {self.uri!r}: targets must be an (n_rows, n_labels) 0/1 matrix.")
        if len(self.X) != len(self.y):
            raise DataError(f"Dataset {self.uri!r} has {len(self.X)} feature rows but {len(self.y)} labels.")
        if len(self.y) == 0:
            raise DataError(f"Dataset {self.uri!r} is empty.", "Check the file and the target column.")
        if self.X.shape[1] == 0:
            raise DataError(f"Dataset {self.uri!r} has no feature columns.", "Check the target= option.")
        present = np.unique(self.y)
        if len(present) < 2:
            raise DataError(
                f"Dataset {self.uri!r} has only one class ({self.classes[int(present[0])]!r}).",
                "A classification benchmark needs at least two classes; check the target column.",
            )

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def content_hash(self) -> str:
        """A hash of the values (features, labels, class names), stable across runs and machines."""
        h = hashlib.sha256()
        h.update(pd.util.hash_pandas_object(self.X, index=False).to_numpy().tobytes())
        h.update(",".join(map(str, self.X.columns)).encode())
        h.update(self.y.tobytes())
        h.update("\x1f".join(self.classes).encode())
        if self.targets is not None:  # only multi-label data: other hashes stay as they were
            h.update(self.targets.tobytes())
        return h.hexdigest()[:16]


def encode_labels(
    labels: pd.Series | np.ndarray, uri: str, positive: Any | None = None
) -> tuple[np.ndarray, list[str]]:
    """Integer-code labels; binary data puts the positive (default: minority) class at 1.

    ``positive=`` on a multi-class target makes a one-vs-rest binary view.
    """
    s = pd.Series(labels).reset_index(drop=True)
    if s.isna().any():
        raise DataError(
            f"Dataset {uri!r} has {int(s.isna().sum())} missing labels.",
            "Drop those rows or choose another target column.",
        )
    values = s.astype(str)
    if positive is not None:
        pos = str(positive)
        if pos not in set(values):
            raise DataError(
                f"Dataset {uri!r} has no class {pos!r} for positive=.",
                f"Its classes are: {', '.join(sorted(set(values))[:20])}.",
            )
        y = (values == pos).to_numpy().astype(np.int64)
        return y, [f"not {pos}", pos]
    classes = sorted(set(values), key=_natural_key)
    if len(classes) == 2:
        counts = values.value_counts()
        minority = min(classes, key=lambda c: (counts[c], -classes.index(c)))
        classes = [c for c in classes if c != minority] + [minority]
    index = {c: i for i, c in enumerate(classes)}
    return values.map(index).to_numpy().astype(np.int64), classes


def _natural_key(text: str) -> tuple[int, float | str]:
    try:
        return (0, float(text))
    except ValueError:
        return (1, text)


def uri_options(uri: DatasetURI, allowed: set[str]) -> dict[str, Any]:
    """The URI's ``#key=value`` options, refusing any key not in ``allowed``."""
    opts = uri.option_dict
    unknown = set(opts) - allowed
    if unknown:
        raise DataError(f"Unknown option {sorted(unknown)[0]!r} in {str(uri)!r}.",
                        f"Accepted: {', '.join(sorted(allowed)) or 'none'}.")
    return opts


Loader = Callable[[DatasetURI], Dataset]

SOURCES: Registry[Loader] = Registry("source", entry_point_group="lossbench.sources")


def load_dataset(uri: str | DatasetURI) -> Dataset:
    """Load any dataset URI through the source registered for its scheme."""
    parsed = uri if isinstance(uri, DatasetURI) else DatasetURI.parse(uri)
    if parsed.scheme not in SOURCES:
        raise DataError(
            f"No data source for scheme {parsed.scheme!r} in {str(parsed)!r}.",
            f"Known schemes: {', '.join(SOURCES.names())}.",
        )
    entry = SOURCES.entry(parsed.scheme)
    if entry.meta.get("cached") and os.environ.get("LOSSBENCH_NO_DATA_CACHE", "") not in ("1", "true"):
        # Slow sources (ARFF parsing) go through the local Parquet cache so each worker does not re-parse.
        from lossbench.sources.cache import cached_load

        return cached_load(str(parsed), lambda: entry.obj(parsed))
    return entry.obj(parsed)
