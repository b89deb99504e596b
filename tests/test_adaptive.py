"""`lossbench run --until-conclusive`: which cells get more seeds, what the manifest records, what a kill keeps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from lossbench import sequential as sq
from lossbench.adaptive import Grid, decide_cells, seed_sequence
from lossbench.cli.app import app
from lossbench.store import ResultStore
from lossbench.suite import Suite

runner = CliRunner()
A, B = "synthetic:classification#minority=0.3&n=300", "synthetic:classification#classes=3&minority=0.3&n=200"
DESIGN = sq.Design(start=3, max_seeds=8, margin=0.01, alpha=0.05, cells=2)  # looks at 3, 5, 8


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def grid(tiny_suite: Suite) -> Grid:
    return Grid(tiny_suite, losses=["ce", "focal"], datasets=[A, B], seeds=seed_sequence([0, 1, 2], 8))


def rows(grid: Grid, values: dict[tuple[str, str], list[float | None]]) -> pd.DataFrame:
    """Trial rows for (dataset, loss) → primary value per seed in order; None is a failed trial."""
    out = []
    for (dataset, loss), seq in values.items():
        for seed, value in zip(grid.seeds, seq, strict=False):
            spec = grid.specs[(dataset, loss, seed)]
            out.append({"trial_id": spec.trial_id, "dataset": dataset, "loss": loss, "seed": seed,
                        "status": "failed" if value is None else "ok", "value": value})
    return pd.DataFrame(out)


def test_seeds_continue_the_starting_list() -> None:
    assert seed_sequence([0, 1, 2], 6) == [0, 1, 2, 3, 4, 5]
    assert seed_sequence([10, 11], 4) == [10, 11, 12, 13]
    assert DESIGN.plan() == (3, 5, 8)


def test_each_cell_follows_the_rule_and_only_open_cells_get_seeds(grid: Grid) -> None:
    ce = [0.70, 0.72, 0.71, 0.69, 0.73]
    trials = rows(grid, {
        (A, "ce"): ce[:3],
        (A, "focal"): [v + 0.20 + e for v, e in zip(ce, [0.001, -0.001, 0.0], strict=False)],  # far better
        (B, "ce"): ce[:3],
        (B, "focal"): [v + e for v, e in zip(ce, [0.05, -0.06, 0.02], strict=False)],  # noisy: open
    })
    by_cell = {(c.dataset, c.loss): c for c in decide_cells(trials, grid, "ce", DESIGN, higher_is_better=True)}
    assert set(by_cell) == {(A, "focal"), (B, "focal")}  # the baseline is no cell
    better, open_ = by_cell[(A, "focal")], by_cell[(B, "focal")]
    assert (better.verdict, better.n, better.next_seeds) == (sq.BETTER, 3, ())
    assert better.estimate == pytest.approx(0.20, abs=1e-9)
    assert (open_.verdict, open_.n, open_.next_seeds) == (sq.OPEN, 3, (3, 4))  # up to the look at 5
    for cell, d in ((better, [0.201, 0.199, 0.20]), (open_, [0.05, -0.06, 0.02])):
        ref = sq.decide(d, (3,), DESIGN)
        assert (cell.verdict, cell.low, cell.high) == (ref.verdict, pytest.approx(ref.low), pytest.approx(ref.high))


def test_lower_is_better_metrics_are_oriented(grid: Grid) -> None:
    trials = rows(grid, {(A, "ce"): [0.5, 0.5, 0.5], (A, "focal"): [0.7, 0.701, 0.699]})
    cell = next(c for c in decide_cells(trials, grid, "ce", DESIGN, higher_is_better=False) if c.dataset == A)
    assert cell.verdict == sq.WORSE and cell.estimate == pytest.approx(-0.2)


def test_equal_losses_are_equivalent_within_the_margin(grid: Grid) -> None:
    ce = [0.70, 0.72, 0.71, 0.69, 0.73]
    trials = rows(grid, {(A, "ce"): ce, (A, "focal"): [v + e for v, e in zip(ce, [0.004, -0.004, 0, 0.003, -0.003],
                                                                                strict=True)]})
    cell = next(c for c in decide_cells(trials, grid, "ce", DESIGN, higher_is_better=True) if c.dataset == A)
    # at 3 seeds the first boundary is too wide for ±0.01; at 5 seeds the interval lies inside it
    first = sq.decide([0.004, -0.004, 0], (3,), DESIGN)
    assert first.verdict == sq.OPEN
    assert (cell.verdict, cell.n, cell.next_seeds) == (sq.EQUIVALENT, 5, ())


def test_a_round_cut_short_delays_the_look_and_fills_it(grid: Grid) -> None:
    """Four seeds of a planned five (killed mid-round): judged at 3, and one more seed brings it to 5."""
    trials = rows(grid, {(A, "ce"): [0.7, 0.7, 0.7, 0.7], (A, "focal"): [0.75, 0.66, 0.72, 0.69]})
    cell = next(c for c in decide_cells(trials, grid, "ce", DESIGN, higher_is_better=True) if c.dataset == A)
    assert (cell.verdict, cell.n, cell.next_seeds) == (sq.OPEN, 3, (4,))


def test_failed_trials_are_left_out_and_replaced_by_later_seeds(grid: Grid) -> None:
    trials = rows(grid, {(A, "ce"): [0.7, 0.7, 0.7], (A, "focal"): [0.75, None, 0.72]})
    cell = next(c for c in decide_cells(trials, grid, "ce", DESIGN, higher_is_better=True) if c.dataset == A)
    assert (cell.verdict, cell.n, cell.next_seeds) == (sq.OPEN, 2, (3,))  # seed 1 is not run again
    # every seed used and still open: inconclusive at its last planned look (5; 7 paired seeds fall short of 8)
    noisy = [0.75, 0.60, 0.72, 0.66, 0.78, 0.64, 0.73, 0.65]
    spent = rows(grid, {(A, "ce"): [0.7] * 8, (A, "focal"): [noisy[0], None, *noisy[2:]]})
    cell = next(c for c in decide_cells(spent, grid, "ce", DESIGN, higher_is_better=True) if c.dataset == A)
    assert (cell.verdict, cell.n, cell.next_seeds) == (sq.INCONCLUSIVE, 5, ())


def run_args(suite: Path, out: Path, *extra: str) -> list[str]:
    return ["run", "--suite", str(suite), "--out", str(out), "--seeds", "2", "-l", "ce", "-l", "focal",
            "--until-conclusive", "--max-seeds", "4", "--looks", "2,3,4", "--margin", "0.001", *extra]


@pytest.mark.parametrize(("extra", "message"), [
    (["--baseline", "ce", "--seeds", "3", "--max-seeds", "2"], "--max-seeds 2 is below the 3 starting seeds"),
    (["--baseline", "weighted-ce"], "--baseline weighted-ce is not one of the run's losses (ce, focal)"),
    ([], "--until-conclusive needs a baseline"),
    (["--baseline", "ce", "--max-seeds", "5", "--looks", "2,4"], "--looks 2,4 must increase from the 2 starting"),
])
def test_refusals_come_before_anything_runs(tmp_path: Path, tiny_suite_file: Path, extra: list[str],
                                            message: str) -> None:
    out = tmp_path / "out"
    result = invoke("run", "--suite", str(tiny_suite_file), "--out", str(out), "--seeds", "2", "-l", "ce", "-l",
                    "focal", "--until-conclusive", *extra)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert not out.exists()


def test_a_kill_between_rounds_loses_nothing_and_the_rerun_continues(
    tmp_path: Path, tiny_suite_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lossbench.cli.run as run_module

    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert invoke(*run_args(tiny_suite_file, whole, "--baseline", "ce", "-q")).exit_code == 0

    real, calls = run_module.execute, []

    def dies_before_round_two(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            raise SystemExit(137)  # as the driver killed between rounds
        return real(*args, **kwargs)

    monkeypatch.setattr(run_module, "execute", dies_before_round_two)
    died = runner.invoke(app, run_args(tiny_suite_file, killed, "--baseline", "ce", "-q"))
    assert died.exit_code == 137 and len(calls) == 2
    first = ResultStore(killed).read_trials()
    assert len(first) == 8  # round one: 2 datasets × 2 losses × 2 seeds, all kept
    monkeypatch.setattr(run_module, "execute", real)

    again = invoke(*run_args(tiny_suite_file, killed, "--baseline", "ce"))
    assert again.exit_code == 0, again.output
    resumed, reference = ResultStore(killed).read_trials(), ResultStore(whole).read_trials()
    # the same trials and values as the uninterrupted run, and round one was not run again
    assert sorted(resumed["trial_id"]) == sorted(reference["trial_id"])
    merged = resumed.merge(reference, on="trial_id", suffixes=("", "_ref"))
    np.testing.assert_allclose(merged["value"].astype(float), merged["value_ref"].astype(float), rtol=0, atol=0)
    kept = resumed.set_index("trial_id").loc[first["trial_id"], "run_id"]
    assert list(kept) == list(first["run_id"])

    history = json.loads((killed / "manifest.json").read_text())["decisions"]
    final = json.loads((whole / "manifest.json").read_text())["decisions"][-1]
    assert history[-1]["cells"] == final["cells"] and history[-1]["trials"] == final["trials"]
    assert all(c["verdict"] != sq.OPEN and not c["next_seeds"] for c in final["cells"])

    status = invoke("status", str(killed))
    text = " ".join(status.output.split())
    assert status.exit_code == 0 and "pending 0" in text and "Adaptive seeding against ce" in text
    for c in final["cells"]:
        assert c["verdict"] in text


def test_gate_decisions_follow_the_non_inferiority_rule() -> None:
    from lossbench.adaptive import gate_decisions

    key_ok, key_bad, key_open = ("d", "a"), ("d", "b"), ("d", "c")
    diffs = {key_ok: [(0, 0.001), (1, -0.001), (2, 0.0)], key_bad: [(0, -0.2), (1, -0.201), (2, -0.199)],
             key_open: [(0, 0.05), (1, -0.06), (2, 0.02)]}
    base_seeds = {k: list(range(8)) for k in diffs}
    tried = {(k[0], k[1], s) for k in diffs for s in range(3)}
    margins = dict.fromkeys(diffs, 0.01)
    got = {(c.loss): c for c in gate_decisions(diffs, base_seeds, tried, margins, 3, 8, 0.05)}
    for key, expected in ((key_ok, sq.PASS), (key_bad, sq.REGRESSION), (key_open, sq.OPEN)):
        design = sq.Design(start=3, max_seeds=8, margin=0.01, alpha=0.05, cells=3, question="non-inferiority")
        ref = sq.decide([v for _, v in diffs[key]], (3,), design)
        assert got[key[1]].verdict == ref.verdict == expected
    assert got["c"].next_seeds == (3, 4) and got["a"].next_seeds == ()


def noisy_copy(folder: Path, sd: float) -> None:
    """The same trials with noise added to the primary value: a baseline that differs from a rerun."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(1)
    for f in sorted((folder / "trials").glob("*.parquet")):
        table = pq.read_table(f)
        frame = table.to_pandas()
        frame["value"] = frame["value"] + rng.normal(0, sd, len(frame))
        pq.write_table(pa.Table.from_pandas(frame, schema=table.schema, preserve_index=False), f)


