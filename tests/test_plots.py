"""Plots draw with Agg and produce valid PNG and SVG files."""

from __future__ import annotations

import builtins
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from lossbench.compare import compare
from lossbench.errors import UserError
from lossbench.results import load_curves, load_trials
from tests.resultgen import noisy, write_results

pytest.importorskip("matplotlib")

from lossbench.report import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_valid(paths):
    png, svg = sorted(paths, key=lambda p: p.suffix)
    assert png.suffix == ".png" and svg.suffix == ".svg"
    data = png.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg") and len(list(root.iter())) > 10


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    root = tmp_path_factory.mktemp("plots") / "res"
    values = noisy((7, 4, 6), shift=[0.0, 0.03, 0.0, -0.03])
    write_results(root, values, losses=["ce", "focal", "poly", "anyloss"], curves=True)
    trials = load_trials([root])
    return compare(trials, n_resamples=500), trials, load_curves([root])


def test_all_plots(compared, tmp_path):
    result, trials, curves = compared
    out = plots.all_plots(result, trials, curves, tmp_path)
    assert set(out) == {"critical_difference", "seeds", "cost_quality", "curves"}
    for paths in out.values():
        assert_valid(paths)


def test_cliques_from_significance():
    ranks = pd.Series({"a": 1.0, "b": 1.5, "c": 2.5, "d": 3.8})
    sig = pd.DataFrame(False, index=list("abcd"), columns=list("abcd"))
    for x, y in (("a", "c"), ("a", "d"), ("b", "d")):
        sig.loc[x, y] = sig.loc[y, x] = True
    assert plots.cliques(ranks, sig) == [["a", "b"], ["b", "c"], ["c", "d"]]
    assert plots.cliques(ranks, sig & False) == [["a", "b", "c", "d"]]


def test_cd_diagram_standalone(tmp_path):
    ranks = pd.Series({"ce": 1.2, "focal": 2.0, "poly": 2.8})
    sig = pd.DataFrame(False, index=ranks.index, columns=ranks.index)
    assert_valid(plots.cd_diagram(ranks, sig, tmp_path / "cd"))


def test_pareto_front():
    cost = np.array([1.0, 2.0, 3.0, 4.0])
    quality = np.array([0.7, 0.8, 0.75, 0.9])
    assert plots.pareto_front(cost, quality).tolist() == [True, True, False, True]
    assert plots.pareto_front(cost, quality, higher_is_better=False).tolist() == [True, False, False, False]


def test_missing_matplotlib_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(UserError) as exc:
        plots.pyplot()
    assert "pip install 'lossbench[plots]'" in str(exc.value)
