"""The image-side methods train through the real trial path and yield ``ok`` rows."""

from __future__ import annotations

import math

import pytest

from lossbench.trial import execute
from tests.methods.test_smoke import IMAGE_METHODS

from .helpers import image_spec

CASES = [
    ("noprop-dt:T=3", "images:digits", "image", ("accuracy", "nc1")),
    ("symface", "images:digits", "image", ("accuracy",)),
    ("hyp-ce", "images:digits#positive=0", "one-class", ("auroc", "eer")),
    ("hyp-pc:distance=code", "images:digits#positive=0", "one-class", ("auroc", "eer")),
]


def test_cases_cover_the_image_methods() -> None:
    assert {c[0].split(":")[0] for c in CASES} == IMAGE_METHODS


@pytest.mark.parametrize(("loss", "uri", "task", "metrics"), CASES, ids=[c[0] for c in CASES])
def test_method_trains(loss: str, uri: str, task: str, metrics: tuple[str, ...]) -> None:
    spec = image_spec(loss, uri, task=task, epochs=1, metrics=metrics, primary=metrics[0])
    row = execute(spec).row
    assert row["status"] == "ok", row["error_msg"]
    assert 0.0 <= row[f"m_{metrics[0]}"] <= 1.0
    if "nc1" in metrics:
        assert math.isnan(row["m_nc1"])  # NoProp predicts through its blocks: no penultimate layer to read


@pytest.mark.slow
def test_symface_needs_images() -> None:
    pytest.importorskip("mnist1d")
    spec = image_spec("symface", "images:mnist1d", epochs=1)
    row = execute(spec).row
    assert row["status"] == "failed" and "image inputs" in row["error_msg"]


def test_nc_metrics_on_a_plain_cnn() -> None:
    row = execute(image_spec("ce", epochs=1, metrics=("accuracy", "nc1", "nc2"))).row
    assert row["status"] == "ok" and row["m_nc1"] > 0 and 0 <= row["m_nc2"] < 1
