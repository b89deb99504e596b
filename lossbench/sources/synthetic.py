"""``synthetic:<generator>#...``: seeded generated data for smoke tests and controls."""

from __future__ import annotations

import math

import pandas as pd
from sklearn.datasets import make_classification

from lossbench.errors import DataError
from lossbench.sources.base import SOURCES, Dataset, encode_labels
from lossbench.specs import DatasetURI

#: Generated data lives in memory in every worker: beyond this, a typo (n=10000000000) is far likelier than intent.
MAX_ROWS = 10_000_000
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
    for key, value in opts.items():
        # URI values arrive as parsed text: a string or a bool here would reach sklearn and end in a traceback
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or (isinstance(DEFAULTS[key], int) and not float(value).is_integer()):
            want = "an integer" if isinstance(DEFAULTS[key], int) else "a number"
            raise DataError(f"Option {key}= in {str(uri)!r} must be {want}; got {value!r}.",
                            f"For example {key}={DEFAULTS[key]}.")
    k = int(opts["classes"])
    minority = float(opts["minority"])
    n, features, informative = int(opts["n"]), int(opts["features"]), int(opts["informative"])
    if k < 2 or not 0 < minority < 1:
        raise DataError(f"{str(uri)!r} needs classes >= 2 and 0 < minority < 1.")
    if not 1 <= n <= MAX_ROWS or features < 1 or not 1 <= informative <= features:
        raise DataError(f"{str(uri)!r} needs 1 <= n <= {MAX_ROWS:,}, features >= 1 and 1 <= informative <= features.")
    if not 0 <= float(opts["flip"]) < 1 or int(opts["seed"]) < 0:
        raise DataError(f"{str(uri)!r} needs 0 <= flip < 1 and seed >= 0.")
    if k * 2 > 2**informative:
        raise DataError(f"{str(uri)!r}: {k} classes need more informative features (classes * 2 <= 2**informative).",
                        f"Add informative={max(1, (2 * k - 1).bit_length())}&features=... to the URI.")
    weights = [(1 - minority) / (k - 1)] * (k - 1) + [minority]
    X, y = make_classification(
        n_samples=n,
        n_features=features,
        n_informative=informative,
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
