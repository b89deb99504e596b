"""``csv:<path>#target=<column>`` and ``parquet:<path>#target=<column>``: a user's own table.

Options: ``target`` (required), ``positive`` (one-vs-rest binary view), ``sep``, ``drop`` (columns separated
by ``;``) and, for CSV, ``header=false`` for files without a header row (columns are then ``0``, ``1``, ...).
Relative paths are relative to the working directory. ``?`` and empty cells are missing values.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lossbench.errors import DataError
from lossbench.sources.base import SOURCES, Dataset, encode_labels
from lossbench.specs import DatasetURI

OPTIONS = {"target", "positive", "sep", "drop", "header"}


def read_table(uri: DatasetURI) -> pd.DataFrame:
    path = Path(uri.location).expanduser()
    if not path.is_file():
        raise DataError(f"Cannot find the file {str(path)!r} named by {str(uri)!r}.", "Check the path.")
    try:
        if uri.scheme == "parquet":
            return pd.read_parquet(path)
        sep = uri.option_dict.get("sep", ",")
        # header=false: a header-less file (KEEL style); columns are then named 0, 1, ... (target=16)
        header = 0 if uri.option_dict.get("header", True) is not False else None
        # skipinitialspace: "1, 2" files (KEEL) would otherwise give labels " 2" next to "2"
        frame = pd.read_csv(path, sep=sep, compression="infer", header=header, skipinitialspace=True,
                            na_values=["?"])
        frame.columns = [str(c) for c in frame.columns]
        return frame
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        reason = str(exc).strip().rstrip(".")  # pandas messages may end in a newline
        raise DataError(f"Cannot read {str(path)!r}: {reason}.", "Check the file's format.") from None


def load_table(uri: DatasetURI) -> Dataset:
    opts = uri.option_dict
    unknown = set(opts) - OPTIONS
    if unknown:
        raise DataError(
            f"Unknown option {sorted(unknown)[0]!r} in {str(uri)!r}.",
            f"{uri.scheme}: URIs accept {', '.join(sorted(OPTIONS))}.",
        )
    if "target" not in opts:
        raise DataError(f"{str(uri)!r} does not say which column is the label.", "Add #target=<column>.")
    frame = read_table(uri)
    target = str(opts["target"])
    if target not in frame.columns:
        raise DataError(
            f"Column {target!r} is not in {uri.location!r}.",
            f"Its columns are: {', '.join(map(str, frame.columns[:20]))}.",
        )
    drop = [c for c in str(opts.get("drop", "")).split(";") if c]
    missing = [c for c in drop if c not in frame.columns]
    if missing:
        raise DataError(f"Cannot drop column {missing[0]!r}: it is not in {uri.location!r}.")
    y, classes = encode_labels(frame[target], str(uri), opts.get("positive"))
    X = frame.drop(columns=[target, *drop]).reset_index(drop=True)
    X.columns = [str(c) for c in X.columns]
    return Dataset(Path(uri.location).stem, str(uri), X, y, classes, {"source": uri.scheme, "n_rows": len(y)})


SOURCES.register("csv", load_table, description="A CSV file (gzip allowed)", example="csv:data.csv#target=label")
SOURCES.register("parquet", load_table, description="A Parquet file", example="parquet:data.parquet#target=y")
