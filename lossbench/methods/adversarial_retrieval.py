"""The objectives of ANCE and AR2 as plain torch functions, usable from any training loop.

Every function takes logits over one query's candidate list with the positive document in column 0:
``(B, 1 + C)`` = [positive, C retrieved negatives]. The retriever's logits are its cosines divided by a
temperature; the ranker's are :class:`~lossbench.models.ranker.CrossEncoderRanker` outputs.

**ANCE** (Xiong et al., "Approximate Nearest Neighbor Negative Contrastive Learning for Dense Text Retrieval",
ICLR 2021; ``microsoft/ANCE`` ``model/models.py`` ``BiEncoder.forward`` / ``NLL.forward``,
``drivers/run_ann_data_gen_dpr.py``, ``data/DPR_data.py``): negatives are retrieved from an index of the corpus
that a parallel job rebuilds from the latest checkpoint; the loss is the negative log-likelihood of the positive
against one negative at a time, ``−log(e^{s⁺} / (e^{s⁺} + e^{s⁻}))`` (:func:`ance_nll`).

**AR2** (Zhang et al., "Adversarial Retriever-Ranker for Dense Text Retrieval", ICLR 2022; ``microsoft/AR2``
``AR2/wiki/co_training_wiki_train.py``, ``train_flag`` 0 = retriever step, 1 = ranker step): a minimax game
``min_θ max_φ E_q E_{d⁻ ~ p_θ(·|q)} log p_φ(d⁺ | q, {d⁺, d⁻})`` between the retriever G_θ and the ranker D_φ on
the list [d⁺] ∪ D_q⁻ of retrieved candidates.

* ranker (maximiser): listwise cross-entropy of the positive (:func:`ranker_loss`);
* retriever (minimiser): ``λ·L_adv + (1 − λ)·L_dist`` (:func:`ar2_retriever_loss`) with the REINFORCE-style
  adversarial term ``L_adv = Σ_j r_j log p_θ(d_j)``, reward ``r_j = log σ(s_φ(d⁺) − s_φ(d_j))`` ≤ 0 (most
  negative for a document that fools the ranker), and the distillation regulariser
  ``L_dist = −Σ_j p_φ(d_j) log p_θ(d_j)``, ``p_φ = softmax(s_φ / T)`` — the ranker's distribution over the
  candidates fed back to the retriever (a KL(p_φ ‖ p_θ) up to p_φ's entropy, which has no gradient).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: AR2's settings for TriviaQA/NQ (``AR2/README.md`` step 5 and the argument defaults of the training script).
AR2_REFERENCE = {
    "negatives": 15,  # --number_neg: candidates per query besides the positive
    "top_k": 100,  # retrieved per training query at each refresh (inference_de_wiki_gpu.py); negatives drawn from it
    "retriever_lr": 1e-5,  # --learning_rate (AdamW, linear warm-up 10 % and decay, grad-norm clip 2.0)
    "ranker_lr": 1e-6,  # --reranker_learning_rate
    "adv_lambda": 0.5,  # --adv_lambda
    "ranker_temperature": 1.0,  # --temperature_normal
    "cycle": 2000,  # --iteration_step: steps between index refreshes
    "ranker_steps": 500,  # --iteration_reranker_step: ranker updates at the start of each cycle
    "max_steps": 32000,  # 16 cycles
    "batch_queries": 64,  # 8 per GPU × 8 GPUs
}

#: ANCE's settings for NQ/TriviaQA (``commands/run_train_dpr.sh``, ``commands/run_ann_data_gen_dpr.sh``).
ANCE_REFERENCE = {
    "negatives": 1,  # one negative per (query, positive) per pass, drawn from the list below
    "top_k": 200,  # --topk_training
    "negative_list": 100,  # --negative_sample: the first 100 retrieved, minus the positive and answer-bearing ones
    "lr": 1e-5,  # LAMB, 1 000 warm-up steps
    "batch_queries": 128,  # 16 per GPU × 8 GPUs
    "checkpoint_every": 1000,  # --save_steps; the data job re-indexes each new checkpoint asynchronously
}


def ance_nll(logits: torch.Tensor) -> torch.Tensor:
    """ANCE's loss per query: the positive (column 0) against each negative separately, averaged over negatives.

    ``−(1/C) Σ_j log(e^{s⁺} / (e^{s⁺} + e^{s_j}))`` = ``mean_j softplus(s_j − s⁺)``; with one negative (ANCE's
    setting) it is exactly the reference's two-way log-softmax. Returns (B,).
    """
    return F.softplus(logits[:, 1:] - logits[:, :1]).mean(dim=1)


def ranker_loss(logits: torch.Tensor, second_pass: torch.Tensor | None = None, rdrop: float = 0.0) -> torch.Tensor:
    """The ranker's objective per query: cross-entropy of the positive over the candidate list. Returns (B,).

    ``second_pass`` (the same candidates through the ranker again, another dropout mask) with ``rdrop > 0`` adds
    R-Drop's consistency term ``rdrop · ½ (KL(p₁ ‖ p₂) + KL(p₂ ‖ p₁))`` (Liang et al., NeurIPS 2021), averaging
    the cross-entropy over both passes. The released AR2 code trains the ranker with the cross-entropy alone
    (``rdrop = 0``, the default).
    """
    target = torch.zeros(len(logits), dtype=torch.long, device=logits.device)
    ce = F.cross_entropy(logits, target, reduction="none")
    if second_pass is None or rdrop == 0.0:
        return ce
    ce = 0.5 * (ce + F.cross_entropy(second_pass, target, reduction="none"))
    lp, lq = F.log_softmax(logits, dim=1), F.log_softmax(second_pass, dim=1)
    kl = 0.5 * ((lp.exp() * (lp - lq)).sum(1) + (lq.exp() * (lq - lp)).sum(1))
    return ce + rdrop * kl


def ar2_rewards(ranker_logits: torch.Tensor) -> torch.Tensor:
    """``r_j = log σ(s_φ(d⁺) − s_φ(d_j))``: the ranker's log-probability that the positive beats candidate j
    in a pair (the positive's own column is log ½). Detached: the reward is a constant for the retriever."""
    s = ranker_logits.detach()
    return F.logsigmoid(s[:, :1] - s)


def ar2_retriever_loss(retriever_logits: torch.Tensor, ranker_logits: torch.Tensor, adv_lambda: float = 0.5,
                       ranker_temperature: float = 1.0) -> torch.Tensor:
    """AR2's retriever objective per query, ``λ·Σ_j r_j log p_θ(d_j) − (1 − λ)·Σ_j p_φ(d_j) log p_θ(d_j)``.

    ``retriever_logits`` (B, 1 + C) are the retriever's scores of the candidate list (cosines / τ), positive
    first; ``ranker_logits`` the ranker's scores of the same list (no gradient flows into the ranker).
    ``adv_lambda = 1`` is the pure adversarial game, ``0`` pure distillation from the ranker. Returns (B,).

    Minimising the adversarial term raises the retriever's probability of the candidates the ranker confuses
    with the positive (large |r_j|) relative to those it rejects (r_j ≈ 0): the retriever learns to retrieve
    harder negatives for the ranker. The distillation term pulls p_θ towards the ranker's distribution, which
    keeps the retriever ranking the positive first. The reference sums the adversarial term over its per-GPU
    batch of 8 queries and averages the distillation term; here both are per query, so the balance between
    them is λ alone and does not depend on the batch size.
    """
    log_p = F.log_softmax(retriever_logits, dim=1)
    adversarial = (ar2_rewards(ranker_logits) * log_p).sum(1)
    teacher = F.softmax(ranker_logits.detach() / ranker_temperature, dim=1)
    distillation = -(teacher * log_p).sum(1)
    return adv_lambda * adversarial + (1.0 - adv_lambda) * distillation


def ar2_phase(step: int, cycle: int, ranker_steps: int) -> str:
    """Which model AR2 updates at ``step`` (0-based): each cycle of ``cycle`` steps starts right after an index
    refresh with ``ranker_steps`` ranker updates, then the retriever's (the reference: 500 of every 2 000)."""
    return "ranker" if step % cycle < ranker_steps else "retriever"


def refresh_due(step: int, every: int) -> bool:
    """An index refresh is due before ``step``: at the start and every ``every`` steps after."""
    return step % every == 0
