from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lossbench.errors import ResultsError
from lossbench.schema import METADATA_KEY, SCHEMA_VERSION
from lossbench.store import ResultStore, read_examples, rows_to_table


def row(trial_id: str, status: str = "ok", value: float = 0.5, ended: str = "2026-01-01") -> dict:
    return {"trial_id": trial_id, "status": status, "value": value, "attempt": 1, "seed": 0,
            "ended_at": pd.Timestamp(ended, tz="UTC"), "m_auroc": value}


def test_fragments_carry_schema_version_and_are_atomic(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "r")
    store.open_for_writing()
    store.append([row("a")], [{"trial_id": "a", "split": "val", "metric": "f1", "step": 0, "value": 0.1}], "run1")
    files = store.fragments()
    assert len(files) == 1
    assert pq.read_schema(files[0]).metadata[METADATA_KEY] == str(SCHEMA_VERSION).encode()
    assert not list((tmp_path / "r").rglob("*.tmp"))
    assert store.read_metrics()["metric"].tolist() == ["f1"]


def test_reading_keeps_the_latest_attempt(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    store.open_for_writing()
    store.append([row("a", "failed", float("nan"), "2026-01-01"), row("b")])
    store.append([row("a", "ok", 0.9, "2026-01-02")])
    trials = store.read_trials().set_index("trial_id")
    assert len(trials) == 2
    assert trials.loc["a", "status"] == "ok" and trials.loc["a", "value"] == 0.9


def test_resume_sets(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    store.open_for_writing()
    store.append([row("a"), row("b", "failed"), row("c", "skipped")])
    assert store.completed() == {"a", "b", "c"}
    assert store.completed("failed") == {"a", "c"}
    assert store.completed("all") == set()


def test_compaction_keeps_every_trial(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    store.open_for_writing()
    for i in range(5):
        store.append([row(f"t{i}")])
    before = store.read_trials()
    store.compact("run")
    assert len(store.fragments()) == 1
    pd.testing.assert_frame_equal(before.sort_values("trial_id").reset_index(drop=True),
                                  store.read_trials().sort_values("trial_id").reset_index(drop=True))


def test_incompatible_schema_directory_is_refused_untouched(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"schema_version": 99, "runs": []}))
    store = ResultStore(tmp_path)
    with pytest.raises(ResultsError, match="schema version 99") as err:
        store.open_for_writing()
    assert err.value.exit_code == 3
    assert json.loads((tmp_path / "manifest.json").read_text())["schema_version"] == 99


def test_foreign_parquet_is_refused(tmp_path: Path) -> None:
    (tmp_path / "trials").mkdir()
    pq.write_table(pa.table({"x": [1]}), tmp_path / "trials" / "part-x.parquet")
    with pytest.raises(ResultsError, match="not a lossbench result file"):
        ResultStore(tmp_path).read_trials()


def test_truncated_fragment_names_the_file(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    store.open_for_writing()
    store.append([row("a")])
    path = store.fragments()[0]
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(ResultsError, match=path.name):
        store.read_trials()


def test_unwritable_out(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(ResultsError, match="is a file"):
        ResultStore(target).open_for_writing()


def test_rows_to_table_types_metric_columns() -> None:
    table = rows_to_table([row("a"), {**row("b"), "m_extra": 1.0}])
    assert table.schema.field("m_extra").type == pa.float64()
    assert table.column("m_extra").to_pylist() == [None, 1.0]


def _examples(value: float) -> dict[str, np.ndarray]:
    return {"image": np.full((2, 1, 4, 4), value, np.float16), "mask": np.zeros((2, 4, 4), np.uint8),
            "proba": np.full((2, 4, 4), value, np.float16), "index": np.arange(2)}


def test_examples_follow_the_latest_attempt(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    store.open_for_writing()
    store.write_examples("a", _examples(0.25))
    store.write_examples("b", None)
    store.append([row("a"), row("b", "failed")])
    assert sorted(p.name for p in store.examples_dir.iterdir()) == ["a.npz"]  # written atomically, no .tmp left
    store.write_examples("a", _examples(0.75))  # rerun: replaced
    store.append([row("a", ended="2026-01-02")])
    assert read_examples(store.examples_path("a"))["proba"].max() == np.float16(0.75)
    store.compact("run")  # one file per trial: compaction leaves examples alone
    assert store.examples_path("a").is_file()
    store.write_examples("a", None)  # a failed rerun has none: the old ones go
    store.append([row("a", "failed", ended="2026-01-03")])
    assert not store.examples_path("a").exists()
    assert store.read_trials().set_index("trial_id").loc["a", "status"] == "failed"


def test_examples_never_leave_the_folder_and_bad_files_are_named(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "r")
    store.open_for_writing()
    (tmp_path / "victim.npz").write_bytes(b"keep")
    store.write_examples("../victim", _examples(0.5))  # not a plain file name: ignored
    store.write_examples("../victim", None)
    assert store.examples_path("../victim") is None and (tmp_path / "victim.npz").read_bytes() == b"keep"
    store.examples_dir.mkdir(exist_ok=True)
    (store.examples_dir / "c.npz").write_bytes(b"not a zip")
    with pytest.raises(ResultsError, match=r"c\.npz"):
        read_examples(store.examples_dir / "c.npz")
