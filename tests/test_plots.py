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
from tests.resultgen import make_rows, noisy, write_results

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
    assert set(out) == {"critical_difference", "per_dataset", "seeds", "cost_quality", "curves"}
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


def drawn_figure(monkeypatch, draw):
    """Run ``draw()`` and return the matplotlib figure it would have saved (its data, not its pixels)."""
    figures = []

    def keep(fig, stem, formats=()):
        figures.append(fig)
        plots.pyplot().close(fig)  # closed figures keep their artists and data
        return []

    monkeypatch.setattr(plots, "save", keep)
    draw()
    assert len(figures) == 1
    return figures[0]


def clear_cut(higher_is_better: bool = True):
    """Two datasets, baseline "ce" and three losses: +0.1, −0.1 and ±0.01 around it on every seed."""
    base = np.array([0.60, 0.62, 0.64, 0.66, 0.68, 0.70])
    wobble = np.array([0.01, -0.01] * 3)
    cell = np.stack([base, base + 0.1, base - 0.1, base + wobble])  # losses × seeds
    values = np.stack([cell, cell - 0.2])  # datasets × losses × seeds
    metric = "auroc" if higher_is_better else "brier"
    rows = make_rows(values, losses=["ce", "up", "down", "same"], metric=metric, higher_is_better=higher_is_better)
    result = compare(pd.DataFrame(rows), baseline="ce", n_resamples=500)
    assert result.metric.higher_is_better is higher_is_better
    return result


@pytest.mark.parametrize("higher_is_better", [True, False])
def test_dataset_intervals_give_means_cis_and_paired_verdicts(higher_is_better):
    result = clear_cut(higher_is_better)
    frame = plots.dataset_intervals(result).set_index(["dataset", "loss"])
    assert frame.loc[("d0", "ce"), "mean"] == pytest.approx(0.65)
    assert frame.loc[("d1", "up"), "mean"] == pytest.approx(0.55)
    assert frame.loc[("d0", "same"), "mean"] == pytest.approx(0.65)
    per = result.per_dataset.set_index(["dataset", "loss"])
    assert frame["ci_low"].to_dict() == per.loc[frame.index, "ci_low"].to_dict()
    assert (frame["ci_low"] < frame["mean"]).all() and (frame["mean"] < frame["ci_high"]).all()
    better, worse = ("up", "down") if higher_is_better else ("down", "up")
    verdicts = frame["verdict"].unstack("loss")
    assert (verdicts["ce"] == "baseline").all() and (verdicts[better] == "better").all()
    assert (verdicts[worse] == "worse").all() and (verdicts["same"] == "undecided").all()


def test_interval_panels_draw_every_loss_at_its_mean_and_ci(monkeypatch, tmp_path):
    result = clear_cut()
    frame = plots.dataset_intervals(result)
    fig = drawn_figure(monkeypatch, lambda: plots.interval_panels(frame, tmp_path / "p", "auroc", result.losses, "ce"))
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["d0", "d1"]
    for ax in panels:
        sub = frame[frame["dataset"] == ax.get_title()].set_index("loss")
        assert [t.get_text() for t in ax.get_yticklabels()] == result.losses
        seen = {}
        for bars in ax.containers:  # one errorbar set per verdict
            line, _, (segments,) = bars.lines
            for x, y, seg in zip(line.get_xdata(), line.get_ydata(), segments.get_segments(), strict=True):
                seen[result.losses[int(y)]] = (bars.get_label(), x, seg[0][0], seg[1][0])
        assert set(seen) == set(result.losses)
        for loss, (verdict, x, lo, hi) in seen.items():
            row = sub.loc[loss]
            assert verdict == row["verdict"]
            assert (x, lo, hi) == pytest.approx((row["mean"], row["ci_low"], row["ci_high"]))
        dashed = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
        assert len(dashed) == 1 and dashed[0].get_xdata()[0] == pytest.approx(sub.loc["ce", "mean"])


def test_curves_draw_every_loss_with_one_colour_across_panels(monkeypatch, compared, tmp_path):
    result, trials, curves = compared
    # "focal" has no curves on d0: it must still keep its colour (and its legend entry) elsewhere
    gone = set(trials.loc[(trials["dataset"] == "d0") & (trials["loss"] == "focal"), "trial_id"])
    curves = curves[~curves["trial_id"].isin(gone)]
    fig = drawn_figure(
        monkeypatch, lambda: plots.learning_curves(curves, trials, tmp_path / "c", "auroc", losses=result.losses)
    )
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == sorted(result.datasets)
    colours: dict[str, set] = {}
    for ax in panels:
        lines = {ln.get_label(): ln for ln in ax.lines}
        expected = [n for n in result.losses if not (ax.get_title() == "d0" and n == "focal")]
        assert list(lines) == expected
        for loss, ln in lines.items():
            colours.setdefault(loss, set()).add(ln.get_color())
            # the mean over seeds of value × (1 − 0.5^(epoch+1)) (tests.resultgen's curves)
            final = trials[(trials["dataset"] == ax.get_title()) & (trials["loss"] == loss)]["value"]
            epochs = np.arange(5)
            np.testing.assert_allclose(ln.get_xdata(), epochs)
            np.testing.assert_allclose(ln.get_ydata(), final.mean() * (1 - 0.5 ** (epochs + 1)), rtol=1e-9)
    assert all(len(c) == 1 for c in colours.values()) and len(set().union(*colours.values())) == len(result.losses)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == result.losses


def test_all_plots_write_only_the_formats_asked_for(compared, tmp_path, monkeypatch):
    result, trials, curves = compared
    asked = []

    def record(fig, stem, formats=plots.FORMATS):
        asked.append(tuple(formats))
        plots.pyplot().close(fig)
        return []

    monkeypatch.setattr(plots, "save", record)
    plots.all_plots(result, trials, curves, tmp_path, formats=("png",))
    assert asked == [("png",)] * 5  # every plot, none rendered twice