def test_gate_until_conclusive_runs_the_candidates_open_cells_on_the_baselines_seeds(
    tmp_path: Path, tiny_suite_file: Path
) -> None:
    base, cand = tmp_path / "base", tmp_path / "cand"
    common = ["--suite", str(tiny_suite_file), "-l", "ce", "-l", "focal", "-q"]
    assert invoke("run", *common, "--seeds", "4", "--out", str(base)).exit_code == 0
    noisy_copy(base, 0.03)  # differences of ±0.03 against a margin of 0.01: open after 2 seeds
    assert invoke("run", *common, "--seeds", "2", "--out", str(cand)).exit_code == 0
    gated = invoke("gate", "-b", str(base), "-c", str(cand), "--until-conclusive", "--max-seeds", "4", "-f", "json")
    assert gated.exit_code == 0, gated.output
    trials = ResultStore(cand).read_trials()
    assert sorted(set(trials["seed"])) == [0, 1, 2, 3] and len(trials) == 16  # the looks at 2 and 4 seeds
    verdict = json.loads(gated.output)
    assert any("sequential rule" in note for note in verdict["notes"])
    assert {c["n"] for c in verdict["cells"]} == {4}
    status = invoke("status", str(cand))
    assert "16 trials — ok 16, pending 0" in status.output


