"""results: every input form finds the trial files, and comparable sets are never pooled."""

from __future__ import annotations

import glob
import re
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from lossbench.cli.app import app
from lossbench.compare import compare
from lossbench.errors import ResultsError
from lossbench.gate import run_gate
from lossbench.results import TRIALS_GLOB, label_sets, load_curves, load_trials, resolve_inputs, sets_table
from tests.resultgen import make_rows, noisy, write_results, write_rows

LOSSES = ["ce", "focal"]


@pytest.fixture
def root(tmp_path):
    """results/ as `lossbench run` leaves it: two suites, each in its own folder."""
    results = tmp_path / "results"
    write_results(results / "quickstart", noisy((2, 2, 3)), losses=LOSSES, suite="quickstart", curves=True)
    write_results(results / "other", noisy((3, 2, 3), seed=1), losses=LOSSES, suite="other")
    return results


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args))


def test_every_input_form_reads_the_same_trials(root, monkeypatch):
    monkeypatch.chdir(root.parent)
    everything = 12 + 18
    forms = [
        ["results"],  # a results root holding several suites
        ["results/quickstart", "results/other"],  # suite folders
        ["results/*"],
        ["results/*/trials/*.parquet"],
        ["results/**/*.parquet"],  # trial and curve fragments: curves stand for their folder
        [f"results/{TRIALS_GLOB}"],  # the documented glob
        ["results/quickstart/*", "results/other/trials"],  # what the shell makes of a suite folder's '*'
        ["results/quickstart/manifest.json", "results/other/trials/*.parquet"],
    ]
    for form in forms:
        assert len(load_trials(form)) == everything, form
    assert len(load_trials(["results/quickstart"])) == 12


def test_a_results_folder_without_trials_yet_does_not_block_the_root(root):
    from lossbench.store import ResultStore

    ResultStore(root / "starting").open_for_writing()  # a run that has not finished a trial
    assert len(load_trials([root])) == 30
    with pytest.raises(ResultsError, match="no trials yet"):
        load_trials([root / "starting"])


def test_results_parquet_works_when_fragments_sit_there(root, monkeypatch):
    monkeypatch.chdir(root.parent)
    for f in glob.glob("results/quickstart/trials/*.parquet"):
        shutil.copy(f, "results/")
    assert len(load_trials(["results/*.parquet"])) == 12


def test_a_glob_matching_nothing_names_what_works(root, monkeypatch):
    monkeypatch.chdir(root.parent)
    with pytest.raises(ResultsError) as exc:
        resolve_inputs(["results/*.parquet"])
    text = str(exc.value)
    assert "'results'" in text and "'results/*/trials/*.parquet'" in text
    assert len(load_trials(["results/*/trials/*.parquet"])) == 30  # the glob it names works
    with pytest.raises(ResultsError, match=re.escape("results/quickstart/trials/*.parquet")):
        resolve_inputs(["results/quickstart/*.parquet"])


def test_files_that_are_not_results_say_what_to_pass(root, tmp_path):
    suite = tmp_path / "mine.toml"
    suite.write_text('name = "mine"\n')
    r = invoke("compare", str(suite))
    assert r.exit_code == 2 and "is a suite file, not results" in r.output
    assert "--suite" in r.output and "Remove" not in r.output
    (tmp_path / "empty").mkdir()
    r = invoke("compare", str(tmp_path / "empty"))
    assert r.exit_code == 2 and "holds no lossbench results" in r.output
    r = invoke("report", str(tmp_path / "nope"))
    assert r.exit_code == 2 and "does not exist" in r.output


def test_curves_of_a_results_root_are_found(root):
    curves = load_curves([root])
    assert len(curves) == 12 * 5  # the quickstart folder wrote 5 epochs per trial; other wrote none


def test_gate_baseline_accepts_a_results_root(root, tmp_path):
    cand = tmp_path / "cand"
    shutil.copytree(root, cand)
    res = run_gate([str(root)], [str(cand / "quickstart"), str(cand / "other")])
    assert res.outcome == "PASS" and len(res.cells) == 10


