"""The catalogue of bad inputs (docs/reliability.md): each one ends in a clean error, never a traceback.

One row per input: the command line (``{d}`` is a folder of prepared bad files), the expected exit code
and a fragment of the message. A few rows are inputs that are *accepted* on purpose (exit 0); the
catalogue says why. ``python -m tests.test_bad_inputs`` prints the table with the exact messages.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from lossbench.cli.app import app
from lossbench.schema import METADATA_KEY
from lossbench.store import rows_to_table

SUITE = ('name = "t"\nversion = "1"\ntask = "classification"\ndatasets = ["synthetic:classification#n=100"]\n'
         'losses = ["ce"]\nprimary_metric = "accuracy"\n')
RUN = ["run", "--dry-run", "--out", "{d}/out"]

#: (id, argv, exit code, message fragment, what the row is about)
CASES: list[tuple[str, list[str], int, str, str]] = [
    # -- command-line arguments of the wrong type or range
    ("seeds-not-int", [*RUN, "--seeds", "abc"], 2, "Invalid value for '--seeds'", "CLI: --seeds not a number"),
    ("seeds-zero", [*RUN, "--seeds", "0"], 2, "Invalid value for '--seeds': Input should be greater than or equal "
     "to 1", "CLI: --seeds 0"),
    ("seeds-huge", [*RUN, "--seeds", "100000000"], 2, "Input should be less than or equal to 10000",
     "CLI: --seeds 10^8"),
    ("seed-offset-negative", [*RUN, "--seed-offset", "-1"], 2, "Invalid value for '--seed-offset'",
     "CLI: --seed-offset -1"),
    ("n-jobs-zero", [*RUN, "--n-jobs", "0"], 2, "0 workers cannot run a trial", "CLI: --n-jobs 0"),
    ("threads-zero", [*RUN, "--threads", "0"], 2, "Invalid value for '--threads'", "CLI: --threads 0"),
    ("timeout-negative", [*RUN, "--trial-timeout", "-1"], 2, "Invalid value for '--trial-timeout'",
     "CLI: --trial-timeout -1"),
    ("rerun-unknown", [*RUN, "--rerun", "maybe"], 2, "'maybe' is not one of 'none', 'failed', 'all'",
     "CLI: --rerun maybe"),
    ("device-unknown", [*RUN, "--device", "tpu"], 2, "Unknown device 'tpu'", "CLI: --device tpu"),
    ("backend-unknown", [*RUN, "--backend", "spark"], 2, "'spark' is not one of 'loky', 'dask'",
     "CLI: --backend spark"),
    ("flag-with-value", [*RUN, "--dry-run", "true"], 2, "--dry-run is a flag and takes no value",
     "CLI: a flag given a value"),
    ("loss-typo", [*RUN, "--loss", "focl"], 2, "Did you mean 'focal'", "CLI: --loss with a typo"),
    ("loss-param-type", [*RUN, "--loss", "focal:gamma=abc"], 2, "must be a float in [0, inf]",
     "CLI: loss parameter of the wrong type"),
    ("loss-param-syntax", [*RUN, "--loss", "focal:gamma"], 2, "Parameters are written key=value",
     "CLI: loss parameter without a value"),
    ("plugin-missing-file", [*RUN, "--plugin", "{d}/nope.py"], 2, "Cannot load plug-in file",
     "CLI: --plugin file that does not exist"),
    ("plugin-missing-module", [*RUN, "--plugin", "no_such_module_xyz"], 2, "Cannot import plug-in module",
     "CLI: --plugin module that is not installed"),
    ("out-is-file", ["run", "--out", "{d}/empty.csv"], 2, "is a file, not a directory", "CLI: --out names a file"),
    ("openml-cache-missing", [*RUN, "--openml-cache", "{d}/nope"], 2, "is not a directory",
     "CLI: --openml-cache folder that does not exist"),
    ("compare-confidence-range", ["compare", "{d}/foreign.parquet", "--confidence", "2"], 2,
     "Invalid value for '--confidence'", "CLI: compare --confidence out of range"),
    ("list-format", ["list", "losses", "--format", "yaml"], 2, "'yaml' is not one of 'table', 'json', 'markdown'",
     "CLI: list --format yaml"),
    ("list-family", ["list", "losses", "--family", "nope"], 2, "No losses of family 'nope'",
     "CLI: list --family that does not exist"),
    # -- suite files
    ("suite-missing", [*RUN, "--suite", "{d}/nope.toml"], 2, "does not exist", "suite: path does not exist"),
    ("suite-directory", [*RUN, "--suite", "{d}"], 2, "is a directory, not a suite file", "suite: a directory"),
    ("suite-empty", [*RUN, "--suite", "{d}/empty.toml"], 2, "the suite is empty", "suite: empty file"),
    ("suite-not-toml", [*RUN, "--suite", "{d}/nottoml.toml"], 2, "not valid TOML", "suite: not TOML"),
    ("suite-binary", [*RUN, "--suite", "{d}/binary.toml"], 2, "not valid TOML", "suite: binary bytes, not UTF-8"),
    ("suite-unknown-key", [*RUN, "--suite", "{d}/unknown.toml"], 2, "epochz: unknown key", "suite: unknown key"),
    ("suite-missing-key", [*RUN, "--suite", "{d}/missing.toml"], 2, "task: missing", "suite: required key missing"),
    ("suite-wrong-type", [*RUN, "--suite", "{d}/wrongtype.toml"], 2, "losses: must be a list; got str",
     "suite: losses is a string"),
    ("suite-wrong-type-nested", [*RUN, "--suite", "{d}/wrongtype2.toml"], 2, "training.epochs: must be a int",
     "suite: training.epochs is a string"),
    ("suite-duplicate-loss", [*RUN, "--suite", "{d}/dup.toml"], 2, "'focal' is listed twice",
     "suite: the same loss twice (focal and focal:gamma=2)"),
    ("suite-dataset-typo", [*RUN, "--suite", "{d}/typo.toml"], 2, "no bundled dataset 'breast_cancr'",
     "suite: dataset URI with a typo"),
    ("suite-scheme-typo", [*RUN, "--suite", "{d}/typo2.toml"], 2, "No data source for scheme 'synthetc'",
     "suite: dataset scheme with a typo"),
    ("suite-lr-nan", [*RUN, "--suite", "{d}/lrnan.toml"], 2, "training.lr: must be a finite number",
     "suite: lr = nan"),
    ("suite-hidden-negative", [*RUN, "--suite", "{d}/hidden.toml"], 2, "model.hidden: must be a list of layer widths",
     "suite: model.hidden = [-1]"),
    ("suite-seeds-huge", [*RUN, "--suite", "{d}/seeds.toml"], 2, "seeds: must be at most 10,000",
     "suite: seeds = 10^8"),
    ("suite-name-path", [*RUN, "--suite", "{d}/escape.toml"], 2, "is not a plain name",
     "suite: name = '../../escape' (would leave results/)"),
    ("suite-optimizer", [*RUN, "--suite", "{d}/optim.toml"], 2, "unknown optimizer 'adamm'",
     "suite: unknown optimizer"),
    # -- data files
    ("csv-empty", [*RUN, "-d", "csv:{d}/empty.csv#target=y"], 2, "No columns to parse", "data: empty CSV file"),
    ("csv-header-only", [*RUN, "-d", "csv:{d}/header.csv#target=y"], 2, "is empty", "data: CSV with a header only"),
    ("csv-one-class", [*RUN, "-d", "csv:{d}/oneclass.csv#target=y"], 2, "has only one class",
     "data: one class only"),
    ("csv-nan-label", [*RUN, "-d", "csv:{d}/nanlabel.csv#target=y"], 2, "has 1 missing labels",
     "data: a missing (NaN) label"),
    ("csv-string-labels", [*RUN, "-d", "csv:{d}/strlabel.csv#target=y"], 0, "",
     "data: non-numeric labels (accepted: they are class names)"),
    ("csv-no-such-target", [*RUN, "-d", "csv:{d}/strlabel.csv#target=label"], 2, "Column 'label' is not in",
     "data: target column that does not exist"),
    ("csv-no-target", [*RUN, "-d", "csv:{d}/strlabel.csv"], 2, "does not say which column is the label",
     "data: no target= option"),
    ("csv-constant-features", [*RUN, "-d", "csv:{d}/constant.csv#target=y"], 2, "every feature column is constant",
     "data: all features constant"),
    ("csv-inf-values", [*RUN, "-d", "csv:{d}/inf.csv#target=y"], 0, "",
     "data: inf values (accepted: treated as missing, imputed from training rows)"),
    ("csv-one-row-class", [*RUN, "-d", "csv:{d}/rare.csv#target=y"], 2, "too few for a stratified",
     "data: a class with 1 row (breaks stratification)"),
    ("csv-binary", [*RUN, "-d", "csv:{d}/binary.csv#target=y"], 2, "Check the file's format",
     "data: binary bytes named .csv"),
    ("csv-directory", [*RUN, "-d", "csv:{d}#target=y"], 2, "is a directory, not a data file",
     "data: a directory named as the CSV file"),
    ("csv-semicolons", [*RUN, "-d", "csv:{d}/semicolon.csv#target=y"], 2, "sep=; gives 3 columns",
     "data: a ;-separated file without sep="),
    ("csv-decimal-comma", [*RUN, "-d", "csv:{d}/semicolon.csv#target=y&sep=;"], 2, "Add &decimal=, to the URI",
     "data: decimal commas without decimal=,"),
    ("parquet-truncated-data", [*RUN, "-d", "parquet:{d}/trunc.parquet#target=y"], 2, "Cannot read",
     "data: truncated Parquet data file"),
    ("synthetic-bad-option", [*RUN, "-d", "synthetic:classification#n=abc"], 2, "must be an integer; got 'abc'",
     "data: synthetic n=abc"),
    ("synthetic-impossible", [*RUN, "-d", "synthetic:classification#classes=1000"], 2,
     "need more informative features", "data: synthetic with more classes than it can generate"),
    # -- Parquet results given to compare and gate
    ("compare-truncated", ["compare", "{d}/trunc.parquet"], 2, "is not a readable Parquet file",
     "results: truncated file to compare"),
    ("gate-truncated", ["gate", "-b", "{d}/trunc.parquet", "-c", "{d}/trunc.parquet"], 2,
     "is not a readable Parquet file", "results: truncated file to gate"),
    ("compare-foreign", ["compare", "{d}/foreign.parquet"], 3, "is not a lossbench result file",
     "results: Parquet from another tool to compare"),
    ("gate-foreign", ["gate", "-b", "{d}/foreign.parquet", "-c", "{d}/foreign.parquet"], 3,
     "is not a lossbench result file", "results: Parquet from another tool to gate"),
    ("compare-old-schema", ["compare", "{d}/old.parquet"], 3, "has result schema version 0",
     "results: older schema version to compare"),
    ("gate-old-schema", ["gate", "-b", "{d}/old.parquet", "-c", "{d}/old.parquet"], 3, "has result schema version 0",
     "results: older schema version to gate"),
    ("compare-zero-bytes", ["compare", "{d}/empty.parquet"], 2, "is not a readable Parquet file",
     "results: empty (0-byte) file to compare"),
    ("gate-zero-bytes", ["gate", "-b", "{d}/empty.parquet", "-c", "{d}/empty.parquet"], 2,
     "is not a readable Parquet file", "results: empty (0-byte) file to gate"),
    ("compare-no-rows", ["compare", "{d}/zero.parquet"], 2, "No trials to compare",
     "results: valid file with no rows to compare"),
    ("gate-no-rows", ["gate", "-b", "{d}/zero.parquet", "-c", "{d}/zero.parquet"], 3, "The baseline has no trials",
     "results: valid file with no rows to gate"),
    ("compare-missing-columns", ["compare", "{d}/partial.parquet"], 3, "lacks the column(s)",
     "results: lossbench metadata but columns missing"),
    ("compare-no-such-path", ["compare", "{d}/nope.parquet"], 2, "does not exist", "results: path does not exist"),
    ("run-old-results-dir", ["run", "--out", "{d}/oldresults"], 3, "schema version 0",
     "results: --out written by an older schema version"),
    ("compare-suite-file", ["compare", "{d}/typo.toml"], 2, "is a suite file, not results",
     "results: a suite file given to compare"),
    ("report-no-such-path", ["report", "{d}/nope"], 2, "does not exist", "results: report on a path that does not exist"),
    ("run-other-suite-dir", ["run", "--out", "{d}/otherresults"], 2,
     "holds results of suite 'other' v1; this run is suite 'quickstart' v1",
     "results: --out holding another suite's results"),
]


def make_bad_files(d: Path) -> None:
    """Write every bad file the catalogue refers to into ``d``."""
    rng = np.random.default_rng(0)

    def good(n: int = 60) -> pd.DataFrame:
        return pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "y": [0, 1] * (n // 2)})

    (d / "empty.csv").write_text("")
    (d / "header.csv").write_text("a,b,y\n")
    frame = good()
    frame["y"] = 1
    frame.to_csv(d / "oneclass.csv", index=False)
    frame = good()
    frame.loc[3, "y"] = np.nan
    frame.to_csv(d / "nanlabel.csv", index=False)
    frame = good()
    frame["y"] = ["cat", "dog"] * 30
    frame.to_csv(d / "strlabel.csv", index=False)
    frame = good()
    frame["a"], frame["b"] = 1.0, 2.0
    frame.to_csv(d / "constant.csv", index=False)
    frame = good()
    frame.loc[::3, "a"] = np.inf
    frame.to_csv(d / "inf.csv", index=False)
    frame = good()
    frame.loc[0, "y"] = 2
    frame.to_csv(d / "rare.csv", index=False)
    (d / "binary.csv").write_bytes(bytes(range(256)) * 4)
    good().to_parquet(d / "good.parquet")
    (d / "trunc.parquet").write_bytes((d / "good.parquet").read_bytes()[:200])
    pd.DataFrame({"a": [1, 2]}).to_parquet(d / "foreign.parquet")
    (d / "empty.parquet").write_bytes(b"")
    pq.write_table(pa.table({"trial_id": ["x"]}).replace_schema_metadata({METADATA_KEY: b"0"}), d / "old.parquet")
    pq.write_table(pa.table({"trial_id": ["x"]}).replace_schema_metadata({METADATA_KEY: b"1"}), d / "partial.parquet")
    pq.write_table(rows_to_table([]), d / "zero.parquet")
    (d / "oldresults").mkdir()
    (d / "oldresults" / "manifest.json").write_text(json.dumps({"schema_version": 0, "runs": []}))
    (d / "otherresults").mkdir()
    (d / "otherresults" / "manifest.json").write_text(json.dumps(
        {"schema_version": 1, "runs": [{"suite": {"name": "other", "version": "1", "task": "classification"}}]}))
    frame = good()
    frame.to_csv(d / "semicolon.csv", sep=";", decimal=",", index=False)

    suites = {
        "empty": "",
        "nottoml": "this is [not toml\n",
        "unknown": SUITE + "epochz = 3\n",
        "missing": 'name = "t"\nversion = 1\n',
        "wrongtype": SUITE.replace('losses = ["ce"]', 'losses = "ce"'),
        "wrongtype2": SUITE + "[training]\nepochs = '3'\n",
        "dup": SUITE.replace('losses = ["ce"]', 'losses = ["ce", "focal", "focal:gamma=2"]'),
        "typo": SUITE.replace("synthetic:classification#n=100", "sklearn:breast_cancr"),
        "typo2": SUITE.replace("synthetic:classification#n=100", "synthetc:classification"),
        "lrnan": SUITE + "[training]\nlr = nan\n",
        "hidden": SUITE + "[model]\nfamily = 'mlp'\nhidden = [-1]\n",
        "seeds": SUITE + "seeds = 100000000\n",
        "optim": SUITE + "[training]\noptimizer = 'adamm'\n",
        "escape": SUITE.replace('name = "t"', 'name = "../../escape"'),
    }
    for name, text in suites.items():
        (d / f"{name}.toml").write_text(text)
    (d / "binary.toml").write_bytes(b"\xff\xfe\x00garbage")


@pytest.fixture(scope="module")
def bad_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bad")
    make_bad_files(d)
    return d


def invoke(argv: list[str], d: Path):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, [a.replace("{d}", str(d)) for a in argv])


@pytest.mark.parametrize(("argv", "code", "fragment"), [pytest.param(a, c, f, id=i) for i, a, c, f, _ in CASES])
def test_bad_input_is_a_clean_error(bad_dir: Path, argv: list[str], code: int, fragment: str) -> None:
    result = invoke(argv, bad_dir)
    # An uncaught exception shows up as result.exception (exit 1); a clean error is a SystemExit.
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == code, result.output
    assert fragment in result.output
    assert "Traceback" not in result.output
    if code:  # Click's usage errors too
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error:"), result.output  # one line: message and fix


def test_catalogue_is_large_enough() -> None:
    assert len(CASES) >= 30
    assert len({c[0] for c in CASES}) == len(CASES)


def markdown_table(d: Path) -> str:
    """The catalogue as docs/reliability.md shows it, with the exact message of each row."""
    lines = ["| # | input | command | exit | message |", "|---|---|---|---|---|"]
    for n, (_, argv, _, _, what) in enumerate(CASES, 1):
        result = invoke(argv, d)
        out = [x for x in result.output.splitlines() if x.startswith("Error:")]
        msg = out[0] if out else "(accepted)"
        msg = msg.replace(str(d), "DIR").replace("|", "\\|")
        cmd = "lossbench " + " ".join(argv).replace("{d}", "DIR").replace("|", "\\|")
        lines.append(f"| {n} | {what} | `{cmd}` | {result.exit_code} | {msg} |")
    return "\n".join(lines)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        make_bad_files(Path(tmp))
        print(markdown_table(Path(tmp)))
