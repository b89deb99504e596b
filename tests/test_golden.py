"""Golden results: trial ids and result values of a small grid of every task type, pinned.

A refactor must not move a single number. Each suite in ``tests/golden/`` trains in float64 for a few
epochs (so the values do not depend on the CPU's float32 kernels) and its rows are compared with
``tests/golden/golden.json``: the same trial ids, statuses, epochs and metric values.

A change that is meant to move results bumps a version that enters the trial key (a loss's or method's
``version``, a suite's ``version``, or for the whole evaluation ``lossbench.specs.PROTOCOL``) and regenerates
the file on purpose::

    LOSSBENCH_REGEN_GOLDEN=1 python -m pytest tests/test_golden.py
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from lossbench.cli.app import app

GOLDEN = Path(__file__).parent / "golden"
EXPECTED = GOLDEN / "golden.json"
SUITES = sorted(p.stem for p in GOLDEN.glob("*.toml"))
REGENERATE = os.environ.get("LOSSBENCH_REGEN_GOLDEN") == "1"
#: float64 training: only summation order could move a value, and the refactor must not change that either.
RTOL, ATOL = 1e-9, 1e-12
KEPT = ("status", "epochs_run", "best_epoch", "value")


def run_suite(name: str, out: Path, *extra: str) -> pd.DataFrame:
    result = CliRunner().invoke(app, ["run", "--suite", str(GOLDEN / f"{name}.toml"), "--out", str(out), "--quiet",
                                      *extra])
    assert result.exit_code == 0, result.output
    return pd.read_parquet(out / "trials")


def snapshot(trials: pd.DataFrame) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for row in trials.sort_values(["dataset", "loss", "seed"]).to_dict(orient="records"):
        entry = {"dataset": row["dataset"], "loss": row["loss"], "seed": int(row["seed"])}
        for key in KEPT:
            value = row.get(key)
            entry[key] = value.item() if hasattr(value, "item") else value
        for key in sorted(k for k in row if k.startswith("m_")):
            value = row[key]
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                entry[key] = float(value)
        out[str(row["trial_id"])] = entry
    return out


def expected() -> dict[str, Any]:
    return json.loads(EXPECTED.read_text()) if EXPECTED.is_file() else {}


def assert_matches(name: str, got: dict[str, dict[str, Any]]) -> None:
    want = expected().get(name)
    assert want is not None, f"no golden values for {name}: regenerate with LOSSBENCH_REGEN_GOLDEN=1"
    assert sorted(got) == sorted(want), "trial ids changed"
    for trial_id, row in want.items():
        have = got[trial_id]
        assert set(have) == set(row), f"{row['dataset']} {row['loss']} seed {row['seed']}: columns changed"
        for key, value in row.items():
            if isinstance(value, float) and isinstance(have[key], float):
                if math.isnan(value) and math.isnan(have[key]):
                    continue
                assert math.isclose(have[key], value, rel_tol=RTOL, abs_tol=ATOL), (
                    f"{row['dataset']} {row['loss']} seed {row['seed']}: {key} {have[key]!r} != {value!r}")
            else:
                assert have[key] == value, f"{row['dataset']} {row['loss']} seed {row['seed']}: {key}"


@pytest.mark.slow
@pytest.mark.parametrize("name", SUITES)
def test_golden_values(name: str, tmp_path: Path) -> None:
    got = snapshot(run_suite(name, tmp_path / name))
    if REGENERATE:
        data = expected()
        data[name] = got
        EXPECTED.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        return
    assert_matches(name, got)


@pytest.mark.slow
def test_golden_values_trained_one_trial_at_a_time(tmp_path: Path) -> None:
    """``--no-vectorize`` (each trial its own model) gives the values of the default, stacked training."""
    if REGENERATE:
        pytest.skip("regenerating from the default path")
    assert_matches("classification", snapshot(run_suite("classification", tmp_path / "v", "--no-vectorize")))
