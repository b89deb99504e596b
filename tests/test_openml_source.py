"""openml: loads by id from a cache copy, offline, and never damages the user's cache."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from lossbench.cli.app import app
from lossbench.errors import DataError, DataUnavailable
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


def test_a_suite_runs_the_datasets_the_cache_holds(openml_cache: Path, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    suite = tmp_path / "s.toml"
    suite.write_text('name = "s"\nversion = "1"\ntask = "classification"\n'
                     'datasets = ["openml:99999999", "openml:1068"]\nlosses = ["ce"]\nseeds = 1\n'
                     'primary_metric = "accuracy"\n[model]\nhidden = [8]\n[training]\nepochs = 1\n')
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", "--suite", str(suite), "--openml-cache", str(openml_cache),
                                      "--out", str(out), "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    skipped = [line for line in result.output.splitlines() if "skipped openml:99999999" in line]
    assert len(skipped) == 1 and "not in the OpenML cache" in skipped[0]
    trials = pd.read_parquet(out / "trials")
    assert list(trials["dataset"]) == ["openml:1068"] and list(trials["status"]) == ["ok"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert list(manifest["runs"][-1]["unavailable"]) == ["openml:99999999"]
    # an id the user names is not skipped: it is an error (exit 2)
    named = CliRunner().invoke(app, ["run", "--suite", str(suite), "--openml-cache", str(openml_cache),
                                     "--dataset", "openml:99999999", "--out", str(tmp_path / "o2"), "-q"])
    assert named.exit_code == 2 and "99999999" in named.output and not (tmp_path / "o2").exists()


def test_a_suite_none_of_whose_datasets_is_available_is_an_error(openml_cache: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from lossbench.runner import resolve_datasets
    from lossbench.suite import parse_suite

    monkeypatch.setenv("OPENML_CACHE_DIR", str(openml_cache))
    suite = parse_suite({"name": "s", "version": "1", "task": "classification", "datasets": ["openml:99999999"],
                         "losses": ["ce"], "primary_metric": "accuracy"})
    with pytest.raises(DataUnavailable, match="None of the 1 datasets"):
        resolve_datasets(suite, None)


def test_drop_option_removes_feature_columns(openml_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENML_CACHE_DIR", str(openml_cache))
    full = load_dataset("openml:1068")
    dropped = load_dataset(f"openml:1068#drop={full.X.columns[0]};{full.X.columns[2]}")
    assert list(dropped.X.columns) == [c for i, c in enumerate(full.X.columns) if i not in (0, 2)]
    with pytest.raises(DataError, match="no such feature"):
        load_dataset("openml:1068#drop=nope")
