"""Every registered method trains through the real trial path and yields an ``ok`` row."""

from __future__ import annotations

import pytest

from lossbench.methods import METHODS
from lossbench.trial import execute
from tests.methods.trials import make_spec

BINARY = "synthetic:classification#n=240&minority=0.4"
MULTI = "synthetic:classification#n=240&classes=3&minority=0.3"
SPECS = [
    "rankmixup-mrl",
    "rankmixup-mrl:num_mixup=2,use_prob=true",
    "rankmixup-mndcg",
    "storm:warmup=1",
    "dhkd",
    "ca-calibration",
    "temp-scaling",
    "agg-bag",
    "agg-instance",
    "agg-interp:rho=0.25",
    "agg-bag:bag_size=4,loss=squared",
]


#: Image-side methods (image inputs, one-class data): their smoke tests are in tests/image/test_smoke.py.
IMAGE_METHODS = {"noprop-dt", "symface", "hyp-ce", "hyp-pc"}


def test_every_method_is_covered() -> None:
    # classification methods here; segmentation methods in tests/segmentation/test_seg_methods.py
    covered = {s.split(":")[0] for s in SPECS}
    # metric-learning methods (metrix, g-simclr) train embeddings: tests/retrieval covers them
    classification = {n for n in METHODS.names() if METHODS.get(n).info.tasks & {"binary", "multiclass"}}
    assert covered == classification - {"plain"} - IMAGE_METHODS


@pytest.mark.parametrize("uri", [BINARY, MULTI], ids=["binary", "multiclass"])
@pytest.mark.parametrize("loss", SPECS)
def test_method_trains(loss: str, uri: str) -> None:
    result = execute(make_spec(loss, uri=uri, epochs=3))
    assert result.status == "ok", result.row["error_msg"]
    assert 0.0 <= result.row["m_accuracy"] <= 1.0


def test_dhkd_records_teacher_and_teacher_equals_plain_ce() -> None:
    # The teacher is trained with ce from the same initial weights, batches and seed: it is the plain ce model.
    dhkd = execute(make_spec("dhkd", uri=BINARY, epochs=3)).row
    ce = execute(make_spec("ce", uri=BINARY, epochs=3)).row
    assert dhkd["m_teacher_accuracy"] == pytest.approx(ce["m_accuracy"])
    assert dhkd["m_teacher_log_loss"] == pytest.approx(ce["m_log_loss"])


def test_calibration_keeps_accuracy_of_the_plain_model() -> None:
    ce = execute(make_spec("ce", uri=MULTI, epochs=3)).row
    for name in ("temp-scaling", "ca-calibration"):
        row = execute(make_spec(name, uri=MULTI, epochs=3)).row
        assert row["m_accuracy"] == pytest.approx(ce["m_accuracy"])
        assert row["m_temperature"] > 0


def test_aggregate_rejects_another_base_loss() -> None:
    result = execute(make_spec("agg-bag:base=weighted-ce", uri=BINARY, epochs=1))
    assert result.status == "failed"
    assert "base" in result.row["error_msg"]
