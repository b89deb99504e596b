"""gate and calibrate on synthetic result sets with planted effects."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from lossbench.cli.gate import calibrate_command, gate_command
from lossbench.errors import IncomparableError
from lossbench.gate import calibrate, run_gate
from lossbench.schema import METADATA_KEY
from lossbench.store import rows_to_table
from tests.resultgen import make_rows, noisy, write_results

LOSSES = ["ce", "focal", "poly"]
SHAPE = (8, 3, 10)


def app() -> typer.Typer:
    a = typer.Typer()
    a.command("gate")(gate_command)
    a.command("calibrate")(calibrate_command)
    return a


def candidate(base: np.ndarray, shift=(0.0, 0.0, 0.0), sd: float = 0.003, seed: int = 2) -> np.ndarray:
    """Same seeds as the baseline (shared per-seed component) plus fresh trial noise and a planted shift."""
    rng = np.random.default_rng(seed)
    return base + rng.normal(0, sd, size=base.shape) + np.asarray(shift)[None, :, None]


@pytest.fixture
def base(tmp_path):
    values = noisy(SHAPE, seed=1, sd=0.003)
    write_results(tmp_path / "base", values, losses=LOSSES)
    return values


def gate_cli(tmp_path, *extra: str):
    args = ["gate", "-b", str(tmp_path / "base"), "-c", str(tmp_path / "cand"), *extra]
    return CliRunner().invoke(app(), args)


def test_pure_noise_passes(tmp_path, base):
    write_results(tmp_path / "cand", candidate(base), losses=LOSSES)
    res = run_gate([tmp_path / "base"], [tmp_path / "cand"])
    assert res.outcome == "PASS" and res.exit_code == 0
    assert set(res.cells["verdict"]) == {"PASS"} and len(res.cells) == 24
    r = gate_cli(tmp_path, "--json", str(tmp_path / "v.json"), "--github-summary", str(tmp_path / "s.md"))
    assert r.exit_code == 0, r.output
    verdict = json.loads((tmp_path / "v.json").read_text())
    assert verdict["outcome"] == "PASS" and verdict["counts"] == {"PASS": 24}
    assert "lossbench gate: PASS" in (tmp_path / "s.md").read_text()


def test_planted_regression_exits_1(tmp_path, base):
    write_results(tmp_path / "cand", candidate(base, shift=(0, -0.05, 0)), losses=LOSSES)
    res = run_gate([tmp_path / "base"], [tmp_path / "cand"])
    assert res.outcome == "REGRESSION"
    regressed = res.cells[res.cells["verdict"] == "REGRESSION"]
    assert set(regressed["loss"]) == {"focal"} and len(regressed) == 8
    assert res.suite.set_index("loss").loc["focal", "verdict"] == "REGRESSION"
    assert gate_cli(tmp_path).exit_code == 1


def test_small_spread_regression_caught_at_suite_level(tmp_path, base):
    # −0.8 δ everywhere: no single cell is confidently beyond δ, but the suite-level check is
    write_results(tmp_path / "cand", candidate(base, shift=(0, -0.008, 0), sd=0.01), losses=LOSSES)
    res = run_gate([tmp_path / "base"], [tmp_path / "cand"])
    assert "REGRESSION" not in set(res.cells["verdict"])
    assert res.suite.set_index("loss").loc["focal", "verdict"] == "REGRESSION" and res.exit_code == 1


def test_small_noisy_shift_is_inconclusive(tmp_path):
    shape = (4, 2, 10)  # 4 datasets: the suite-level one-sided Wilcoxon cannot reach p < 0.05
    values = noisy(shape, seed=3, sd=0.003)
    write_results(tmp_path / "base", values, losses=["ce", "focal"])
    rng = np.random.default_rng(4)
    write_results(tmp_path / "cand", values - 0.004 + rng.normal(0, 0.01, shape), losses=["ce", "focal"])
    res = run_gate([tmp_path / "base"], [tmp_path / "cand"])
    assert res.outcome == "INCONCLUSIVE" and res.exit_code == 0
    assert gate_cli(tmp_path).exit_code == 0
    assert gate_cli(tmp_path, "--strict").exit_code == 5


def test_suite_version_mismatch_exits_3(tmp_path, base):
    write_results(tmp_path / "cand", base, losses=LOSSES, suite_version="2")
    with pytest.raises(IncomparableError, match="suite_version"):
        run_gate([tmp_path / "base"], [tmp_path / "cand"])
    r = gate_cli(tmp_path, "--json", str(tmp_path / "v.json"))
    assert r.exit_code == 3
    assert json.loads((tmp_path / "v.json").read_text())["outcome"] == "INCOMPARABLE"


def test_loss_version_and_data_hash_mismatch_exit_3(tmp_path, base):
    write_results(tmp_path / "cand", base, losses=LOSSES, loss_version="2")
    assert gate_cli(tmp_path).exit_code == 3
    write_results(tmp_path / "cand2", base, losses=LOSSES, data_hash="other")
    with pytest.raises(IncomparableError, match="data_hash"):
        run_gate([tmp_path / "base"], [tmp_path / "cand2"])


def test_schema_version_mismatch_exits_3(tmp_path, base):
    (tmp_path / "cand").mkdir()
    table = rows_to_table(make_rows(base, losses=LOSSES))
    table = table.replace_schema_metadata({METADATA_KEY: b"99"})
    pq.write_table(table, tmp_path / "cand" / "old.parquet")
    r = gate_cli(tmp_path)
    assert r.exit_code == 3 and "schema version 99" in r.output


def test_missing_cells_exit_3_unless_allowed(tmp_path, base):
    rows = [r for r in make_rows(base, losses=LOSSES) if r["seed"] != 9]
    from lossbench.store import ResultStore

    store = ResultStore(tmp_path / "cand")
    store.open_for_writing()
    store.append(rows)
    assert gate_cli(tmp_path).exit_code == 3
    assert gate_cli(tmp_path, "--max-missing", "24").exit_code == 0


def test_all_candidate_trials_failed_exits_4(tmp_path, base):
    status = np.full(SHAPE, "oom", dtype=object)
    write_results(tmp_path / "cand", base, losses=LOSSES, status=status)
    res = run_gate([tmp_path / "base"], [tmp_path / "cand"])
    assert res.outcome == "INFRASTRUCTURE_FAILURE" and res.exit_code == 4
    assert len(res.cells) == 24 and set(res.cells["verdict"]) == {"FAILED"}  # every cell still shown
    r = gate_cli(tmp_path, "--json", str(tmp_path / "v.json"))
    assert r.exit_code == 4
    assert json.loads((tmp_path / "v.json").read_text())["outcome"] == "INFRASTRUCTURE_FAILURE"


def test_most_candidate_trials_timed_out_exits_4_and_nothing_disappears(tmp_path):
    # 32 of 36 candidate trials timed out: this printed INCONCLUSIVE (exit 0), and poly vanished
    shape = (3, 3, 4)
    values = noisy(shape, seed=5, sd=0.003)
    write_results(tmp_path / "base", values, losses=LOSSES)
    status = np.full(shape, "timeout", dtype=object)
    status[0, 0, :] = "ok"
    write_results(tmp_path / "cand", candidate(values), losses=LOSSES, status=status)
    res = run_gate([tmp_path / "base"], [tmp_path / "cand"])
    assert res.exit_code == 4 and res.n_candidate_failed == 32 and res.n_candidate_trials == 36
    assert len(res.cells) == 9 and set(res.cells["loss"]) == set(LOSSES)
    assert (res.cells["verdict"] == "FAILED").sum() == 8
    assert "FAILED" in set(res.suite.set_index("loss").loc[["focal", "poly"], "verdict"])
    r = gate_cli(tmp_path)
    assert r.exit_code == 4 and "poly" in r.output and "32 of 36 candidate trials failed" in r.output


def test_failures_within_max_failed_are_judged_on_fewer_seeds(tmp_path, base):
    status = np.full(SHAPE, "ok", dtype=object)
    status[0, 0, :2] = "crashed"
    write_results(tmp_path / "cand", candidate(base), losses=LOSSES, status=status)
    assert gate_cli(tmp_path).exit_code == 4  # --max-failed defaults to 0
    res = run_gate([tmp_path / "base"], [tmp_path / "cand"], max_failed=2)
    assert res.exit_code == 0
    cell = res.cells.set_index(["dataset", "loss"]).loc[("d0", "ce")]
    assert cell["n"] == 8 and cell["n_baseline"] == 10 and cell["n_failed"] == 2
    from lossbench.report import tables

    rows = tables.gate_cell_rows(res).set_index(["dataset", "loss"])
    assert rows.loc[("d0", "ce"), "seeds"] == "8 of 10" and rows.loc[("d1", "ce"), "seeds"] == "10"
    assert gate_cli(tmp_path, "--max-failed", "2").exit_code == 0


def test_the_same_results_twice_are_refused(tmp_path, base):
    r = CliRunner().invoke(app(), ["gate", "-b", str(tmp_path / "base"), "-c", str(tmp_path / "base")])
    assert r.exit_code == 2 and "same result files" in r.output
    r = CliRunner().invoke(app(), ["calibrate", str(tmp_path / "base"), str(tmp_path / "base" / "trials")])
    assert r.exit_code == 2 and "same result files" in r.output and "--seed-offset" in r.output


def test_calibrate_refuses_two_identical_runs_on_the_same_seeds(tmp_path, base):
    write_results(tmp_path / "copy", base, losses=LOSSES)  # a deterministic run repeated: bit-identical
    r = CliRunner().invoke(app(), ["calibrate", str(tmp_path / "base"), str(tmp_path / "copy")])
    assert r.exit_code == 3 and "identical values" in r.output and "--seed-offset" in r.output
    # other seeds of the same code: paired by seed order, σ_AA measured
    write_results(tmp_path / "other", candidate(base, sd=0.004), losses=LOSSES, seeds=range(10, 20))
    cal = calibrate([tmp_path / "base"], [tmp_path / "other"])
    assert cal["metrics"]["auroc"]["sigma_aa"] > 0 and not cal["metrics"]["auroc"]["same_seeds"]


def test_p_better_has_a_credible_interval(tmp_path, base):
    write_results(tmp_path / "cand", candidate(base), losses=LOSSES)
    res = run_gate([tmp_path / "base"], [tmp_path / "cand"])
    cells = res.cells
    assert ((cells["p_better_low"] < cells["p_better"]) & (cells["p_better"] < cells["p_better_high"])).all()
    assert (cells["p_better_high"] < 1).all()


def test_partial_failures_are_counted_and_diverged_counts_as_worst(tmp_path, base):
    status = np.full(SHAPE, "ok", dtype=object)
    status[0, 0, :3] = "timeout"
    status[1, 2, :] = "diverged"
    write_results(tmp_path / "cand", candidate(base), losses=LOSSES, status=status)
    res = run_gate([tmp_path / "base"], [tmp_path / "cand"])
    assert res.n_candidate_failed == 3
    res = run_gate([tmp_path / "base"], [tmp_path / "cand"], max_failed=3)
    cells = res.cells.set_index(["dataset", "loss"])
    assert cells.loc[("d0", "ce"), "n"] == 7 and cells.loc[("d0", "ce"), "n_failed"] == 3
    assert cells.loc[("d1", "poly"), "verdict"] == "REGRESSION" and res.exit_code == 1


def test_an_infinite_candidate_value_counts_as_the_worst_finite_value_seen(tmp_path, base):
    values = candidate(base)
    values[1, 2, :] = -np.inf  # higher is better: -inf as "the worst value seen" made the cell inconclusive
    write_results(tmp_path / "cand", values, losses=LOSSES)
    res = run_gate([tmp_path / "base"], [tmp_path / "cand"])
    assert res.cells.set_index(["dataset", "loss"]).loc[("d1", "poly"), "verdict"] == "REGRESSION"
    assert res.exit_code == 1


def test_exact_mode(tmp_path, base):
    write_results(tmp_path / "cand", base, losses=LOSSES)
    assert run_gate([tmp_path / "base"], [tmp_path / "cand"], mode="exact").exit_code == 0
    changed = base.copy()
    changed[2, 1, 4] += 1e-4
    write_results(tmp_path / "cand2", changed, losses=LOSSES)
    res = run_gate([tmp_path / "base"], [tmp_path / "cand2"], mode="exact")
    assert res.outcome == "CHANGED" and res.exit_code == 1
    assert res.cells.set_index(["dataset", "loss"]).loc[("d2", "focal"), "n_changed"] == 1
    res = run_gate([tmp_path / "base"], [tmp_path / "cand2"], mode="exact", atol=1e-3)
    assert res.exit_code == 0


def test_calibrate_and_gate_with_calibration(tmp_path, base):
    write_results(tmp_path / "cand", candidate(base, sd=0.004), losses=LOSSES)
    cal = calibrate([tmp_path / "base"], [tmp_path / "cand"])
    sigma = cal["metrics"]["auroc"]["sigma_aa"]
    # base has 0.003 trial noise, the candidate adds 0.004: the difference has sd 0.004 (+ sampling error)
    assert 0.003 < sigma < 0.0055
    r = CliRunner().invoke(
        app(),
        ["calibrate", str(tmp_path / "base"), str(tmp_path / "cand"), "--out", str(tmp_path / "cal.json")],
    )
    assert r.exit_code == 0, r.output
    data = json.loads((tmp_path / "cal.json").read_text())
    assert data["metrics"]["auroc"]["sigma_aa"] == pytest.approx(sigma)
    res = run_gate([tmp_path / "base"], [tmp_path / "cand"], calibration=tmp_path / "cal.json")
    assert res.margin_source == "calibration"
    assert res.cells["delta"].iloc[0] == pytest.approx(max(0.005, 3 * sigma))


def test_help_documents_exit_codes():
    out = CliRunner().invoke(app(), ["gate", "--help"]).output
    assert "Exit codes" in out and "5 inconclusive" in out and "--max-failed" in out
    assert "Example" in CliRunner().invoke(app(), ["calibrate", "--help"]).output
