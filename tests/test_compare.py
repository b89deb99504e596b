"""compare: loading, metric choice, pairing and missing cells, statistics per dataset and across."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from lossbench.cli.compare import compare_command
from lossbench.compare import compare, load_trials, resolve_inputs
from lossbench.errors import IncomparableError, ResultsError, UserError
from lossbench.report import tables
from tests.resultgen import make_rows, noisy, write_results

LOSSES = ["ce", "focal", "poly"]


@pytest.fixture
def results(tmp_path):
    values = noisy((8, 3, 10), shift=[0.0, 0.03, -0.001])
    status = np.full(values.shape, "ok", dtype=object)
    status[0, 1, 3] = "failed"
    extra = {"brier": 1 - values}
    return write_results(tmp_path / "res", values, losses=LOSSES, status=status, extra=extra), values


def test_loads_directories_files_and_globs(results, tmp_path):
    root, _ = results
    files = resolve_inputs([root])
    assert files and all(f.suffix == ".parquet" for f in files)
    assert len(load_trials([str(root / "trials" / "*.parquet")])) == 240
    assert len(load_trials([files[0], root])) == 240  # de-duplicated by trial_id
    with pytest.raises(ResultsError):
        resolve_inputs([tmp_path / "nope"])
    with pytest.raises(ResultsError):
        resolve_inputs([str(tmp_path / "nothing-*.parquet")])


def test_default_metric_baseline_and_drop(results):
    root, _ = results
    res = compare(load_trials([root]))
    assert res.metric.name == "auroc" and res.metric.higher_is_better and res.metric.bounded
    assert res.baseline == "ce" and res.losses[0] == "ce"
    # the failed focal trial on d0/seed 3 drops that seed for all three losses
    assert len(res.missing) == 1 and res.missing.iloc[0]["reason"] == "failed"
    assert res.n_dropped == 2
    d0 = res.per_dataset[res.per_dataset["dataset"] == "d0"]
    assert set(d0["n"]) == {9} and set(d0["n_dropped"]) == {1}
    top = res.summary.iloc[0]
    assert top["loss"] == "focal" and top["avg_rank"] == 1.0 and top["wins"] == 8


def test_impute_worst_and_error(results):
    root, values = results
    trials = load_trials([root])
    res = compare(trials, on_missing="impute-worst")
    assert res.n_imputed == 1 and res.n_dropped == 0
    cell = res.cells[
        (res.cells["dataset"] == "d0") & (res.cells["loss"] == "focal") & (res.cells["seed"] == 3)
    ]
    assert bool(cell["imputed"].iloc[0])
    ok = values[0].copy()
    ok[1, 3] = np.nan
    assert cell["value"].iloc[0] == pytest.approx(np.nanmin(ok))
    with pytest.raises(IncomparableError) as exc:
        compare(trials, on_missing="error")
    assert "d0/focal/seed 3" in str(exc.value) and exc.value.exit_code == 3


def test_absent_cells_are_reported(tmp_path):
    values = noisy((3, 2, 6))
    rows = [
        r for r in make_rows(values, losses=["ce", "focal"]) if not (r["loss"] == "focal" and r["seed"] == 5)
    ]
    from lossbench.store import ResultStore

    store = ResultStore(tmp_path / "r")
    store.open_for_writing()
    store.append(rows)
    res = compare(load_trials([tmp_path / "r"]))
    assert len(res.missing) == 3 and set(res.missing["reason"]) == {"absent"}
    assert set(res.missing["loss"]) == {"focal"} and set(res.per_dataset["n"]) == {5}


def test_paired_difference_per_dataset(results):
    root, values = results
    res = compare(load_trials([root]))
    row = res.per_dataset[(res.per_dataset["dataset"] == "d3") & (res.per_dataset["loss"] == "focal")].iloc[0]
    d = values[3, 1] - values[3, 0]
    assert row["diff"] == pytest.approx(d.mean())
    assert row["diff_low"] < row["diff"] < row["diff_high"]
    assert row["p_better"] == pytest.approx(np.mean(d > 0))
    assert -1 <= row["cliffs_delta"] <= 1 and row["ci_method"] == "bca"


def test_metric_option_lower_is_better_and_unknown(results):
    root, _ = results
    trials = load_trials([root])
    res = compare(trials, metric="brier", baseline="poly")
    assert not res.metric.higher_is_better and res.baseline == "poly"
    assert res.summary.iloc[0]["loss"] == "focal"  # lowest brier = 1 − highest auroc
    with pytest.raises(UserError):
        compare(trials, metric="nope")
    with pytest.raises(UserError):
        compare(trials, baseline="nope")


def test_friedman_and_pairwise(results):
    root, _ = results
    res = compare(load_trials([root]))
    assert res.friedman is not None and res.friedman.p_chi2 < 0.01
    pw = res.pairwise.set_index(["loss_a", "loss_b"])
    assert pw.loc[("ce", "focal"), "p_holm"] < 0.05


def test_renderers(results):
    root, _ = results
    res = compare(load_trials([root]))
    data = json.loads(tables.compare_to_json(res))
    assert data["metric"] == "auroc" and data["n_dropped"] == 2 and len(data["per_dataset"]) == 24
    md = tables.compare_to_markdown(res)
    assert "| focal |" in md and "trials dropped" in md
    csv = tables.compare_to_csv(res)
    assert csv.splitlines()[0].startswith("dataset,loss,n,mean")
    assert len(tables.compare_tables(res)) == 3


def test_cli(results, tmp_path):
    root, _ = results
    app = typer.Typer()
    app.command("compare")(compare_command)
    app.command("noop")(lambda: None)
    runner = CliRunner()
    r = runner.invoke(app, ["compare", str(root), "--format", "json", "--out", str(tmp_path / "c.json")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "c.json").read_text())["baseline"] == "ce"
    r = runner.invoke(app, ["compare", str(root), "--on-missing", "error"])
    assert r.exit_code == 3 and "missing" in r.output
    r = runner.invoke(app, ["compare", str(root), "--on-missing", "bogus"])
    assert r.exit_code == 2
    r = runner.invoke(app, ["compare", str(root), "--metric", "nope"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    r = runner.invoke(app, ["compare", "--help"])
    assert "Exit codes" in r.output and "Example" in r.output
