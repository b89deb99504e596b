"""``sklearn:<name>``: the datasets that ship inside scikit-learn (no network)."""

from __future__ import annotations

import pandas as pd
from sklearn import datasets as skd

from lossbench.errors import DataError
from lossbench.sources.base import SOURCES, Dataset, encode_labels
from lossbench.specs import DatasetURI

BUNDLED = {
    "breast_cancer": skd.load_breast_cancer,
    "digits": skd.load_digits,
    "wine": skd.load_wine,
    "iris": skd.load_iris,
}


def load_sklearn(uri: DatasetURI) -> Dataset:
    """Options: ``positive=<class>`` for a one-vs-rest binary view (e.g. ``sklearn:digits#positive=0``)."""
    opts = uri.option_dict
    unknown = set(opts) - {"positive"}
    if unknown:
        raise DataError(f"Unknown option {sorted(unknown)[0]!r} in {str(uri)!r}.", "sklearn: URIs accept positive=.")
    try:
        loader = BUNDLED[uri.location]
    except KeyError:
        raise DataError(
            f"scikit-learn has no bundled dataset {uri.location!r}.",
            f"Choose one of: {', '.join(sorted(BUNDLED))}.",
        ) from None
    bunch = loader()
    X = pd.DataFrame(bunch.data, columns=[str(c) for c in bunch.feature_names])
    names = getattr(bunch, "target_names", None)
    labels = [str(names[t]) if names is not None else str(t) for t in bunch.target]
    positive = opts.get("positive")
    if positive is not None and names is not None and str(positive) not in set(labels):
        labels = [str(t) for t in bunch.target]  # digits: target names are the digits themselves
    y, classes = encode_labels(labels, str(uri), positive)
    return Dataset(uri.location, str(uri), X, y, classes, {"source": "scikit-learn", "n_rows": len(y)})


SOURCES.register("sklearn", load_sklearn, description="Datasets bundled with scikit-learn", example="sklearn:wine")
