"""Retrieval and multi-label data: ``mnist1d:``, ``bundled:`` (files shipped in ``lossbench/data``) and ``river:``.

* ``mnist1d:default`` — the procedural MNIST-1D signals (Greydanus 2020), 5 000 × 40, 10 classes, generated
  locally with ``make_dataset(get_dataset_args())`` (``get_dataset`` would download). Option ``n=``.
* ``bundled:letter`` — 5 000-row stratified sample of Letter Recognition (26 classes; see lossbench/data/README.md).
* ``bundled:stdlib-docs`` — query–document pairs from the standard library. Pair data are a :class:`Dataset`
  whose X has the text columns ``query`` and ``document``; ``y`` is the module (used to stratify), and
  ``meta["kind"] == "pairs"`` tells the task.
* ``river:yeast`` — the Yeast multi-label data bundled with river (2 417 × 103, 14 labels); ``targets`` holds
  the 0/1 label matrix, ``y`` each row's first label.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd

from lossbench.errors import DataError
from lossbench.sources.base import SOURCES, Dataset, encode_labels
from lossbench.specs import DatasetURI

DATA_DIR = Path(__file__).resolve().parent.parent / "data"


def _no_options(uri: DatasetURI, allowed: set[str]) -> dict[str, object]:
    opts = uri.option_dict
    unknown = set(opts) - allowed
    if unknown:
        raise DataError(f"Unknown option {sorted(unknown)[0]!r} in {str(uri)!r}.",
                        f"Accepted: {', '.join(sorted(allowed)) or 'none'}.")
    return opts


def load_mnist1d(uri: DatasetURI) -> Dataset:
    opts = _no_options(uri, {"n"})
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


def load_stdlib_docs(path: Path, uri: DatasetURI) -> Dataset:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    frame = pd.DataFrame({"query": [r["query"] for r in rows], "document": [r["document"] for r in rows]})
    y, classes = encode_labels([r["module"] for r in rows], str(uri))
    return Dataset("stdlib-docs", str(uri), frame, y, classes, {"source": "CPython docstrings (PSF licence)",
                                                               "kind": "pairs", "n_rows": len(rows)})


def load_bundled(uri: DatasetURI) -> Dataset:
    _no_options(uri, set())
    if uri.location == "letter":
        frame = pd.read_csv(DATA_DIR / "letter.csv.gz")
        y, classes = encode_labels(frame.pop("letter"), str(uri))
        return Dataset("letter", str(uri), frame.astype(np.float64), y, classes,
                       {"source": "UCI Letter Recognition via KEEL (CC BY 4.0)", "n_rows": len(y)})
    if uri.location == "stdlib-docs":
        return load_stdlib_docs(DATA_DIR / "stdlib_docs.jsonl.gz", uri)
    raise DataError(f"No bundled dataset {uri.location!r}.", "Choose letter or stdlib-docs.")


def load_river(uri: DatasetURI) -> Dataset:
    _no_options(uri, set())
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
    y = targets.argmax(1)  # first positive label: only for stratified splitting
    return Dataset("yeast", str(uri), frame, y, names, {"source": "river Yeast (Elisseeff & Weston 2001)",
                                                        "kind": "multilabel", "n_rows": len(y)}, targets=targets)


SOURCES.register("mnist1d", load_mnist1d, description="MNIST-1D signals generated locally", example="mnist1d:default")
SOURCES.register("bundled", load_bundled, description="Data shipped in lossbench/data", example="bundled:letter")
SOURCES.register("river", load_river, description="Multi-label Yeast bundled with river", example="river:yeast")
