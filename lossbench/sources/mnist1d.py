"""``mnist1d:default``: the procedural MNIST-1D signals (Greydanus 2020), 5 000 × 40, 10 classes.

Generated locally with ``make_dataset(get_dataset_args())`` (``get_dataset`` would download). Option ``n=``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lossbench.errors import DataError
from lossbench.sources.base import SOURCES, Dataset, encode_labels, uri_options
from lossbench.specs import DatasetURI


def load_mnist1d(uri: DatasetURI) -> Dataset:
    opts = uri_options(uri, {"n"})
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise DataError("The mnist1d: source needs the mnist1d package.", "pip install mnist1d") from None
    args = get_dataset_args()
    args.num_samples = int(opts.get("n", 5000))  # type: ignore[attr-defined]
    data = make_dataset(args)  # deterministic: seeded inside mnist1d; no download
    X = np.concatenate([data["x"], data["x_test"]]).astype(np.float64)
    y = np.concatenate([data["y"], data["y_test"]])
    frame = pd.DataFrame(X, columns=[f"t{i}" for i in range(X.shape[1])])
    labels, classes = encode_labels(y, str(uri))
    return Dataset("mnist1d", str(uri), frame, labels, classes, {"source": "mnist1d (generated)", "n_rows": len(y)})


SOURCES.register("mnist1d", load_mnist1d, description="MNIST-1D signals generated locally", example="mnist1d:default")
