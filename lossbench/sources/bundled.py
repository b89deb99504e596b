"""``bundled:<name>``: data files shipped inside the package (``lossbench/data``, see its README.md).

* ``bundled:letter``: a 5 000-row stratified sample of Letter Recognition (26 classes), a tabular dataset.
* ``bundled:stdlib-docs``: query–document pairs from the standard library's docstrings. Pair data are a
  :class:`Dataset` whose X has the text columns ``query`` and ``document``; ``y`` is the module (used to
  stratify), and ``meta["kind"] == "pairs"`` tells the retrieval task.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd

from lossbench.errors import DataError
from lossbench.sources.base import SOURCES, Dataset, encode_labels, uri_options
from lossbench.specs import DatasetURI

DATA_DIR = Path(__file__).resolve().parent.parent / "data"


def load_letter(path: Path, uri: DatasetURI) -> Dataset:
    frame = pd.read_csv(path)
    y, classes = encode_labels(frame.pop("letter"), str(uri))
    return Dataset("letter", str(uri), frame.astype(np.float64), y, classes,
                   {"source": "UCI Letter Recognition via KEEL (CC BY 4.0)", "n_rows": len(y)})


def load_stdlib_docs(path: Path, uri: DatasetURI) -> Dataset:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    frame = pd.DataFrame({"query": [r["query"] for r in rows], "document": [r["document"] for r in rows]})
    y, classes = encode_labels([r["module"] for r in rows], str(uri))
    return Dataset("stdlib-docs", str(uri), frame, y, classes, {"source": "CPython docstrings (PSF licence)",
                                                               "kind": "pairs", "n_rows": len(rows)})


def load_bundled(uri: DatasetURI) -> Dataset:
    uri_options(uri, set())
    if uri.location == "letter":
        return load_letter(DATA_DIR / "letter.csv.gz", uri)
    if uri.location == "stdlib-docs":
        return load_stdlib_docs(DATA_DIR / "stdlib_docs.jsonl.gz", uri)
    raise DataError(f"No bundled dataset {uri.location!r}.", "Choose letter or stdlib-docs.")


SOURCES.register("bundled", load_bundled, description="Data shipped in lossbench/data", example="bundled:letter")
