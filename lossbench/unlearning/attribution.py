"""Data attribution for DMM: predict the logits of a model retrained without the forget set.

DMM (Georgiev et al., ICLR 2025, arXiv 2410.23232) fine-tunes the pre-trained model toward the *predicted* outputs of
the oracle. The authors predict them with linear datamodels, ``f(x; S) ≈ θ(x) + Σ_{i∈S} β_i(x)``, regressions fitted
on 1,000–20,000 models trained on random halves of the training set, and take
``f_oracle(x) ≈ f_full(x) − Σ_{i∈F} β_i(x)`` (their ``dm_direct``/``DatamodelWrappedModel``; ``dm_matching`` then
fine-tunes toward it).

lossbench can afford a handful of fits, not thousands, so it keeps the linear datamodel but estimates only what the
prediction needs, by differences of means over a fold design (each group is left out of the same number of fits,
every fit trained with the pre-training recipe and initial weights, so the fits differ only in their data):

* random forget sets (:func:`estimate_row_datamodel`): each fit leaves out one of ``folds`` random folds of the rows,
  with ``folds ≈ 1/ρ`` for the forget fraction ρ, so the fits see as much data as the oracle will. For a row x, let
  ``in(x)`` and ``out(x)`` be the mean logits of the fits that did and did not train on it. The linear datamodel gives
  ``β_x(x) = in(x) − out(x)`` (x's effect on itself) and ``Σ_{j≠x} β_j(x) = (f_full(x) − in(x))/(1 − α)`` (the other
  rows' total effect, α = 1 − 1/folds the fits' share of the data); a random forget set of fraction ρ removes a share
  ρ of the latter in expectation, so

      f_oracle(x) ≈ f_full(x) − c·(f_full(x) − in(x)) − [x ∈ F]·(in(x) − out(x)),   c = ρ/(1 − α),

  which is ``out(x)`` for a forget row and ``in(x)`` for a retained one when ``folds = 1/ρ``. The N × N individual
  cross terms are never estimated (a few fits cannot), only their expected sum over a random forget set.
* one class (:func:`class_influence`): the groups are the classes, each fit trains on half of them following the
  rows of a Hadamard matrix (M = the smallest power of two above K fits: 16 for 10 classes, 32 for 26), a design in
  which every pair of classes is in together, apart and either way equally often, so the difference in means is the
  least-squares datamodel and holds no other class's effect. The whole effect of class c on every row,
  ``β_c(x) = in_c(x) − out_c(x)``, gives ``f_oracle(x) ≈ f_full(x) − β_c(x)``.

Both are computed once per (dataset, seed, forget fraction or "class") and serve every forget set of that kind: they
never see which rows are forgotten. ``fit(rows)`` trains a fresh model on those training-row positions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.linalg import hadamard
from torch import nn

from lossbench import streams
from lossbench.errors import UserError

#: Trains a fresh model on the given training-row positions (same recipe and initial weights as pre-training).
Fit = Callable[[np.ndarray], nn.Module]


def fold_design(n_groups: int, folds: int, repeats: int, seed: int) -> np.ndarray:
    """(folds·repeats, n_groups) inclusion masks: each repeat splits the groups into ``folds`` random folds of
    near-equal size and fit j of the repeat leaves fold j out, so every group is left out exactly ``repeats`` times."""
    if folds < 2 or repeats < 1:
        raise UserError(f"A datamodel design needs at least 2 folds and 1 repeat. Got {folds} and {repeats}.",
                        "Use the defaults (folds from the forget fraction, about 8 fits).")
    if n_groups < folds:
        raise UserError(f"Cannot split {n_groups} groups into {folds} folds.", "Use a larger training split.")
    rng = streams.rng(seed, "attribution", "folds")
    masks = []
    for _ in range(repeats):
        fold = rng.permutation(n_groups) % folds
        masks += [fold != j for j in range(folds)]
    return np.array(masks)


def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(x).detach().to(torch.float64)


def _means(outputs: torch.Tensor, masks: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean output over the fits that include each group, and over those that leave it out: (groups, ...)."""
    w = torch.as_tensor(masks, dtype=outputs.dtype, device=outputs.device)
    w_in, w_out = w / w.sum(0), (1 - w) / (1 - w).sum(0)
    return torch.einsum("mg,m...->g...", w_in, outputs), torch.einsum("mg,m...->g...", w_out, outputs)