def test_adaptive_options_without_until_conclusive_are_refused(tmp_path: Path, tiny_suite_file: Path) -> None:
    result = invoke("run", "--suite", str(tiny_suite_file), "--out", str(tmp_path / "out"), "--baseline", "ce")
    assert result.exit_code == 2 and "only apply to an adaptive run" in " ".join(result.output.split())
    assert not (tmp_path / "out").exists()


def test_a_rerun_may_not_change_the_design_its_looks_were_judged_under(tmp_path: Path, tiny_suite_file: Path) -> None:
    out = tmp_path / "r"
    first = invoke(*run_args(tiny_suite_file, out, "--baseline", "ce", "-q"))
    assert first.exit_code == 0, first.output
    trials, manifest = ResultStore(out).read_trials(), (out / "manifest.json").read_text()

    changed = runner.invoke(app, ["run", "--suite", str(tiny_suite_file), "--out", str(out), "--seeds", "2", "-l",
                                  "ce", "-l", "focal", "--until-conclusive", "--max-seeds", "6", "--looks", "2,4,6",
                                  "--margin", "0.001", "--baseline", "ce"])
    text = " ".join(changed.output.split())
    assert changed.exit_code == 2, changed.output
    assert "max_seeds 4 → 6" in text and "looks [2, 3, 4] → [2, 4, 6]" in text
    assert "--max-seeds 4 --looks 2,3,4 --margin 0.001" in text  # the fix names the recorded design
    # refused before anything ran or was written
    assert len(ResultStore(out).read_trials()) == len(trials) and (out / "manifest.json").read_text() == manifest

    other_margin = runner.invoke(app, run_args(tiny_suite_file, out, "--baseline", "ce", "--margin", "0.05"))
    assert other_margin.exit_code == 2 and "margin 0.001 → 0.05" in " ".join(other_margin.output.split())

    same = invoke(*run_args(tiny_suite_file, out, "--baseline", "ce", "-q"))
    assert same.exit_code == 0, same.output
