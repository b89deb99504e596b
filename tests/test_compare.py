"""compare: loading, metric choice, pairing and missing cells, statistics per dataset and across."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from lossbench.cli.compare import compare_command
from lossbench.compare import compare
from lossbench.errors import IncomparableError, ResultsError, UserError
from lossbench.report import tables
from lossbench.results import load_trials, resolve_inputs
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
    assert row["p_better"] == pytest.approx((np.sum(d > 0) + 1) / (len(d) + 2))  # Beta(1, 1) posterior mean
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


def small(values: np.ndarray, tmp_path, metric: str = "auroc", **kw):  # type: ignore[no-untyped-def]
    return compare(load_trials([write_results(tmp_path / "small", values, losses=["ce", "focal"], metric=metric, **kw)]))


def test_intervals_stay_inside_the_metric_range(tmp_path):
    # 3 seeds near the top of AUROC: the t interval used to end at 1.0018
    values = np.array([[[0.98, 0.995, 1.0], [0.97, 0.99, 1.0]]])
    res = small(values, tmp_path)
    assert (res.per_dataset["ci_high"] <= 1.0).all() and (res.per_dataset["ci_low"] >= 0).all()
    assert res.per_dataset.loc[0, "ci_high"] == 1.0
    # MCC lies in [-1, 1], not [0, 1]: its lower bound may be negative but not below −1
    mcc = np.array([[[-0.9, -0.2, -0.99], [0.1, 0.2, 0.3]]])
    res = small(mcc, tmp_path / "m", metric="mcc")
    assert res.metric.limits == (-1.0, 1.0)
    ce = res.per_dataset.set_index("loss").loc["ce"]
    assert ce["ci_low"] == -1.0 and ce["ci_high"] > -0.2
    # Δ of an MCC lies in [−2, 2]
    assert (res.per_dataset["diff_high"].dropna() <= 2.0).all()


def test_too_few_seeds_for_an_interval_says_so(tmp_path):
    values = np.array([[[0.1, 0.2333], [0.5, 0.9]]])  # F1 from 2 seeds: 0.1667 ± 1.1403 before
    res = small(values, tmp_path, metric="f1")
    assert set(res.per_dataset["ci_method"]) == {"none"} and res.per_dataset["ci_low"].isna().all()
    rows = tables.compare_dataset_rows(res)
    assert rows.loc[0, "95% CI"] == "none (n=2 < 3)" and rows.loc[1, "Δ CI"] == "none (n=2 < 3)"
    assert any("fewer than 3 seeds" in n for n in res.notes)


def test_p_better_from_three_seeds_is_not_certain(tmp_path):
    values = np.array([[[0.80, 0.81, 0.82], [0.85, 0.86, 0.87]]])  # focal wins all 3 seeds
    res = small(values, tmp_path)
    focal = res.per_dataset.set_index("loss").loc["focal"]
    assert focal["p_better"] == pytest.approx(0.8)  # (3 + 1) / (3 + 2), not 1.00
    assert focal["p_better_low"] == pytest.approx(0.025 ** 0.25)  # Beta(4, 1): quantile q = q^(1/4)
    assert focal["p_better_high"] == pytest.approx(0.975 ** 0.25) and focal["p_better_high"] < 1
    assert focal["wilcoxon_p"] == pytest.approx(0.25)  # the exact floor at n = 3


def test_a_loss_whose_trials_all_failed_stays_in_the_tables(tmp_path):
    values = noisy((3, 3, 4))
    status = np.full(values.shape, "ok", dtype=object)
    status[:, 2, :] = "timeout"
    res = compare(load_trials([write_results(tmp_path / "r", values, losses=LOSSES, status=status)]))
    poly = res.per_dataset[res.per_dataset["loss"] == "poly"]
    assert len(poly) == 3 and set(poly["n"]) == {0} and set(poly["n_not_ok"]) == {4}
    assert set(res.per_dataset.loc[res.per_dataset["loss"] != "poly", "n"]) == {4}  # nothing else dropped
    assert "poly" in list(res.summary["loss"]) and not np.isfinite(res.summary.set_index("loss").loc["poly", "avg_rank"])
    assert "no usable trial" in tables.compare_dataset_rows(res).to_string()
