"""ANCE and AR2 as training methods of the query–document task (``ance`` and ``ar2`` in :data:`METHODS`).

Both replace the task's lexical hard negatives by negatives retrieved with the current retriever from a
:class:`~lossbench.methods.dense_index.CorpusIndex` of the training documents, rebuilt every ``refresh_every``
steps inside :meth:`update` (the loop needs no hook). Objectives and sources: :mod:`lossbench.methods.adversarial_retrieval`.

* ``ance``: the base loss (``infonce`` by default: in-batch plus index negatives) on rows whose H negative slots
  are drawn from each query's top ``top_k``.
* ``ar2``: a :class:`~lossbench.models.ranker.CrossEncoderRanker` with its own optimiser and learning rate;
  each cycle of ``refresh_every`` steps refreshes the index, then makes ``ranker_steps`` ranker updates and
  retriever updates for the rest, both on the list [positive] + ``negatives`` drawn from the query's top
  ``top_k``. After training, :meth:`finish` reranks the retriever's top ``top_k`` of every test query with the
  ranker; :meth:`record` reports those ``rr_*`` metrics and the cost of the index and the ranker.

Both declare ``tasks = {"query-document"}``: a suite of another task type refuses them, and the ``retrieval``
task records them as skipped on class-as-relevance data. The ranker and its optimiser are method state
(:meth:`AR2.state_dict`): the loop restores them with the retriever's best validation epoch.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lossbench import streams
from lossbench.losses.base import Param
from lossbench.methods.adversarial_retrieval import ar2_phase, ar2_retriever_loss, ranker_loss, refresh_due
from lossbench.methods.base import Batch, Method, MethodContext, MethodInfo, StepState, register_method
from lossbench.methods.dense_index import CorpusIndex

QD = frozenset({"query-document"})
ANCE_CITATION = ("Xiong et al., Approximate Nearest Neighbor Negative Contrastive Learning for Dense Text Retrieval, "
                 "ICLR 2021 (microsoft/ANCE)")
AR2_CITATION = "Zhang et al., Adversarial Retriever-Ranker for Dense Text Retrieval, ICLR 2022 (microsoft/AR2)"


WARMUP = Param(0, "epochs of the base loss on the task's lexical negatives before the index takes over", low=0)


def build_index(prepared: Any, k: int) -> CorpusIndex:
    """The index of the task's training documents for its training queries (slot 0 of the training rows)."""
    own = prepared.train.y
    return CorpusIndex(corpus=prepared.info["corpus"].to(prepared.train.X.device), queries=prepared.train.X[:, 0],
                       own=own, pool=np.sort(own.cpu().numpy()), k=k)


@register_method
class ANCE(Method):
    """Hard negatives from the periodically rebuilt index of the current retriever, under the base loss."""

    info = MethodInfo(
        name="ance",
        family="retriever-ranker",
        tasks=QD,
        params={
            "top_k": Param(20, "documents retrieved per training query; negatives are drawn from them", low=1),
            "refresh_every": Param(4, "steps between index refreshes", low=1),
            "warmup_epochs": WARMUP,
        },
        citation=ANCE_CITATION,
        summary="Negatives drawn from the current retriever's top k, the index rebuilt every few steps.",
        base_loss="infonce",
    )

    def setup(self, model: nn.Module, prepared: Any, loss: nn.Module, state: StepState,
              context: MethodContext | None = None) -> None:
        self.index = build_index(prepared, self.top_k)
        self.start: int | None = None

    def step(self, model: nn.Module, batch: Batch, loss: nn.Module, state: StepState) -> torch.Tensor:
        if state.epoch < self.warmup_epochs:
            return super().step(model, batch, loss, state)
        self.start = state.step if self.start is None else self.start
        if refresh_due(state.step - self.start, self.refresh_every):
            self.index.refresh(model)
        assert state.generator is not None
        negatives = self.index.negatives(batch.index, batch.x.shape[1] - 2, state.generator)
        x = torch.cat([batch.x[:, :2], self.index.corpus[negatives]], dim=1)
        return loss(model(x), batch.y, **self.loss_kwargs(loss, batch, state))

    def record(self) -> dict[str, float]:
        return {"index_refreshes": float(self.index.refreshes), "index_s": self.index.seconds}