@dataclass
class RowDatamodel:
    """Mean logits of the fits that trained on each row (``inside``) and of those that did not (``outside``)."""

    inside: torch.Tensor  # (n_train, K)
    outside: torch.Tensor  # (n_train, K)
    included: float  # α, the share of the rows each fit trained on

    def predict(self, reference_logits: torch.Tensor, forget: np.ndarray) -> torch.Tensor:
        """Predicted oracle logits of every training row, for the forget rows ``forget`` (positions)."""
        full = reference_logits.to(self.inside.dtype)
        rows = torch.as_tensor(forget, dtype=torch.long, device=full.device)
        c = (len(rows) / len(full)) / (1.0 - self.included)
        effect = c * (full - self.inside)
        effect[rows] += (self.inside - self.outside)[rows]
        return (full - effect).to(reference_logits.dtype)


def design_for(forget_fraction: float, n_fits: int = 8) -> tuple[int, int]:
    """(folds, repeats) for a forget fraction: ``folds = round(1/ρ)`` (at least 2), about ``n_fits`` fits in all."""
    if not 0.0 < forget_fraction < 1.0:
        raise UserError(f"The forget fraction must lie strictly between 0 and 1. Got {forget_fraction!r}.",
                        "Try 0.1.")
    folds = max(2, round(1.0 / forget_fraction))
    return folds, max(1, round(n_fits / folds))


def estimate_row_datamodel(fit: Fit, x_train: torch.Tensor, forget_fraction: float, n_fits: int = 8,
                           seed: int = 0) -> RowDatamodel:
    """The datamodel DMM needs for random forget sets of fraction ``forget_fraction`` (see the module docstring)."""
    folds, repeats = design_for(forget_fraction, n_fits)
    masks = fold_design(len(x_train), folds, repeats, seed)
    outputs = torch.stack([_logits(fit(np.flatnonzero(m)), x_train) for m in masks])  # (fits, n, K)
    w = torch.as_tensor(masks, dtype=outputs.dtype, device=outputs.device)
    # each row's own inclusion only (the diagonal): never the (n, n, K) table of every group's effect
    inside = torch.einsum("mi,mik->ik", w / w.sum(0), outputs)
    outside = torch.einsum("mi,mik->ik", (1 - w) / (1 - w).sum(0), outputs)
    return RowDatamodel(inside, outside, included=1.0 - 1.0 / folds)


def hadamard_design(n_groups: int, seed: int) -> np.ndarray:
    """(M, n_groups) inclusion masks from the columns 1..n_groups of a Sylvester–Hadamard matrix of order
    M = 2^⌈log2(n_groups + 1)⌉ (columns shuffled by ``seed``): each group is in M/2 fits and every pair of groups is
    in together, apart and either way M/4 times each."""
    order = 1 << int(np.ceil(np.log2(n_groups + 1)))
    columns = streams.rng(seed, "attribution", "hadamard").permutation(np.arange(1, order))[:n_groups]
    return hadamard(order)[:, columns] > 0


def class_influence(fit: Fit, y_train: np.ndarray, x_eval: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """(K, n_eval, K): the estimated effect of including every row of class c (first axis) on the eval rows' logits."""
    y_train = np.asarray(y_train)
    classes = np.unique(y_train)
    masks = hadamard_design(len(classes), seed)
    outputs = torch.stack([_logits(fit(np.flatnonzero(np.isin(y_train, classes[m]))), x_eval)
                           for m in masks])  # (fits, n_eval, K)
    inside, outside = _means(outputs, masks)  # (n_classes, n_eval, K)
    full = torch.zeros((outputs.shape[-1], *outputs.shape[1:]), dtype=outputs.dtype, device=outputs.device)
    full[torch.as_tensor(classes, device=outputs.device)] = inside - outside
    return full


def predict_class_forget(reference_logits: torch.Tensor, influence: torch.Tensor, cls: int) -> torch.Tensor:
    """``f_full(x) − β_c(x)``: predicted logits of a model retrained without class ``cls``."""
    return (reference_logits.to(influence.dtype) - influence[cls]).to(reference_logits.dtype)