def test_duckdb_polars_glob_reads_only_trial_files(root):
    files = sorted(glob.glob(str(root / TRIALS_GLOB), recursive=True))
    assert files and all("/trials/" in f for f in files)
    assert sum(pq.read_metadata(f).num_rows for f in files) == 30


# -- comparable sets ----------------------------------------------------------------------------


def two_configs(tmp_path, protocol: str | None = None):
    """One folder, one suite run twice: 40 epochs (good) and 5 epochs (poor), same datasets and seeds."""
    long = make_rows(noisy((2, 2, 4), base=0.9), losses=LOSSES, suite="q", config={"training": {"epochs": 40}})
    short = make_rows(noisy((2, 2, 4), base=0.6), losses=LOSSES, suite="q", config={"training": {"epochs": 5}},
                      protocol=protocol)
    write_rows(tmp_path / "mixed", long + short)
    return tmp_path / "mixed", long, short


def test_two_configurations_are_never_pooled(tmp_path):
    folder, long, _ = two_configs(tmp_path)
    res = compare(load_trials([folder]))
    assert len(res.datasets) == 4 and set(res.per_dataset["n"]) == {4}  # not 2 cells of 8 seeds
    row = res.per_dataset[res.per_dataset["dataset"] == "q training.epochs=40 / d0"].set_index("loss")
    assert row.loc["ce", "mean"] == pytest.approx(np.mean([r["value"] for r in long[:4]]))
    assert any("2 comparable sets" in n for n in res.notes) and len(res.sets) == 2


def test_protocol_separates_sets_and_a_missing_protocol_is_the_first(tmp_path):
    folder, _, _ = two_configs(tmp_path / "a", protocol="2")
    labels = set(label_sets(load_trials([folder]))["set"])
    assert labels == {"q training.epochs=40 protocol 1", "q training.epochs=5 protocol 2"}
    rows = make_rows(noisy((1, 2, 3)), losses=LOSSES, suite="p") + make_rows(
        noisy((1, 2, 3)), losses=LOSSES, suite="p", protocol="2"
    )
    write_rows(tmp_path / "b", rows)
    table = sets_table(load_trials([tmp_path / "b"]))
    assert list(table["set"]) == ["p protocol 1", "p protocol 2"]
    one = make_rows(noisy((1, 2, 3)), losses=LOSSES, suite="p") + make_rows(
        noisy((1, 2, 3), seed=3), losses=LOSSES, suite="p", protocol="1", seeds=[3, 4, 5]
    )
    write_rows(tmp_path / "c", one)
    assert len(sets_table(load_trials([tmp_path / "c"]))) == 1


def test_report_shows_each_set_separately(tmp_path):
    folder, _, _ = two_configs(tmp_path)
    r = invoke("report", str(folder))
    assert r.exit_code == 0, r.output
    assert "q training.epochs=40 / d0" in r.output and "q training.epochs=5 / d0" in r.output


def test_gate_refuses_another_configuration_or_protocol(tmp_path):
    base = make_rows(noisy((2, 2, 4)), losses=LOSSES, suite="q", config={"training": {"epochs": 40}})
    write_rows(tmp_path / "base", base)
    write_rows(tmp_path / "cfg", make_rows(noisy((2, 2, 4)), losses=LOSSES, suite="q",
                                           config={"training": {"epochs": 5}}))
    r = invoke("gate", "-b", str(tmp_path / "base"), "-c", str(tmp_path / "cfg"))
    assert r.exit_code == 3 and "config_hash of suite 'q' differs" in r.output
    write_rows(tmp_path / "proto", make_rows(noisy((2, 2, 4)), losses=LOSSES, suite="q",
                                             config={"training": {"epochs": 40}}, protocol="2"))
    r = invoke("gate", "-b", str(tmp_path / "base"), "-c", str(tmp_path / "proto"))
    assert r.exit_code == 3 and "protocol of suite 'q' differs" in r.output
