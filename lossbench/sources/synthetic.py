"""``synthetic:<generator>#...``: seeded generated data for smoke tests and controls."""

from __future__ import annotations

import pandas as pd
from sklearn.datasets import make_classification

from lossbench.errors import DataError
from lossbench.sources.base import SOURCES, Dataset, encode_labels
from lossbench.specs import DatasetURI

DEFAULTS = {"n": 600, "features": 10, "informative": 5, "classes": 2, "minority": 0.2, "seed": 0, "flip": 0.0}


def load_synthetic(uri: DatasetURI) -> Dataset:
    """``synthetic:classification#n=600&features=10&classes=2&minority=0.2&seed=0``.

    ``minority`` is the share of the last class; the others share the rest equally.
    The data is fixed by the URI (its own ``seed``), not by the trial seed.
    """
    if uri.location != "classification":
        raise DataError(f"Unknown synthetic generator {uri.location!r}.", "Use synthetic:classification.")
    opts = {**DEFAULTS, **uri.option_dict}
    unknown = set(opts) - set(DEFAULTS)
    if unknown:
        raise DataError(f"Unknown option {sorted(unknown)[0]!r} in {str(uri)!r}.", f"Use {', '.join(DEFAULTS)}.")
    k = int(opts["classes"])
    minority = float(opts["minority"])
    if k < 2 or not 0 < minority < 1:
        raise DataError(f"{str(uri)!r} needs classes >= 2 and 0 < minority < 1.")
    weights = [(1 - minority) / (k - 1)] * (k - 1) + [minority]
    X, y = make_classification(
        n_samples=int(opts["n"]),
        n_features=int(opts["features"]),
        n_informative=int(opts["informative"]),
        n_redundant=0,
        n_classes=k,
        weights=weights,
        flip_y=float(opts["flip"]),
        random_state=int(opts["seed"]),
    )
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    codes, classes = encode_labels(y, str(uri))
    return Dataset("synthetic", str(uri), frame, codes, classes, {"source": "synthetic", "n_rows": len(y)})


SOURCES.register(
    "synthetic", load_synthetic, description="Seeded generated data", example="synthetic:classification#n=600"
)
