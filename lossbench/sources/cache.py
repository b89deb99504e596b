"""A compact local cache of loaded datasets: one Parquet file plus a metadata JSON per dataset URI.

Parsing an OpenML ARFF file takes seconds; every worker process would otherwise
repeat it. The cache lives in ``$LOSSBENCH_CACHE_DIR`` or ``~/.cache/lossbench``.
An entry is keyed by the canonical URI (and the loader version); its metadata
keeps the content hash, which is checked on every read, so a damaged entry is
reloaded from the source rather than trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from lossbench.sources.base import Dataset

#: Bump when a loader changes what it returns for the same URI: old entries are then ignored.
CACHE_FORMAT = 1


def cache_root() -> Path:
    env = os.environ.get("LOSSBENCH_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lossbench"


def entry_paths(uri: str, root: Path | None = None) -> tuple[Path, Path]:
    key = hashlib.sha256(f"{CACHE_FORMAT}\x1f{uri}".encode()).hexdigest()[:24]
    folder = (root or cache_root()) / "datasets"
    return folder / f"{key}.parquet", folder / f"{key}.json"


def read_entry(uri: str, root: Path | None = None) -> Dataset | None:
    """The cached dataset for ``uri``, or None when absent, unreadable or not matching its recorded hash."""
    data_path, meta_path = entry_paths(uri, root)
    if not (data_path.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        frame = pd.read_parquet(data_path)
        y = frame.pop(meta["label_column"]).to_numpy()
        ds = Dataset(meta["name"], meta["uri"], frame, y, list(meta["classes"]), dict(meta.get("meta", {})))
    except Exception:  # a half-written or foreign file is a cache miss, never an error
        return None
    if meta.get("uri") != uri or ds.content_hash != meta.get("content_hash"):
        return None
    return ds


def write_entry(ds: Dataset, root: Path | None = None) -> Dataset | None:
    """Store ``ds`` and return it as read back (so every process sees identical dtypes and hash); None on failure."""
    data_path, meta_path = entry_paths(ds.uri, root)
    tmp_data: Path | None = None
    label = "__lossbench_label__"
    while label in ds.X.columns:
        label += "_"
    try:
        data_path.parent.mkdir(parents=True, exist_ok=True)
        frame = ds.X.copy()
        frame[label] = ds.y
        # Write to a temporary name and rename: concurrent workers never read a half-written file.
        with tempfile.NamedTemporaryFile(dir=data_path.parent, suffix=".tmp", delete=False) as tmp:
            tmp_data = Path(tmp.name)
        frame.to_parquet(tmp_data, index=False)
        back = pd.read_parquet(tmp_data)
        y = back.pop(label).to_numpy()
        stored = Dataset(ds.name, ds.uri, back, y, list(ds.classes), dict(ds.meta))
        meta: dict[str, Any] = {
            "uri": ds.uri,
            "name": ds.name,
            "classes": list(ds.classes),
            "meta": ds.meta,
            "label_column": label,
            "content_hash": stored.content_hash,
            "n_rows": len(stored.y),
            "format": CACHE_FORMAT,
        }
        os.replace(tmp_data, data_path)
        with tempfile.NamedTemporaryFile("w", dir=meta_path.parent, suffix=".tmp", delete=False, encoding="utf-8") as fh:
            json.dump(meta, fh, indent=1, default=str)
        os.replace(fh.name, meta_path)
        return stored
    except (OSError, ValueError, TypeError, ImportError):
        # An unwritable cache or a frame Parquet cannot hold only costs speed.
        if tmp_data is not None:
            tmp_data.unlink(missing_ok=True)
        return None


def cached_load(uri: str, load: Callable[[], Dataset], root: Path | None = None) -> Dataset:
    """Return the cached dataset for ``uri``, or ``load()`` it and cache it."""
    hit = read_entry(uri, root)
    if hit is not None:
        return hit
    ds = load()
    stored = write_entry(ds, root)
    return stored if stored is not None else ds
