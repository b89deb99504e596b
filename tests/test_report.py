"""report and the end-of-run summary: compare's numbers, with their uncertainty, and messages that tell the truth."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from lossbench.cli.app import app
from lossbench.compare import compare
from lossbench.report.summary import print_summary
from lossbench.results import load_trials
from tests.resultgen import noisy, write_results

ROOT = Path(__file__).resolve().parents[1]


def printed(trials) -> tuple[object, str]:  # type: ignore[no-untyped-def]
    buf = io.StringIO()
    result = print_summary(trials, Console(file=buf, width=250))
    return result, buf.getvalue()


def test_summary_ranks_as_compare_does(tmp_path):
    # ce's seed 0 is poor and focal's seed 0 failed: over all ok trials focal looked better (0.75 > 0.70);
    # paired on the seeds both have, ce is (0.80 > 0.75). The summary must rank as compare does.
    values = np.array([[[0.4, 0.8, 0.8, 0.8], [0.0, 0.75, 0.75, 0.75]]])
    status = np.full(values.shape, "ok", dtype=object)
    status[0, 1, 0] = "failed"
    trials = load_trials([write_results(tmp_path / "r", values, losses=["ce", "focal"], status=status)])
    result, text = printed(trials)
    assert list(result.summary["loss"]) == list(compare(trials).summary["loss"]) == ["ce", "focal"]
    assert "0.8000" in text and "failed" in text


def test_summary_rank_table_carries_uncertainty(tmp_path):
    values = noisy((4, 3, 5), shift=[0.0, 0.02, -0.01])
    trials = load_trials([write_results(tmp_path / "r", values, losses=["ce", "focal", "poly"])])
    _, text = printed(trials)
    assert "W/T/L vs baseline" in text and "Wilcoxon p" in text and "Friedman" in text
    assert "lossbench compare" in text
    assert re.search(r"0\.\d{4} \[0\.\d{4}, 0\.\d{4}\]", text)  # mean [CI], not mean ± half-width


def test_summary_when_every_trial_failed_still_lists_them(tmp_path):
    values = noisy((1, 2, 3))
    status = np.full(values.shape, "timeout", dtype=object)
    trials = load_trials([write_results(tmp_path / "r", values, losses=["ce", "focal"], status=status)])
    result, text = printed(trials)
    assert result is None and "No comparison" in text and "timeout: 6" in text


def test_report_html_without_matplotlib_says_so(tmp_path, monkeypatch):
    from lossbench.errors import UserError
    from lossbench.report import plots

    def no_matplotlib(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise UserError("Plots need matplotlib, which is not installed.", plots.INSTALL_HINT)

    monkeypatch.setattr(plots, "all_plots", no_matplotlib)
    monkeypatch.setattr(plots, "plots_available", lambda: False)
    write_results(tmp_path / "r", noisy((2, 2, 3)), losses=["ce", "focal"])
    r = CliRunner().invoke(app, ["report", str(tmp_path / "r"), "--html", str(tmp_path / "p.html")])
    assert r.exit_code == 0, r.output
    assert "plots need matplotlib" in r.output and "lossbench[plots]" in r.output
    assert "Plots omitted" in (tmp_path / "p.html").read_text()


def test_compare_plots_counts_the_files_it_wrote(tmp_path):
    write_results(tmp_path / "r", noisy((2, 2, 3)), losses=["ce", "focal"], curves=True)
    r = CliRunner().invoke(app, ["compare", str(tmp_path / "r"), "--plots", str(tmp_path / "plots")])
    assert r.exit_code == 0, r.output
    n_files = len(list((tmp_path / "plots").iterdir()))
    assert n_files == 10 and f"wrote {n_files} plot files" in r.output


def test_help_shows_the_plots_extra():
    out = CliRunner().invoke(app, ["compare", "--help"], terminal_width=200).output
    assert "lossbench[plots]" in " ".join(out.split()).replace("│", "").replace(" ", "")


def test_the_report_layer_trains_nothing():
    for path in (ROOT / "lossbench" / "report").glob("*.py"):
        text = path.read_text()
        assert "lossbench.train" not in text and "import torch" not in text, path.name


@pytest.mark.parametrize("module", ["lossbench.cli.report", "lossbench.report.summary"])
def test_report_modules_import_light(module):
    code = f"import sys, {module}; print(sorted(m for m in ('pandas', 'scipy', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"
