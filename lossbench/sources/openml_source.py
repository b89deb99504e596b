"""``openml:<id>``: an OpenML dataset by id, loaded through openml-python, offline when cached.

Where the files come from: the OpenML cache root in ``$OPENML_CACHE_DIR`` (set by
``lossbench run --openml-cache PATH``), else openml-python's configured root.
A dataset needs ``<root>/org/openml/www/datasets/<id>/`` with ``description.xml``,
``features.xml`` and ``dataset.arff`` (or ``dataset_<id>.pq``).

openml-python deletes a dataset's cache folder when any step of loading fails,
and fails on a read-only cache. So it never sees the user's cache: the raw files
are copied into a private scratch root, openml works there, and the scratch root
is removed afterwards. A dataset downloaded from the server is copied back into
the user's cache (file by file, never deleting anything) when that is writable.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lossbench.errors import DataError, DataUnavailable
from lossbench.sources.base import SOURCES, Dataset, encode_labels
from lossbench.specs import DatasetURI

OPTIONS = {"target", "positive", "drop"}
#: The files openml-python needs to load a dataset without a network call (§3.2 of docs/data.md).
REQUIRED = ("description.xml", "features.xml")
#: Files worth copying; openml's pickles are pandas-version-specific and are never copied.
RAW_FILES = ("description.xml", "features.xml", "qualities.xml", "dataset.arff")


def openml_cache_root() -> Path:
    """The user's OpenML cache root: ``$OPENML_CACHE_DIR`` (read now, not at import), else openml's configured root."""
    env = os.environ.get("OPENML_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import openml

    return _root_of(openml.config.get_cache_directory())


def _root_of(cache_directory: str) -> Path:
    """openml reports ``<root>/org/openml/www`` (the server host reversed); the root is what it is configured with."""
    path = Path(cache_directory)
    return path.parents[2] if path.parts[-3:-1] == ("org", "openml") else path


def dataset_dir(root: Path, did: int) -> Path:
    return root / "org" / "openml" / "www" / "datasets" / str(did)


def cached_files(folder: Path, did: int) -> list[Path]:
    """The raw files of a complete cache entry, or [] when the entry is incomplete."""
    if not all((folder / f).is_file() for f in REQUIRED):
        return []
    data = [folder / "dataset.arff", folder / f"dataset_{did}.pq"]
    if not any(p.is_file() for p in data):
        return []
    return [p for p in (*(folder / f for f in RAW_FILES), folder / f"dataset_{did}.pq") if p.is_file()]


def parse_id(uri: DatasetURI) -> int:
    try:
        did = int(uri.location)
    except ValueError:
        raise DataError(
            f"OpenML datasets are addressed by numeric id; got {uri.location!r} in {str(uri)!r}.",
            "Write openml:<id>, e.g. openml:310 (names need the server and are not supported).",
        ) from None
    if did <= 0:
        raise DataError(f"OpenML ids are positive integers; got {did} in {str(uri)!r}.")
    return did


def fetch(did: int, root: Path, target: str | None = None) -> tuple[pd.DataFrame, pd.Series, str, str, bool]:
    """Load dataset ``did`` → (features, target, target name, dataset name, downloaded?).

    ``target`` defaults to the dataset's default target attribute.
    """
    import openml  # slow to import; only needed on a cache miss of the local Parquet cache

    source = dataset_dir(root, did)
    files = cached_files(source, did)
    # A private scratch root: whatever openml deletes on failure is this copy, never the user's folder.
    scratch = Path(tempfile.mkdtemp(prefix=f"lossbench-openml-{did}-"))
    work = dataset_dir(scratch, did)
    work.mkdir(parents=True)
    for f in files:
        shutil.copy2(f, work / f.name)
    previous_root = _root_of(openml.config.get_cache_directory())
    previous_retries = openml.config.connection_n_retries
    previous_skip = os.environ.get("OPENML_SKIP_PARQUET")
    try:
        os.environ["OPENML_SKIP_PARQUET"] = "true"  # the MinIO client otherwise retries for seconds per dataset
        openml.config.set_root_cache_directory(str(scratch))
        openml.config.connection_n_retries = 1  # the default waits 1+2+3+4 s per missing file
        ds = openml.datasets.get_dataset(
            did, download_data=True, download_qualities=False, download_features_meta_data=True
        )
        column = target or (ds.default_target_attribute or "").split(",")[0]
        if not column:
            raise DataError(f"OpenML dataset {did} has no default target.", "Add #target=<column> to the URI.")
        names = [f.name for f in ds.features.values()]
        if column not in names:
            raise DataError(f"OpenML dataset {did} has no column {column!r}.",
                            f"Its columns are: {', '.join(names[:20])}.")
        X, y, _, _ = ds.get_data(target=column, dataset_format="dataframe")
        if not files:
            _copy_back(work, source)
        return X, y, column, str(ds.name), not files
    except DataError:
        raise
    except Exception as exc:
        where = f"{source} (cache root {root})"
        if files:
            raise DataError(
                f"OpenML dataset {did} is in the cache at {where} but could not be read: "
                f"{type(exc).__name__}: {str(exc)[:200]}",
                "Replace that folder with a fresh copy of the dataset's files.",
            ) from None
        raise DataUnavailable(
            f"OpenML dataset {did} is not in the OpenML cache searched at {where}, and downloading it failed "
            f"({_reason(exc)}).",
            "Pass --openml-cache DIR (or set OPENML_CACHE_DIR) to a cache holding org/openml/www/datasets/"
            f"{did}/, or run once with network access.",
        ) from None
    finally:
        if previous_skip is None:
            os.environ.pop("OPENML_SKIP_PARQUET", None)
        else:
            os.environ["OPENML_SKIP_PARQUET"] = previous_skip
        openml.config.set_root_cache_directory(str(previous_root))
        openml.config.connection_n_retries = previous_retries
        shutil.rmtree(scratch, ignore_errors=True)


def _reason(exc: Exception) -> str:
    """A one-line cause: offline is the common case and needs no stack of nested URL errors."""
    name = type(exc).__name__
    if "Connection" in name or (isinstance(exc, OSError) and "resolution" in str(exc).lower()):
        return f"the OpenML server could not be reached: {name}"
    return f"{name}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"


def _copy_back(work: Path, source: Path) -> None:
    """Keep a downloaded dataset in the user's cache; adding files only, so nothing of theirs is lost."""
    try:
        source.mkdir(parents=True, exist_ok=True)
        for f in work.iterdir():
            if f.name in RAW_FILES and not (source / f.name).exists():
                shutil.copy2(f, source / f.name)
    except OSError:
        pass  # a read-only cache: the local Parquet cache still keeps the loaded table


