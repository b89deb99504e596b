"""A user's own CSV: separators and decimal marks that would train on nothing are caught with the fix, and what
the tabular task does to the table is said once per dataset."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from lossbench.cli.app import app
from lossbench.errors import DataError
from lossbench.sources import load_dataset


def frame(n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3))
    out = pd.DataFrame(X, columns=["a", "b", "c"])
    out["label"] = (X[:, 0] + X[:, 1] > 0).astype(int)
    return out


def test_european_csv_reads_as_numbers_with_decimal_comma(tmp_path: Path) -> None:
    path = tmp_path / "eu.csv"
    frame().to_csv(path, sep=";", decimal=",", index=False)
    with pytest.raises(DataError, match=r"column\(s\) a, b, c hold numbers written with a decimal comma") as err:
        load_dataset(f"csv:{path}#target=label&sep=;")
    assert err.value.hint is not None and "&decimal=," in err.value.hint
    ds = load_dataset(f"csv:{path}#target=label&sep=;&decimal=,")
    np.testing.assert_allclose(ds.X.to_numpy(), frame()[["a", "b", "c"]].to_numpy(), rtol=1e-12)
    kept = load_dataset(f"csv:{path}#target=label&sep=;&decimal=.")  # explicitly text: accepted as such
    assert not pd.api.types.is_numeric_dtype(kept.X["a"])


@pytest.mark.parametrize(("sep", "name"), [(";", ";"), ("\t", "tab"), ("|", "|")])
def test_one_column_parse_names_the_separator_that_works(tmp_path: Path, sep: str, name: str) -> None:
    path = tmp_path / "f.csv"
    frame().to_csv(path, sep=sep, index=False)
    with pytest.raises(DataError, match=f"reads as one column with the default sep=,; sep={name} gives 4 columns"
                       .replace("|", r"\|")) as err:
        load_dataset(f"csv:{path}#target=label")
    assert err.value.hint == f"Use csv:{path}#sep={name}&target=label"
    assert load_dataset(err.value.hint.removeprefix("Use ")).X.shape == (120, 3)


def test_rows_that_do_not_parse_name_the_separator(tmp_path: Path) -> None:
    """Decimal commas in a tab-separated file make rows of unequal length under sep=,: a parse error."""
    path = tmp_path / "f.tsv"
    path.write_text("a\tb\tlabel\n" + "1\t2\t0\n1,5\t2,5\t1\n" * 10)
    with pytest.raises(DataError, match="does not parse with the default sep=,; sep=tab gives 3 columns"):
        load_dataset(f"csv:{path}#target=label")


def test_a_directory_is_not_called_missing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a directory, not a data file"):
        load_dataset(f"csv:{tmp_path}#target=label")


def test_preprocessing_is_said_once_per_dataset(tmp_path: Path) -> None:
    data = frame()
    data.loc[::10, "a"] = np.nan
    data.loc[1, "b"] = np.inf
    data["city"] = np.where(np.arange(len(data)) % 2 == 0, "paris", "rome")
    data.to_csv(tmp_path / "mixed.csv", index=False)
    text = pd.DataFrame({f"t{i}": np.where(np.arange(120) % (i + 2) == 0, "x", "y") for i in range(3)})
    text["label"] = frame()["label"]
    text.to_csv(tmp_path / "text.csv", index=False)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", "--dry-run", "--seeds", "2", "-l", "ce", "-l", "focal",
                                      "--out", str(out), "-d", f"csv:{tmp_path}/mixed.csv#target=label",
                                      "-d", f"csv:{tmp_path}/text.csv#target=label"])
    assert result.exit_code == 0, result.output
    mixed = f"csv:{tmp_path}/mixed.csv#target=label"
    assert result.output.count(f"note: {mixed}: 1 text column(s) one-hot encoded: city.") == 1
    assert result.output.count(f"note: {mixed}: 13 missing or non-finite value(s) in 2 column(s) (a, b), imputed "
                               "with the training median.") == 1
    assert result.output.count(f"Warning: csv:{tmp_path}/text.csv#target=label: 3 of 3 feature columns are not "
                               "numbers (t0, t1, t2)") == 1


def test_worker_processes_print_no_notes(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Outside the CLI's planning step (in workers, which load the data again) the notes go nowhere."""
    data = pd.DataFrame({f"t{i}": ["x", "y"] * 30 for i in range(3)})
    data["label"] = [0, 0, 1] * 20
    data.to_csv(tmp_path / "text.csv", index=False)
    assert logging.getLogger("lossbench").handlers  # the library's own NullHandler keeps Python's last resort quiet
    load_dataset(f"csv:{tmp_path}/text.csv#target=label")
    assert capfd.readouterr().err == ""
