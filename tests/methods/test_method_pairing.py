"""Seeding: the same seed reproduces a trial; different objectives share initial weights and batches."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

import lossbench.trial
from lossbench.trial import execute
from tests.methods.trials import make_spec

URI = "synthetic:classification#n=240&classes=3&minority=0.3"
REAL_TRAIN = lossbench.trial.train
METRIC_COLUMNS = ("m_accuracy", "m_log_loss", "m_ece", "value", "epochs_run", "best_epoch")


@pytest.mark.parametrize("loss", ["rankmixup-mrl", "rankmixup-mndcg", "storm:warmup=1", "dhkd", "ca-calibration",
                                  "agg-interp"])
def test_same_seed_same_result(loss: str) -> None:
    a = execute(make_spec(loss, uri=URI, seed=3)).row
    b = execute(make_spec(loss, uri=URI, seed=3)).row
    assert a["status"] == b["status"] == "ok"
    for col in METRIC_COLUMNS:
        assert a[col] == b[col], col


def _trace(monkeypatch: pytest.MonkeyPatch, loss: str, seed: int) -> tuple[dict[str, torch.Tensor], list[list[int]]]:
    """Initial weights and the first epoch's batch indices that the method receives."""
    seen: dict[str, Any] = {}

    def spy(task, model, prepared, loss_, method, **kw):  # type: ignore[no-untyped-def]
        seen.setdefault("init", copy.deepcopy(model.state_dict()))
        batches: list[list[int]] = seen.setdefault("batches", [])
        real_update = method.update

        def update(model_, batch, loss__, optimizer, state):  # type: ignore[no-untyped-def]
            if state.epoch == 0:
                batches.append(batch.index.tolist())
            return real_update(model_, batch, loss__, optimizer, state)

        method.update = update
        return REAL_TRAIN(task, model, prepared, loss_, method, **kw)

    monkeypatch.setattr(lossbench.trial, "train", spy)
    assert execute(make_spec(loss, uri=URI, seed=seed, epochs=1)).status == "ok"
    return seen["init"], seen["batches"]


def test_different_objectives_same_seed_share_weights_and_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    ref_w, ref_b = _trace(monkeypatch, "ce", seed=5)
    for loss in ("focal", "rankmixup-mrl", "storm:warmup=0", "agg-bag", "temp-scaling"):
        w, b = _trace(monkeypatch, loss, seed=5)
        assert b == ref_b, loss
        assert w.keys() == ref_w.keys()
        for k in w:
            assert torch.equal(w[k], ref_w[k]), (loss, k)
    other_w, other_b = _trace(monkeypatch, "ce", seed=6)
    assert other_b != ref_b
    assert not all(torch.equal(other_w[k], ref_w[k]) for k in ref_w)
