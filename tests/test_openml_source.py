"""openml: loads by id from a cache copy, offline, and never damages the user's cache."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from lossbench.errors import DataError
from lossbench.sources import load_dataset
from lossbench.sources.cache import entry_paths


def test_loads_offline_from_cache_copy(openml_cache: Path, monkeypatch: pytest.MonkeyPatch,
        snapshot: Callable[[Path], dict[str, bytes]]) -> None:
    monkeypatch.setenv("OPENML_CACHE_DIR", str(openml_cache))
    before = snapshot(openml_cache)
    ds = load_dataset("openml:1068")
    assert ds.name == "pc1"
    assert ds.X.shape == (1109, 21)
    assert ds.classes == ["False", "True"]  # minority (defective modules) is the positive class 1
    assert int(ds.y.sum()) == 77
    assert ds.meta["openml_id"] == 1068 and ds.meta["target"] == "Class"
    assert snapshot(openml_cache) == before, "openml must not write pickles into (or delete from) the user's cache"
    # the local Parquet cache now holds it, with the same hash
    data_path, meta_path = entry_paths("openml:1068")
    assert data_path.is_file() and meta_path.is_file()
    assert load_dataset("openml:1068").content_hash == ds.content_hash


def test_read_only_cache_works(openml_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENML_CACHE_DIR", str(openml_cache))
    monkeypatch.setenv("LOSSBENCH_NO_DATA_CACHE", "1")
    for p in openml_cache.rglob("*"):
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        ds = load_dataset("openml:1050")
    finally:
        for p in openml_cache.rglob("*"):
            p.chmod(0o755 if p.is_dir() else 0o644)
    assert ds.name == "pc3" and len(ds.y) == 1563


def test_missing_dataset_fails_fast_naming_id_and_path(openml_cache: Path, monkeypatch: pytest.MonkeyPatch,
        snapshot: Callable[[Path], dict[str, bytes]]) -> None:
    monkeypatch.setenv("OPENML_CACHE_DIR", str(openml_cache))
    before = snapshot(openml_cache)
    t0 = time.perf_counter()
    with pytest.raises(DataError) as err:
        load_dataset("openml:99999999")
    assert time.perf_counter() - t0 < 15
    msg = str(err.value)
    assert "99999999" in msg and str(openml_cache) in msg and "--openml-cache" in msg
    assert snapshot(openml_cache) == before


def test_incomplete_entry_is_not_deleted(openml_cache: Path, monkeypatch: pytest.MonkeyPatch,
                                         snapshot: Callable[[Path], dict[str, bytes]]) -> None:
    """openml-python rmtree()s a dataset folder when loading fails; the user's folder must survive."""
    monkeypatch.setenv("OPENML_CACHE_DIR", str(openml_cache))
    folder = openml_cache / "org" / "openml" / "www" / "datasets" / "1068"
    (folder / "dataset.arff").unlink()
    before = snapshot(openml_cache)
    with pytest.raises(DataError, match="1068"):
        load_dataset("openml:1068")
    assert snapshot(openml_cache) == before
    assert (folder / "description.xml").is_file()


def test_names_are_rejected_with_a_hint() -> None:
    with pytest.raises(DataError, match="numeric id"):
        load_dataset("openml:mammography")


def test_positive_option(openml_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENML_CACHE_DIR", str(openml_cache))
    ds = load_dataset("openml:1068#positive=False")
    assert ds.classes == ["not False", "False"]
    assert int(np.sum(ds.y)) == 1032


def test_target_option(openml_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENML_CACHE_DIR", str(openml_cache))
    with pytest.raises(DataError, match="no column 'nope'"):
        load_dataset("openml:1068#target=nope")
