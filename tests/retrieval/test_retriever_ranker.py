"""ANCE and AR2: the cross-encoder ranker, the index, the objectives (hand values, gradients) and both methods
through the real training loop on the bundled query–document corpus."""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lossbench.config import TrainingConfig
from lossbench.losses import make_loss
from lossbench.methods.adversarial_retrieval import (
    ance_nll,
    ar2_phase,
    ar2_retriever_loss,
    ar2_rewards,
    ranker_loss,
    refresh_due,
)
from lossbench.methods.base import Batch, Plain
from lossbench.methods.dense_index import CorpusIndex, sample_negatives, top_k
from lossbench.methods.retriever_ranker import ANCE, AR2, build_index
from lossbench.models.ranker import CrossEncoderRanker, score_candidates
from lossbench.models.retrieval import DualEncoder
from lossbench.sources import load_dataset
from lossbench.tasks import TASK_TYPES
from lossbench.tasks.base import Prepared
from lossbench.train import step_state, train
from tests.retrieval.test_retrieval_tasks import spec

# --- the ranker ---------------------------------------------------------------------------------------------------

def unit(*shape: int, seed: int = 0) -> torch.Tensor:
    return F.normalize(torch.rand(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_ranker_starts_as_scaled_feature_cosine() -> None:
    torch.manual_seed(0)
    ranker = CrossEncoderRanker(16, width=8, temperature=0.05).eval()
    x = unit(3, 5, 16)
    expected = 20.0 * (x[:, :1] * x[:, 1:]).sum(-1)
    torch.testing.assert_close(ranker(x), expected)


def test_ranker_scores_each_pair_jointly_and_independently_of_the_other_candidates() -> None:
    torch.manual_seed(0)
    ranker = CrossEncoderRanker(16, width=8)
    torch.nn.init.normal_(ranker.mlp[-1].weight)  # a trained-looking ranker: the interaction term is not zero
    ranker.eval()
    x = unit(2, 4, 16)
    out = ranker(x)
    assert out.shape == (2, 3)
    perm = torch.tensor([0, 3, 1, 2])
    torch.testing.assert_close(ranker(x[:, perm]), out[:, perm[1:] - 1])
    torch.testing.assert_close(ranker.score(x[:, 0], x[:, 2]), out[:, 1])
    torch.testing.assert_close(score_candidates(ranker, x[:, 0], x[0, 1:], torch.tensor([[0, 1, 2], [0, 1, 2]])),
                               ranker(torch.cat([x[:, :1], x[:1, 1:].expand(2, -1, -1)], dim=1)))


def test_ranker_size_and_gradients() -> None:
    ranker = CrossEncoderRanker(2048)
    assert sum(p.numel() for p in ranker.parameters()) == 655_874
    x = unit(2, 3, 2048)
    ranker(x).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in ranker.parameters())
    with pytest.raises(ValueError, match="query, C documents"):
        ranker(unit(2, 2048))


# --- the index ----------------------------------------------------------------------------------------------------

def test_top_k_orders_by_cosine_then_document_id_and_excludes_the_positive() -> None:
    queries = np.array([[1.0, 0.0], [0.0, 1.0]])
    documents = np.array([[1.0, 1.0], [2.0, 0.0], [1.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    ids, cos = top_k(queries, documents, 3, doc_ids=np.array([10, 11, 12, 13, 14]), exclude=np.array([14, 10]))
    # query 0: docs 11 (cos 1) and 14 (cos 1, excluded), then the tie 10/12 (cos 0.707) in id order
    assert ids.tolist() == [[11, 10, 12], [13, 12, 11]]
    np.testing.assert_allclose(cos[0], [1.0, 0.5**0.5, 0.5**0.5])
    assert cos[1, 2] == 0.0


def test_sample_negatives_draws_without_replacement_from_each_row_deterministically() -> None:
    candidates = torch.arange(40).reshape(4, 10)
    draw = sample_negatives(candidates, 6, torch.Generator().manual_seed(3))
    assert draw.shape == (4, 6)
    for row in range(4):
        assert len(set(draw[row].tolist())) == 6 and set(draw[row].tolist()) <= set(candidates[row].tolist())
    assert torch.equal(draw, sample_negatives(candidates, 6, torch.Generator().manual_seed(3)))
    assert sample_negatives(candidates[:, :2], 3, torch.Generator()).shape == (4, 3)  # fewer than asked: repeats


@cache
def prepared_docs() -> Prepared:
    return TASK_TYPES.get("retrieval").prepare(load_dataset("bundled:stdlib-docs"), spec("bundled:stdlib-docs", "infonce"))


def retriever(seed: int) -> DualEncoder:
    torch.manual_seed(seed)
    return DualEncoder(2048, 64, hidden=(32,))


def test_index_refresh_is_deterministic_for_a_seed_and_retrieves_other_training_documents() -> None:
    prepared = prepared_docs()
    a, b = build_index(prepared, 20), build_index(prepared, 20)
    ids = a.refresh(retriever(0))
    assert torch.equal(ids, b.refresh(retriever(0)))
    assert ids.shape == (len(prepared.train), 20)
    assert not (ids == prepared.train.y[:, None]).any()  # never the query's own document
    assert set(ids.unique().tolist()) <= set(prepared.train.y.tolist())  # training documents only
    assert not torch.equal(ids, build_index(prepared, 20).refresh(retriever(1)))  # a different retriever
    assert a.refreshes == 1 and a.seconds > 0


def test_index_follows_the_retriever() -> None:
    """An index built from a retriever whose towers are the identity retrieves by raw feature cosine."""
    prepared = prepared_docs()
    model = DualEncoder(2048, 2048, hidden=(4,), skip="orthogonal")  # identity skip, zero residual
    index = build_index(prepared, 5)
    ids = index.refresh(model)
    raw, _ = top_k(prepared.train.X[:, 0].numpy(), prepared.info["corpus"][index.pool].numpy(), 5, index.pool,
                   prepared.train.y.numpy())
    assert ids.tolist() == raw.tolist()


def test_negatives_need_a_refresh_first() -> None:
    index = CorpusIndex(torch.zeros(3, 2), torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), np.arange(3), 2)
    with pytest.raises(RuntimeError, match="refresh"):
        index.negatives(torch.tensor([0]), 1, torch.Generator())


# --- the objectives -----------------------------------------------------------------------------------------------

def test_ance_nll_by_hand_and_equal_to_two_way_log_softmax_with_one_negative() -> None:
    logits = torch.tensor([[2.0, 1.0, 0.0]])
    expected = (math.log1p(math.exp(-1.0)) + math.log1p(math.exp(-2.0))) / 2
    assert float(ance_nll(logits)) == pytest.approx(expected)
    pair = torch.tensor([[0.3, 1.2], [2.0, -1.0]])
    torch.testing.assert_close(ance_nll(pair), -F.log_softmax(pair, dim=1)[:, 0])


def test_ranker_loss_is_listwise_cross_entropy_and_rdrop_adds_symmetric_kl() -> None:
    logits = torch.tensor([[1.0, 0.0, 0.0]])
    assert float(ranker_loss(logits)) == pytest.approx(-math.log(math.e / (math.e + 2)))
    assert float(ranker_loss(logits, logits.clone(), rdrop=1.0)) == pytest.approx(float(ranker_loss(logits)))
    other = torch.tensor([[0.0, 0.0, 0.0]])
    p, q = np.array([math.e, 1, 1]) / (math.e + 2), np.full(3, 1 / 3)
    kl = 0.5 * (np.sum(p * np.log(p / q)) + np.sum(q * np.log(q / p)))
    ce = 0.5 * (-math.log(p[0]) - math.log(q[0]))
    assert float(ranker_loss(logits, other, rdrop=2.0)) == pytest.approx(ce + 2.0 * kl)


def test_ar2_rewards_by_hand() -> None:
    rewards = ar2_rewards(torch.tensor([[2.0, 2.0, -1.0, 5.0]]))
    expected = [math.log(0.5), math.log(0.5), -math.log1p(math.exp(-3.0)), -math.log1p(math.exp(3.0))]
    np.testing.assert_allclose(rewards[0].numpy(), expected, rtol=1e-6)


def test_ar2_retriever_loss_by_hand() -> None:
    retriever = torch.tensor([[1.0, 0.0, -1.0]])
    ranker = torch.tensor([[1.0, 2.0, -2.0]])
    log_p = F.log_softmax(retriever, dim=1)[0].numpy()
    r = [math.log(0.5), -math.log1p(math.exp(1.0)), -math.log1p(math.exp(-3.0))]
    teacher = F.softmax(ranker, dim=1)[0].numpy()
    adversarial, distillation = float(np.dot(r, log_p)), float(-np.dot(teacher, log_p))
    assert float(ar2_retriever_loss(retriever, ranker, 0.5)) == pytest.approx(0.5 * adversarial + 0.5 * distillation)
    assert float(ar2_retriever_loss(retriever, ranker, 1.0)) == pytest.approx(adversarial)
    # λ = 0: cross-entropy against the ranker's (tempered) distribution
    soft = F.softmax(ranker / 2.0, dim=1)
    torch.testing.assert_close(ar2_retriever_loss(retriever, ranker, 0.0, ranker_temperature=2.0),
                               F.cross_entropy(retriever, soft, reduction="none"))


def test_ar2_adversarial_gradient_favours_the_negatives_that_fool_the_ranker() -> None:
    retriever = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)  # uniform retriever
    ranker = torch.tensor([[3.0, 4.0, -3.0]], dtype=torch.float64, requires_grad=True)  # doc 1 fools the ranker
    ar2_retriever_loss(retriever, ranker, adv_lambda=1.0).sum().backward()
    grad = retriever.grad[0]
    assert grad[1] < grad[0] < 0 < grad[2]  # a descent step raises doc 1 most and lowers the easy doc 2
    assert ranker.grad is None  # the ranker is a fixed critic in the retriever's step
    x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    critic = torch.randn(4, 6, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: ar2_retriever_loss(t, critic, 0.3, 0.7), (x,))
    assert torch.autograd.gradcheck(lambda t: ranker_loss(t, t * 0.5, rdrop=1.0), (x,))
    assert torch.autograd.gradcheck(ance_nll, (x,))


def test_ar2_schedule() -> None:
    phases = [ar2_phase(s, 4, 1) for s in range(9)]
    assert phases == ["ranker", "retriever", "retriever", "retriever"] * 2 + ["ranker"]
    assert ar2_phase(499, 2000, 500) == "ranker" and ar2_phase(500, 2000, 500) == "retriever"
    assert [s for s in range(10) if refresh_due(s, 4)] == [0, 4, 8]
    assert all(ar2_phase(s, 4, 0) == "retriever" for s in range(8))


# --- the methods through the training loop ------------------------------------------------------------------------

TRAINING = TrainingConfig(epochs=2, batch_size=128, lr=0.001, patience=0)


def run(method: object, seed: int = 0) -> tuple[DualEncoder, object]:
    prepared = prepared_docs()
    model = retriever(seed)
    loss = make_loss("infonce")
    train(TASK_TYPES.get("retrieval"), model, prepared, loss, method, training=TRAINING, seed=seed,
          primary_metric="recall_at_1", metrics=("recall_at_1", "recall_at_5", "mrr_at_10"))
    return model, method


@pytest.mark.slow
def test_ance_trains_on_index_negatives_and_is_deterministic() -> None:
    model, method = run(ANCE(refresh_every=2))
    steps = 2 * math.ceil(len(prepared_docs().train) / 128)
    assert method.record()["index_refreshes"] == math.ceil(steps / 2)
    again, _ = run(ANCE(refresh_every=2))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True))