@register_method
class AR2(Method):
    """Adversarial retriever–ranker game: alternating ranker and retriever updates on retrieved candidates."""

    info = MethodInfo(
        name="ar2",
        family="retriever-ranker",
        tasks=QD,
        params={
            "negatives": Param(15, "retrieved negatives per query in the candidate list (AR2: 15)", low=1),
            "top_k": Param(20, "documents retrieved per query; negatives are drawn from them (AR2: 100)", low=1),
            "refresh_every": Param(4, "steps per cycle: index refresh, ranker steps, retriever steps (AR2: 2000)",
                                   low=1),
            "ranker_steps": Param(1, "ranker updates at the start of each cycle (AR2: 500)", low=0),
            "ranker_lr": Param(1e-4, "the ranker's Adam learning rate (AR2: 0.1 × the retriever's)", low=0.0,
                               low_open=True),
            "adv_lambda": Param(0.5, "λ: weight of the adversarial term against the distillation term", low=0.0,
                                high=1.0),
            "temperature": Param(0.05, "τ of the retriever's cosine logits", low=0.0, low_open=True),
            "ranker_temperature": Param(1.0, "T of the ranker's distribution fed back to the retriever", low=0.0,
                                        low_open=True),
            "rdrop": Param(0.0, "R-Drop weight on the ranker (two dropout passes); 0 as in the released code",
                           low=0.0),
            "width": Param(128, "ranker projection width", low=1),
            "dropout": Param(0.1, "ranker dropout", low=0.0, high=1.0, high_open=True),
            "warmup_epochs": WARMUP,
        },
        citation=AR2_CITATION,
        summary="Retriever and cross-encoder ranker trained as a minimax game on retrieved candidates.",
        base_loss="infonce",
    )

    def setup(self, model: nn.Module, prepared: Any, loss: nn.Module, state: StepState,
              context: MethodContext | None = None) -> None:
        from lossbench.models.ranker import CrossEncoderRanker

        seed = context.seed if context is not None else 0
        self.index = build_index(prepared, self.top_k)
        with torch.random.fork_rng(devices=[]):  # the ranker's init must not move the loop's global RNG stream
            streams.seed_torch(seed, "method_setup", "ranker")
            self.ranker = CrossEncoderRanker(prepared.n_features, width=self.width, dropout=self.dropout)
        self.ranker.to(device=prepared.train.X.device, dtype=prepared.train.X.dtype)  # float64 trials too
        self.ranker_optimizer = torch.optim.Adam(self.ranker.parameters(), lr=self.ranker_lr)
        self.metrics = tuple(context.metrics) if context is not None else ()
        self.ranker_s, self.rerank_s, self.ranker_updates = 0.0, 0.0, 0
        self.reranked: dict[str, float] = {}
        self.start: int | None = None

    def candidates(self, batch: Batch, state: StepState) -> torch.Tensor:
        """(B, 2 + C, F) rows [query, positive, C retrieved negatives]."""
        assert state.generator is not None
        negatives = self.index.negatives(batch.index, self.negatives, state.generator)
        return torch.cat([batch.x[:, :2], self.index.corpus[negatives]], dim=1)

    def update(self, model: nn.Module, batch: Batch, loss: nn.Module, optimizer: torch.optim.Optimizer,
               state: StepState) -> float:
        if state.epoch < self.warmup_epochs:  # the warm retriever of the reference: the base loss alone
            return super().update(model, batch, loss, optimizer, state)
        self.start = state.step if self.start is None else self.start
        step = state.step - self.start
        if refresh_due(step, self.refresh_every):
            self.index.refresh(model)
        x = self.candidates(batch, state)
        if ar2_phase(step, self.refresh_every, self.ranker_steps) == "ranker":
            return self.ranker_step(x)
        return self.retriever_step(model, x, optimizer)

    def ranker_step(self, x: torch.Tensor) -> float:
        """One update of the ranker (the maximiser) on the candidate rows ``x``."""
        start = time.perf_counter()
        self.ranker.train()
        logits = self.ranker(x)
        second = self.ranker(x) if self.rdrop > 0 else None
        value = ranker_loss(logits, second, self.rdrop).mean()
        self.ranker_optimizer.zero_grad(set_to_none=True)
        value.backward()
        self.ranker_optimizer.step()
        self.ranker_s += time.perf_counter() - start
        self.ranker_updates += 1
        return float(value.detach())

    def retriever_step(self, model: nn.Module, x: torch.Tensor, optimizer: torch.optim.Optimizer) -> float:
        """One update of the retriever (the minimiser) against the fixed ranker on the candidate rows ``x``."""
        start = time.perf_counter()
        self.ranker.eval()  # the reference scores the candidates with the ranker in eval mode
        with torch.no_grad():
            ranker_logits = self.ranker(x)
        self.ranker_s += time.perf_counter() - start
        emb = model(x)
        q, d = F.normalize(emb[:, :1], dim=-1), F.normalize(emb[:, 1:], dim=-1)
        logits = (q * d).sum(-1) / self.temperature  # (B, 1 + C), the positive first
        value = ar2_retriever_loss(logits, ranker_logits, self.adv_lambda, self.ranker_temperature).mean()
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        return float(value.detach())

    def state_dict(self) -> dict[str, Any]:
        return {"ranker": self.ranker.state_dict(), "optimizer": self.ranker_optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ranker.load_state_dict(state["ranker"])
        self.ranker_optimizer.load_state_dict(state["optimizer"])

    def finish(self, model: nn.Module, prepared: Any) -> nn.Module:
        """Rerank the retriever's top ``top_k`` of every test query with the ranker; kept for :meth:`record`."""
        from lossbench.metrics import METRICS
        from lossbench.metrics.retrieval import reranked_scores
        from lossbench.models.ranker import score_candidates
        from lossbench.tasks.query_document import embed_pairs, pair_relevance

        start = time.perf_counter()
        queries, docs = embed_pairs(model, prepared, "test")
        scores = queries @ docs.T
        candidates = np.argsort(-scores, axis=1, kind="stable")[:, : self.top_k]
        corpus = prepared.info["corpus"].to(prepared.test.X.device)
        ranked = score_candidates(self.ranker, prepared.test.X[:, 0], corpus,
                                  torch.as_tensor(candidates, device=corpus.device))
        rr = reranked_scores(scores, candidates, ranked.double().cpu().numpy())
        relevant = pair_relevance(prepared, "test")
        names = [m for m in self.metrics if METRICS.get(m).input == "ranking"] or ["recall_at_1", "recall_at_5", "mrr_at_10"]
        self.reranked = {f"rr_{m}": METRICS.get(m)(rr, relevant) for m in names}
        self.rerank_s = time.perf_counter() - start
        return model

    def record(self) -> dict[str, float]:
        return {**self.reranked, "index_refreshes": float(self.index.refreshes), "index_s": self.index.seconds,
                "ranker_updates": float(self.ranker_updates), "ranker_s": self.ranker_s,
                "rerank_s": self.rerank_s,
                "ranker_params": float(sum(p.numel() for p in self.ranker.parameters()))}