def load_openml(uri: DatasetURI) -> Dataset:
    """``openml:<id>[#target=<column>&positive=<class>&drop=<a;b>]``; the target defaults to the dataset's default
    target; ``drop`` removes feature columns (e.g. vowel's speaker columns, absent from its LIBSVM version)."""
    opts = uri.option_dict
    unknown = set(opts) - OPTIONS
    if unknown:
        raise DataError(f"Unknown option {sorted(unknown)[0]!r} in {str(uri)!r}.",
                        "openml: URIs accept target=, positive=, drop=.")
    did = parse_id(uri)
    root = openml_cache_root()
    X, y, target, name, downloaded = fetch(did, root, str(opts["target"]) if "target" in opts else None)
    X = X.reset_index(drop=True)
    X.columns = [str(c) for c in X.columns]
    drop = [c for c in str(opts.get("drop", "")).split(";") if c]
    missing = [c for c in drop if c not in X.columns]
    if missing:
        raise DataError(f"Cannot drop column {missing[0]!r}: OpenML dataset {did} has no such feature.",
                        f"Its features are: {', '.join(map(str, X.columns[:20]))}.")
    X = X.drop(columns=drop)
    labels = y.astype(object).where(y.notna(), None).reset_index(drop=True)
    codes, classes = encode_labels(labels, str(uri), opts.get("positive"))
    meta: dict[str, Any] = {"source": "openml", "openml_id": did, "target": target,
                            "n_rows": len(codes), "downloaded": bool(downloaded)}
    return Dataset(name, str(uri), _plain_dtypes(X), np.asarray(codes), classes, meta)


def _plain_dtypes(X: pd.DataFrame) -> pd.DataFrame:
    """Nominal features arrive as pandas categoricals: keep them categorical but with string categories."""
    out = X.copy()
    for c in out.columns:
        if isinstance(out[c].dtype, pd.CategoricalDtype):
            out[c] = out[c].astype(object).where(out[c].notna(), None).astype("string").astype("category")
    return out


SOURCES.register("openml", load_openml, cached=True, description="An OpenML dataset by id (offline from a cache)",
                 example="openml:310")
