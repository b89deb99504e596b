"""Fabricate result directories for tests: a (dataset × loss × seed) array of values → Parquet fragments."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from lossbench.store import ResultStore


def make_rows(
    values: np.ndarray,
    datasets: Sequence[str] | None = None,
    losses: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    metric: str = "auroc",
    higher_is_better: bool = True,
    status: np.ndarray | None = None,
    suite_version: str = "1",
    loss_version: str = "1",
    data_hash: str = "h",
    wall_s: np.ndarray | None = None,
    extra: dict[str, np.ndarray] | None = None,
    suite: str = "smoke",
    config: dict[str, Any] | None = None,
    protocol: str | None = None,
) -> list[dict[str, Any]]:
    """One trial row per cell of ``values`` (shape datasets × losses × seeds).

    ``config`` (JSON-able) sets the ``config`` column and a ``config_hash`` of it; ``protocol`` adds the
    ``protocol`` column (rows without it are protocol "1"). Trial ids include the suite and configuration
    when they are not the defaults, so two sets never share an id.
    """
    config_hash = "c" if config is None else hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:8]
    prefix = "" if suite == "smoke" and config is None and protocol is None else f"{suite}|{config_hash}|{protocol}|"
    nd, nl, ns = values.shape
    datasets = list(datasets or [f"d{i}" for i in range(nd)])
    losses = list(losses or [f"l{i}" for i in range(nl)])
    seeds = list(seeds if seeds is not None else range(ns))
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rows = []
    for i, d in enumerate(datasets):
        for j, loss in enumerate(losses):
            for k, s in enumerate(seeds):
                st = "ok" if status is None else str(status[i, j, k])
                row: dict[str, Any] = {
                    "trial_id": f"{prefix}{d}|{loss}|{s}",
                    "run_id": "r",
                    "attempt": 1,
                    "suite": suite,
                    "suite_version": suite_version,
                    "task": "binary",
                    "dataset": d,
                    "data_hash": f"{data_hash}-{d}",
                    "loss": loss,
                    "loss_version": loss_version,
                    "seed": int(s),
                    "config_hash": config_hash,
                    "config": None if config is None else json.dumps(config, sort_keys=True),
                    "status": st,
                    "metric": metric,
                    "value": float(values[i, j, k]) if st == "ok" else None,
                    "higher_is_better": higher_is_better,
                    "eval_split": "test",
                    "wall_s": float(wall_s[i, j, k]) if wall_s is not None else 1.0 + j,
                    "train_s": 0.5,
                    "peak_rss_mb": 100.0,
                    "started_at": start,
                    "ended_at": start + timedelta(seconds=1),
                    f"m_{metric}": float(values[i, j, k]) if st == "ok" else None,
                }
                if protocol is not None:
                    row["protocol"] = protocol
                for name, arr in (extra or {}).items():
                    row[f"m_{name}"] = float(arr[i, j, k])
                rows.append(row)
    return rows


def write_results(root: Path, values: np.ndarray, curves: bool = False, **kwargs: Any) -> Path:
    """Write a results directory holding one fragment with all the rows."""
    store = ResultStore(root)
    store.open_for_writing()
    rows = make_rows(values, **kwargs)
    curve_rows = []
    if curves:
        for r in rows:
            for step in range(5):
                curve_rows.append(
                    {
                        "trial_id": r["trial_id"],
                        "split": "val",
                        "metric": r["metric"],
                        "step": step,
                        "value": (r["value"] or 0.5) * (1 - 0.5 ** (step + 1)),
                    }
                )
    store.append(rows, curve_rows)
    store.record_run({"run_id": "r"})  # the manifest, as a run leaves it
    return root


def noisy(
    shape: tuple[int, int, int],
    base: float = 0.8,
    sd: float = 0.01,
    seed: int = 0,
    shift: Sequence[float] | None = None,
    seed_sd: float = 0.02,
) -> np.ndarray:
    """Values with a per-(dataset, seed) common component (what pairing cancels) plus per-trial noise."""
    rng = np.random.default_rng(seed)
    nd, _, ns = shape
    ds = rng.uniform(-0.1, 0.1, size=(nd, 1, 1))
    common = rng.normal(0, seed_sd, size=(nd, 1, ns))
    vals = base + ds + common + rng.normal(0, sd, size=shape)
    if shift is not None:
        vals = vals + np.asarray(shift, dtype=float)[None, :, None]
    return vals


def write_rows(root: Path, rows: list[dict[str, Any]], name: str = "part-test-0.parquet") -> Path:
    """Write ``rows`` as one trials fragment of a results folder; text columns the schema lacks (``protocol``,
    until the schema has it) stay text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lossbench.store import rows_to_table

    text = sorted({k for r in rows for k, v in r.items() if isinstance(v, str)} - set(rows_to_table(rows[:0]).column_names))
    table = rows_to_table([{k: v for k, v in r.items() if k not in text} for r in rows])
    for col in text:
        table = table.append_column(col, pa.array([r.get(col) for r in rows], pa.string()))
    store = ResultStore(root)
    store.open_for_writing()
    pq.write_table(table, store.trials_dir / name)
    return root
