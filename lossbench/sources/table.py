"""``csv:<path>#target=<column>`` and ``parquet:<path>#target=<column>``: a user's own table.

Options: ``target`` (required), ``positive`` (one-vs-rest binary view), ``sep`` (``,`` by default; ``;``, ``|``,
``tab``), ``decimal`` (``.`` by default, or ``,``), ``drop`` (columns separated by ``;``) and, for CSV,
``header=false`` for files without a header row (columns are then ``0``, ``1``, ...). Relative paths are relative
to the working directory. ``?`` and empty cells are missing values.

A table that would train on nothing is refused with the fix: a file that reads as one column names the
separator that works, and numbers written with decimal commas ask for ``decimal=,``. What the tabular task will
do to the data (impute missing values, one-hot encode text columns) is logged once, when the driver loads it.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd

from lossbench.errors import DataError
from lossbench.sources.base import SOURCES, Dataset, encode_labels
from lossbench.specs import DatasetURI

OPTIONS = {"target", "positive", "sep", "decimal", "drop", "header"}
#: sep= values that cannot be written literally in a URI
SEPARATOR_NAMES = {"tab": "\t", "\\t": "\t", "space": " "}
#: Separators tried when a file reads as a single column, in the order they are suggested.
CANDIDATE_SEPARATORS = {",": ",", ";": ";", "tab": "\t", "|": "|"}
DECIMAL_COMMA = re.compile(r"[-+]?\d*,\d+(?:[eE][-+]?\d+)?|[-+]?\d+")
#: Numeric values treated as missing by the tabular task (see tasks/classification.py).
MAX_ABS = 1e12

log = logging.getLogger(__name__)


def read_table(uri: DatasetURI) -> pd.DataFrame:
    path = Path(uri.location).expanduser()
    if path.is_dir():
        raise DataError(f"{str(path)!r}, named by {str(uri)!r}, is a directory, not a data file.",
                        "Name the CSV or Parquet file itself.")
    if not path.is_file():
        raise DataError(f"Cannot find the file {str(path)!r} named by {str(uri)!r}.", "Check the path.")
    opts = uri.option_dict
    try:
        if uri.scheme == "parquet":
            return pd.read_parquet(path)
        sep = str(opts.get("sep", ","))
        sep = SEPARATOR_NAMES.get(sep, sep)
        decimal = str(opts.get("decimal", "."))
        if decimal not in (".", ","):
            raise DataError(f"decimal={decimal} in {str(uri)!r}: the decimal mark is . or ,.", "Write decimal=,")
        if decimal == sep:
            raise DataError(f"{str(uri)!r} uses {sep!r} both as the separator and the decimal mark.",
                            "Add the file's separator, e.g. &sep=;")
        # header=false: a header-less file (KEEL style); columns are then named 0, 1, ... (target=16)
        header = 0 if opts.get("header", True) is not False else None
        # skipinitialspace: "1, 2" files (KEEL) would otherwise give labels " 2" next to "2"
        frame = pd.read_csv(path, sep=sep, decimal=decimal, compression="infer", header=header,
                            skipinitialspace=True, na_values=["?"])
        frame.columns = [str(c) for c in frame.columns]
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        if isinstance(exc, pd.errors.ParserError) and "sep" not in opts:
            suggest_separator(uri, path, sep, header, "does not parse")  # e.g. tab-separated, decimal commas
        reason = str(exc).strip().rstrip(".")  # pandas messages may end in a newline
        raise DataError(f"Cannot read {str(path)!r}: {reason}.", "Check the file's format.") from None
    if frame.shape[1] == 1:
        suggest_separator(uri, path, sep, header, "reads as one column")
    if "decimal" not in opts:
        refuse_decimal_commas(uri, frame, str(opts.get("target", "")))
    return frame


def suggest_separator(uri: DatasetURI, path: Path, used: str, header: int | None, problem: str) -> None:
    """A file read as one column (or not at all): name the separator that splits it, with the URI that works."""
    for name, sep in CANDIDATE_SEPARATORS.items():
        if sep == used:
            continue
        try:
            n = pd.read_csv(path, sep=sep, compression="infer", header=header).shape[1]
        except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError):
            continue
        if n > 1:
            fixed = DatasetURI(uri.scheme, uri.location, tuple(sorted({**uri.option_dict, "sep": name}.items())))
            shown = "the default sep=," if "sep" not in uri.option_dict else f"sep={uri.option_dict['sep']}"
            raise DataError(f"{str(path)!r} {problem} with {shown}; sep={name} gives {n} columns.",
                            f"Use {fixed}")


def refuse_decimal_commas(uri: DatasetURI, frame: pd.DataFrame, target: str) -> None:
    """Text columns that are numbers with decimal commas would be one-hot encoded: ask for decimal=, instead."""
    found = []
    for column in frame.columns:
        values = frame[column].dropna()
        if column == target or pd.api.types.is_numeric_dtype(values) or values.empty:
            continue
        text = values.astype(str).str.strip()
        if text.str.contains(",", regex=False).any() and text.str.fullmatch(DECIMAL_COMMA).all():
            found.append((column, text[text.str.contains(",", regex=False)].iloc[0]))
    if found:
        names = ", ".join(c for c, _ in found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        raise DataError(
            f"{str(uri)!r}: column(s) {names} hold numbers written with a decimal comma ({found[0][1]!r}), "
            "which would be read as text.",
            "Add &decimal=, to the URI to read them as numbers (or &decimal=. to keep them as text).",
        )


def describe_preprocessing(ds: Dataset) -> None:
    """Log, for the user's terminal, what the tabular task does to this table before training."""
    X = ds.X
    text = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c])]
    numeric = X[[c for c in X.columns if c not in text]].astype("float64")
    missing = numeric.isna() | ~numeric.abs().le(MAX_ABS)
    if text and len(text) * 2 > X.shape[1]:
        log.warning("%s: %d of %d feature columns are not numbers (%s); they would be one-hot encoded. Check "
                    "the target=, sep= and decimal= options.", ds.uri, len(text), X.shape[1], listing(text))
    elif text:
        log.info("%s: %d text column(s) one-hot encoded: %s.", ds.uri, len(text), listing(text))
    if missing.to_numpy().any():
        columns = [c for c in numeric.columns if missing[c].any()]
        log.info("%s: %d missing or non-finite value(s) in %d column(s) (%s), imputed with the training median.",
                 ds.uri, int(missing.to_numpy().sum()), len(columns), listing(columns))


def listing(names: list[str], n: int = 5) -> str:
    return ", ".join(map(str, names[:n])) + (f" and {len(names) - n} more" if len(names) > n else "")


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
    ds = Dataset(Path(uri.location).stem, str(uri), X, y, classes, {"source": uri.scheme, "n_rows": len(y)})
    describe_preprocessing(ds)
    return ds


SOURCES.register("csv", load_table, description="A CSV file (gzip allowed)", example="csv:data.csv#target=label")
SOURCES.register("parquet", load_table, description="A Parquet file", example="parquet:data.parquet#target=y")