def test_ance_batches_carry_retrieved_negatives() -> None:
    prepared = prepared_docs()
    method, model = ANCE(top_k=5), retriever(0)
    method.setup(model, prepared, make_loss("infonce"), step_state(0))
    seen: list[torch.Tensor] = []
    forward = model.forward
    model.forward = lambda x: seen.append(x) or forward(x)  # type: ignore[method-assign]
    rows = torch.arange(8)
    batch = Batch(prepared.train.X[rows], prepared.train.y[rows], rows)
    method.step(model, batch, make_loss("infonce"), step_state(0))
    x = seen[0]
    assert x.shape == prepared.train.X[rows].shape
    torch.testing.assert_close(x[:, :2], prepared.train.X[rows, :2])  # query and positive unchanged
    corpus = prepared.info["corpus"]
    for i in range(8):
        top5 = method.index.ids[i]
        for h in range(x.shape[1] - 2):
            assert any(torch.equal(x[i, 2 + h], corpus[d]) for d in top5)


@pytest.mark.slow
def test_ar2_alternates_and_reports_reranked_metrics_and_cost() -> None:
    model, method = run(AR2(refresh_every=2, ranker_steps=1, negatives=5, top_k=8))
    method.finish(model, prepared_docs())
    row = method.record()
    steps = 2 * math.ceil(len(prepared_docs().train) / 128)
    assert row["ranker_updates"] == steps // 2 and row["index_refreshes"] == steps // 2
    assert row["ranker_params"] == 655_874
    assert {"rr_recall_at_1", "rr_recall_at_5", "rr_mrr_at_10"} <= set(row)
    assert 0.0 < row["rr_recall_at_1"] <= row["rr_recall_at_5"] <= 1.0
    assert row["index_s"] > 0 and row["ranker_s"] > 0 and row["rerank_s"] > 0


