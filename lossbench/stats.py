"""Statistics over seeds and datasets."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def mean_ci(values: np.ndarray | pd.Series, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and a Student-t confidence interval over seeds; (mean, nan, nan) for one value."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    if len(x) < 2:
        return mean, float("nan"), float("nan")
    sem = float(x.std(ddof=1) / np.sqrt(len(x)))
    if sem == 0:
        return mean, mean, mean
    lo, hi = stats.t.interval(confidence, len(x) - 1, loc=mean, scale=sem)
    return mean, float(lo), float(hi)


def average_ranks(table: pd.DataFrame, higher_is_better: bool = True) -> pd.Series:
    """Average rank of each column (loss) over rows (datasets); 1 is best, ties share ranks."""
    complete = table.dropna()
    if complete.empty:
        return pd.Series(dtype=float)
    ranks = complete.rank(axis=1, ascending=not higher_is_better, method="average")
    return ranks.mean().sort_values()
