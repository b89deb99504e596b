"""The packaged suites and the KEEL test suite parse; the KEEL CSVs load through csv: URIs."""

from __future__ import annotations

from pathlib import Path

import pytest

from lossbench.config import SplitConfig
from lossbench.sources import load_dataset
from lossbench.suite import load_suite, packaged_suites

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["imbalanced", "tabular", "ensloss-paper", "quickstart"])
def test_packaged_suite_parses(name: str) -> None:
    assert name in packaged_suites()
    suite = load_suite(name)
    assert suite.datasets and suite.primary_metric in suite.metrics


def test_imbalanced_suite_shape() -> None:
    suite = load_suite("imbalanced")
    assert len(suite.datasets) == 14 and all(d.startswith("openml:") for d in suite.datasets)
    assert suite.primary_metric == "f1_tuned"
    assert {"f1", "auprc", "mcc", "auroc", "balanced_accuracy", "gmean", "brier", "ece"} <= set(suite.metrics)


def test_ensloss_protocol() -> None:
    suite = load_suite("ensloss-paper")
    assert len(suite.datasets) == 14
    assert suite.config.split == SplitConfig(test=0.3, val=0.0)
    assert suite.config.training.optimizer == "sgd" and suite.config.training.epochs == 300


def test_keel_csv_suite_loads(monkeypatch: pytest.MonkeyPatch, keel_multiclass: Path) -> None:
    monkeypatch.chdir(ROOT)  # the suite's csv: paths are relative to the repository root
    suite = load_suite(str(ROOT / "tests" / "suites" / "keel-multiclass.toml"))
    ds = load_dataset(suite.datasets[0])
    assert ds.X.shape == (990, 13) and ds.n_classes == 11
    seg = load_dataset(suite.datasets[1])
    assert seg.n_classes == 7 and not any(c.startswith(" ") for c in seg.classes)