def test_ar2_leaves_the_global_rng_and_the_initial_retriever_as_they_were() -> None:
    """Pairing: building the ranker does not move the RNG stream the loop and the retriever depend on."""
    model, prepared, loss = retriever(0), prepared_docs(), make_loss("infonce")
    torch.manual_seed(5)
    AR2().setup(model, prepared, loss, step_state(0))
    after = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(after, torch.rand(3))


@pytest.mark.slow
def test_warmup_epochs_train_the_base_loss_before_the_index_takes_over() -> None:
    """With a warm-up the first epoch is the plain base-loss step (the warm retriever of the references)."""
    steps_per_epoch = math.ceil(len(prepared_docs().train) / 128)
    _, ance = run(ANCE(refresh_every=2, warmup_epochs=1))
    assert ance.record()["index_refreshes"] == math.ceil(steps_per_epoch / 2)
    _, ar2 = run(AR2(refresh_every=2, ranker_steps=1, negatives=3, top_k=5, warmup_epochs=1))
    assert ar2.record()["ranker_updates"] == math.ceil(steps_per_epoch / 2)
    warm, _ = run(ANCE(warmup_epochs=2))  # warm for the whole run: exactly plain infonce
    plain, _ = run(Plain())
    assert all(torch.equal(a, b) for a, b in zip(warm.state_dict().values(), plain.state_dict().values(), strict=True))


def test_ar2_steps_update_only_their_own_player() -> None:
    prepared, model = prepared_docs(), retriever(0)
    method = AR2(negatives=4, top_k=6)
    state = step_state(0)
    method.setup(model, prepared, make_loss("infonce"), state)
    method.index.refresh(model)
    rows = torch.arange(16)
    x = method.candidates(Batch(prepared.train.X[rows], prepared.train.y[rows], rows), state)
    assert x.shape == (16, 2 + 4, 2048)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    def snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
        return [p.detach().clone() for p in module.parameters()]

    def same(module: torch.nn.Module, before: list[torch.Tensor]) -> bool:
        return all(torch.equal(p, b) for p, b in zip(module.parameters(), before, strict=True))

    retriever_before, ranker_before = snapshot(model), snapshot(method.ranker)
    assert math.isfinite(method.ranker_step(x))
    assert same(model, retriever_before) and not same(method.ranker, ranker_before)
    ranker_before = snapshot(method.ranker)
    assert math.isfinite(method.retriever_step(model, x, optimizer))
    assert same(method.ranker, ranker_before) and not same(model, retriever_before)
