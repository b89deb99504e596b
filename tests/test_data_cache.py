"""The local Parquet cache of loaded datasets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from lossbench.sources.base import Dataset
from lossbench.sources.cache import cached_load, entry_paths


def make_dataset() -> Dataset:
    X = pd.DataFrame({"a": [1.0, np.nan, 3.0, 4.0], "colour": pd.Categorical(["r", "g", None, "r"]),
                      "n": [1, 2, 3, 4]})
    return Dataset("toy", "openml:1", X, np.array([0, 1, 0, 1]), ["no", "yes"], {"source": "test"})


def test_miss_then_hit_keeps_the_hash(tmp_path: Path) -> None:
    calls = []

    def load() -> Dataset:
        calls.append(1)
        return make_dataset()

    first = cached_load("openml:1", load, tmp_path)
    second = cached_load("openml:1", load, tmp_path)
    assert len(calls) == 1
    assert first.content_hash == second.content_hash
    assert second.classes == ["no", "yes"] and second.meta == {"source": "test"}
    data_path, meta_path = entry_paths("openml:1", tmp_path)
    meta = json.loads(meta_path.read_text())
    assert meta["content_hash"] == second.content_hash and meta["uri"] == "openml:1"
    assert data_path.suffix == ".parquet"


def test_damaged_entry_is_reloaded(tmp_path: Path) -> None:
    cached_load("openml:1", make_dataset, tmp_path)
    data_path, _ = entry_paths("openml:1", tmp_path)
    data_path.write_bytes(b"not parquet")
    calls = []

    def load() -> Dataset:
        calls.append(1)
        return make_dataset()

    ds = cached_load("openml:1", load, tmp_path)
    assert calls == [1] and len(ds.y) == 4


def test_unwritable_cache_still_loads(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a file where the cache folder should be
    ds = cached_load("openml:1", make_dataset, blocker)
    assert len(ds.y) == 4
