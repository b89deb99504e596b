"""PULASki (Sinkhorn between sample sets and raters) and SFDA (entropy + KL prior), end to end on tiny data."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

from lossbench.errors import SpecError
from lossbench.methods.segmentation import samples_distance
from lossbench.objectives import parse_objective
from lossbench.runner import expand
from lossbench.suite import parse_suite
from lossbench.trial import execute

from .helpers import tiny_suite


def test_pulaski_distance_is_geomlosss_sinkhorn_divergence() -> None:
    geomloss = pytest.importorskip("geomloss")
    g = torch.Generator().manual_seed(1)
    pred, raters = torch.rand(2, 3, 4, 4, generator=g), (torch.rand(2, 3, 4, 4, generator=g) < 0.3).long()
    ref = geomloss.SamplesLoss("sinkhorn", p=2, blur=0.05, debias=True)(pred.flatten(2), raters.flatten(2).float())
    assert torch.equal(samples_distance(pred, raters, 0.05), ref)


def test_pulaski_refuses_without_geomloss(monkeypatch: pytest.MonkeyPatch) -> None:
    # no fallback solver: its divergence differed from geomloss's by up to 5 %, so results depended on the install
    monkeypatch.setitem(sys.modules, "geomloss", None)  # import geomloss now raises ImportError
    rows = _run(tiny_suite(
        datasets=["seg:vessels#size=32&n=16&raters=3"], losses=["pulaski"], metrics=[],
        model={"family": "prob-unet", "channels": [4, 8], "latent": 2},
    ))
    assert rows[0]["status"] == "failed" and "geomloss" in rows[0]["error_msg"], rows[0]["error_msg"]
    with pytest.raises(SpecError, match="backend"):
        parse_objective("pulaski:backend=own")


def _run(suite: dict) -> list[dict]:
    trials, _ = expand(parse_suite(suite, "tiny.toml"))
    return [execute(t).row for t in trials]


def test_pulaski_and_sfda_trials_run() -> None:
    pytest.importorskip("geomloss")
    rows = _run(tiny_suite(
        datasets=["seg:vessels#size=32&n=16&raters=3&shift=1"],
        losses=["pulaski", "sfda-entropy-kl:adapt_epochs=1"],
        metrics=["iou"],
        model={"family": "prob-unet", "channels": [4, 8], "latent": 2},
    ))
    assert [r["status"] for r in rows] == ["ok", "ok"], [r["error_msg"] for r in rows]
    assert "m_latent_kl" in rows[0] and "m_source_only_dice" in rows[1]


def test_methods_name_what_they_miss() -> None:
    rows = _run(tiny_suite(losses=["pulaski", "sfda-entropy-kl"], metrics=[]))
    assert [r["status"] for r in rows] == ["failed", "failed"]
    assert "prob-unet" in rows[0]["error_msg"]
    assert "shift=1" in rows[1]["error_msg"]


def test_segmentation_trials_pair_and_record_topology(tmp_path: Path) -> None:
    pytest.importorskip("skimage")  # the cldice metric's skeletons
    rows = _run(tiny_suite(losses=["dice", "betti-matching:alpha=0.1,warmup=0", "betti-matching"]))
    assert [r["status"] for r in rows] == ["ok", "ok", "ok"], [r["error_msg"] for r in rows]
    for r in rows:
        assert 0 <= r["m_dice"] <= 1 and r["m_hd95"] >= 0 and r["m_betti_matching_error"] >= 0
        assert r["n_train"] + r["n_val"] + r["n_test"] == 16
    # one epoch, inside the default warm-up: the loop passes the epoch and the loss is Dice alone (paired trials)
    by_loss = {r["loss"]: r for r in rows}
    dice, warm = (by_loss[name] for name in ("dice", "betti-matching"))
    assert {k: v for k, v in dice.items() if k.startswith("m_")} == {k: v for k, v in warm.items() if k.startswith("m_")}


def test_plot_examples(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    import numpy as np

    from lossbench.report.segmentation_plots import plot_examples

    imgs = np.random.default_rng(0).random((2, 1, 16, 16))
    masks = (imgs[:, 0] > 0.5).astype(np.uint8)
    out = plot_examples(imgs, masks, {"dice": imgs[:, 0], "bce": 1 - imgs[:, 0]}, tmp_path / "ex.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_betti_matching_keeps_no_checkpoint_from_its_dice_warm_up(monkeypatch: pytest.MonkeyPatch) -> None:
    from lossbench.tasks.segmentation import Segmentation

    original = Segmentation.evaluate
    val_calls: list[int] = []

    def falling(self, model, prepared, split, metrics, **kwargs):  # type: ignore[no-untyped-def]
        out = original(self, model, prepared, split, metrics, **kwargs)
        if split == "val":  # validation Dice only falls: every epoch is worse than the first
            val_calls.append(1)
            out = {**out, "dice": 1.0 - 0.1 * len(val_calls)}
        return out

    monkeypatch.setattr(Segmentation, "evaluate", falling)
    (bm,) = _run(tiny_suite(losses=["betti-matching:warmup=3"], training={"epochs": 7, "batch_size": 4, "patience": 1}))
    assert bm["status"] == "ok", bm["error_msg"]
    # kept: the first epoch with the Betti matching term; patience counts from there (stopped after epoch 4 of 7)
    assert (bm["best_epoch"], bm["epochs_run"]) == (3, 5)


def test_sfda_objective_is_entkl_prop() -> None:
    # p = 0.5 everywhere, prior (0.9, 0.1), nu = (0.1, 0.9): entropy 0.5 ln 2 and KL(tau_hat ‖ tau) with tau_hat = (0.5, 0.5)
    from lossbench.methods.segmentation import sfda_objective

    logits = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    prior = torch.tensor([0.9, 0.1], dtype=torch.float64)
    kl = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    assert float(sfda_objective(logits, prior, 0.9, lambda_ent=0.0)) == pytest.approx(kl, rel=1e-8)  # 0.510826
    assert float(sfda_objective(logits, prior, 0.9)) == pytest.approx(0.5 * math.log(2) + kl, rel=1e-8)  # 0.857399


def test_sfda_class_ratio_is_norm_soft_size() -> None:
    # half the pixels at p_fg = 0.9, half at 0.6: p / max_c p sums to (1/9 + 2/3, 2) per pair, so tau_hat = (0.28, 0.72)
    # (the mean of p would give (0.25, 0.75))
    from lossbench.methods.segmentation import class_ratio, sfda_objective

    p1 = torch.tensor([0.9, 0.6], dtype=torch.float64).repeat(8).reshape(1, 1, 4, 4)
    p = torch.cat([1 - p1, p1], 1)
    torch.testing.assert_close(class_ratio(p), torch.tensor([[0.28, 0.72]], dtype=torch.float64))
    logits = torch.log(p1 / (1 - p1))
    prior = torch.tensor([0.9, 0.1], dtype=torch.float64)
    kl = 0.28 * math.log(0.28 / 0.9) + 0.72 * math.log(0.72 / 0.1)
    assert float(sfda_objective(logits, prior, 0.9, lambda_ent=0.0)) == pytest.approx(kl, rel=1e-8)


@pytest.mark.slow
def test_sfda_objective_gradient_matches_finite_differences() -> None:
    from lossbench.methods.segmentation import sfda_objective

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 2, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    prior = torch.tensor([0.8, 0.2])
    assert torch.autograd.gradcheck(lambda z: sfda_objective(z, prior, 0.9), (logits,))
