"""``river:yeast``: the Yeast multi-label data bundled with river (2 417 × 103, 14 labels; Elisseeff & Weston 2001).

``targets`` holds the 0/1 label matrix, ``y`` each row's first label (only for stratified splitting).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lossbench.errors import DataError
from lossbench.sources.base import SOURCES, Dataset, uri_options
from lossbench.specs import DatasetURI


def load_river(uri: DatasetURI) -> Dataset:
    uri_options(uri, set())
    if uri.location != "yeast":
        raise DataError(f"river: offers only the bundled multi-label yeast here, not {uri.location!r}.",
                        "Use river:yeast.")
    try:
        from river import datasets
    except ImportError:
        raise DataError("The river: source needs the river package.", "pip install river") from None
    xs, ys = zip(*datasets.Yeast(), strict=True)  # a local file inside the river wheel
    frame = pd.DataFrame(list(xs)).astype(np.float64)
    frame.columns = [str(c) for c in frame.columns]
    names = list(ys[0])
    targets = np.array([[int(bool(row[n])) for n in names] for row in ys], dtype=np.int8)
    y = targets.argmax(1)
    return Dataset("yeast", str(uri), frame, y, names, {"source": "river Yeast (Elisseeff & Weston 2001)",
                                                        "kind": "multilabel", "n_rows": len(y)}, targets=targets)


SOURCES.register("river", load_river, description="Multi-label Yeast bundled with river", example="river:yeast")
