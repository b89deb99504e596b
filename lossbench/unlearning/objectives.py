"""Unlearning objectives: what one step of unlearning minimises, usable from any loop.

Each objective is one class with an :class:`ObjectiveInfo` (formula, defaults, source) and validated parameters.
A loop calls :meth:`Objective.setup` once with the :class:`UnlearningData` (forget and retain rows, the frozen
pre-trained reference model) and then :meth:`Objective.update` per step with one forget batch and one retain batch.
The per-batch formulas are also plain functions (:func:`npo_loss`, ...), so they can be tested and reused alone.

Sources (read before writing this code, none of it copied):

* GA, GD, NPO, NPO-RT: Zhang, Lin, Bai & Mei, "Negative Preference Optimization: From Catastrophic Collapse to
  Effective Unlearning" (COLM 2024, arXiv 2404.05868); reference code ``licong-lin/negative-preference-optimization``
  (``TOFU/dataloader.py`` ``compute_loss``: ``grad_ascent``, ``grad_diff``, ``npo``, ``npo_grad_diff``;
  ``TOFU/config/forget.yaml``: β = 0.1, ``npo_coeff = grad_diff_coeff = 1``).
* DMM: Georgiev et al., "Attribute-to-Delete: Machine Unlearning via Datamodel Matching" (ICLR 2025,
  arXiv 2410.23232); the authors' ``dm_matching``/``finetune``: MSE between the model's logits and the predicted
  oracle logits on the forget set plus 3× as many retain rows (see :mod:`lossbench.unlearning.attribution`).
* AdvUnlearn: Zhang et al., "Defensive Unlearning with Adversarial Training for Robust Concept Erasure in Diffusion
  Models" (NeurIPS 2024, arXiv 2405.15234); reference ``OPTML-Group/AdvUnlearn`` ``train-scripts/AdvUnlearn.py``,
  ``utils/get_loss.py`` (``get_train_loss_retain``: unlearning loss on the adversarial input +
  ``retain_loss_w`` × distance to the frozen original model on retain data), ``utils/attack_util.py``.
* LAF lives in :mod:`lossbench.unlearning.laf`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from lossbench.errors import SpecError, UserError
from lossbench.losses.base import Param
from lossbench.unlearning.adversarial import pgd_toward_label

NPO_CITATION = (
    "Zhang, Lin, Bai & Mei, Negative Preference Optimization: From Catastrophic Collapse to Effective Unlearning, "
    "COLM 2024 (arXiv 2404.05868); code licong-lin/negative-preference-optimization"
)
DMM_CITATION = (
    "Georgiev, Rinberg, Park, Garg, Ilyas, Madry & Neel, Attribute-to-Delete: Machine Unlearning via Datamodel "
    "Matching, ICLR 2025 (arXiv 2410.23232)"
)
ADV_CITATION = (
    "Zhang, Chen, Jia, Zhang, Fan, Liu, Hong, Ding & Liu, Defensive Unlearning with Adversarial Training for Robust "
    "Concept Erasure in Diffusion Models, NeurIPS 2024 (arXiv 2405.15234); code OPTML-Group/AdvUnlearn"
)

#: What an objective may read, beyond the forget inputs every objective sees.
USES = frozenset({"forget_labels", "retain", "retain_labels", "reference", "attribution"})


@dataclass(frozen=True)
class ObjectiveInfo:
    """What the catalogue, the docs and the future method registration read about an objective."""

    name: str
    summary: str
    formula: str
    params: Mapping[str, Param]
    citation: str
    uses: frozenset[str]
    notes: str = ""  # deviations from the paper and what was scaled down
    version: str = "1"

    def __post_init__(self) -> None:
        unknown = self.uses - USES
        if unknown:
            raise ValueError(f"{self.name}: unknown uses {sorted(unknown)}")

    @property
    def label_free(self) -> bool:
        """Reads no label at all (DMM's attribution retrains on labelled rows, so DMM is not label-free)."""
        return not self.uses & {"forget_labels", "retain_labels", "attribution"}


@dataclass
class Rows:
    """A set of rows: inputs, integer labels and their positions within the forget (or retain) set."""

    x: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def take(self, index: torch.Tensor) -> Rows:
        return Rows(self.x[index], self.y[index], self.index[index])


def rows(x: torch.Tensor, y: torch.Tensor) -> Rows:
    return Rows(x, y, torch.arange(len(y), device=y.device))


@dataclass
class UnlearningData:
    """Everything an objective may use: forget and retain rows of the training split and the frozen reference.

    ``reference`` is a copy of the pre-trained model (eval mode; the loop never updates it). ``predicted_oracle``
    holds the attribution's predicted oracle logits for the forget and retain rows (DMM only), as
    ``{"forget": (n_forget, K), "retain": (n_retain, K)}``.
    """

    forget: Rows
    retain: Rows
    reference: nn.Module
    budget: int
    generator: torch.Generator
    predicted_oracle: Mapping[str, torch.Tensor] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# -- per-batch formulas ------------------------------------------------------------------------------------------


def log_likelihood(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-row ``log softmax(z)_y`` (``log π(y|x)`` of a classifier)."""
    return -F.cross_entropy(logits, y, reduction="none")


def ga_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Gradient ascent: ``−mean CE`` (unbounded below; the loss that collapses)."""
    return -F.cross_entropy(logits, y)


def npo_loss(logits: torch.Tensor, y: torch.Tensor, reference_logp: torch.Tensor, beta: float) -> torch.Tensor:
    """``−(2/β)·mean log σ(−β·(log π_θ(y|x) − log π_ref(y|x)))`` = ``(2/β)·mean log(1 + (π_θ/π_ref)^β)``.

    Zero gradient at π_θ → 0 and bounded below by 0; as β → 0 its gradient tends to that of gradient ascent.
    """
    log_ratio = log_likelihood(logits, y) - reference_logp
    return -(2.0 / beta) * F.logsigmoid(-beta * log_ratio).mean()


def reference_kl(logits: torch.Tensor, reference_logits: torch.Tensor) -> torch.Tensor:
    """``mean KL(π_ref ‖ π_θ)`` over rows: distance to the frozen original model's predictions."""
    return F.kl_div(F.log_softmax(logits, dim=-1), F.log_softmax(reference_logits, dim=-1), reduction="batchmean",
                    log_target=True)


def matching_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """DMM's fine-tuning loss: mean squared error between logits and predicted oracle logits."""
    return F.mse_loss(logits, targets)


# -- objectives --------------------------------------------------------------------------------------------------


class Objective:
    """Base class: validated parameters, ``setup`` once, then one ``update`` per step."""

    info: ClassVar[ObjectiveInfo]

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(self.info.params)
        if unknown:
            raise SpecError(f"Unlearning method {self.info.name!r} has no parameter {sorted(unknown)[0]!r}.",
                            f"Its parameters are: {', '.join(self.info.params) or 'none'}.")
        self.params = {k: p.validate(self.info.name, k, params.get(k, p.default)) for k, p in self.info.params.items()}
        self.data: UnlearningData | None = None

    @property
    def lr(self) -> float:
        return float(self.params.get("lr", 1e-3))

    def setup(self, model: nn.Module, data: UnlearningData) -> None:
        """Called once before the first step; precomputes what the steps need (reference outputs, ...)."""
        self.data = data

    def loss(self, model: nn.Module, forget: Rows, retain: Rows) -> torch.Tensor:
        raise NotImplementedError

    def update(self, model: nn.Module, forget: Rows, retain: Rows, optimizer: torch.optim.Optimizer,
               step: int) -> float:
        """One optimisation step; returns the objective's value (the loop stops on a non-finite one)."""
        optimizer.zero_grad(set_to_none=True)
        value = self.loss(model, forget, retain)
        value.backward()
        optimizer.step()
        return float(value.detach())

    def record(self) -> dict[str, float]:
        """Extra values for the result row (``m_<name>`` columns)."""
        return {}

    def _reference_logits(self, which: str) -> torch.Tensor:
        """The reference model's logits on every forget (or retain) row, computed once."""
        assert self.data is not None, "setup() was not called"
        cache = self.data.extra.setdefault("reference_logits", {})
        if which not in cache:
            part = self.data.forget if which == "forget" else self.data.retain
            with torch.no_grad():
                cache[which] = self.data.reference(part.x).detach()
        return cache[which]


LR = Param(1e-4, "Adam learning rate of the unlearning steps", low=0.0, low_open=True)
RETAIN_WEIGHT = Param(1.0, "weight of the retain term (the reference's grad_diff_coeff)", low=0.0)
BETA = Param(0.1, "inverse temperature β (the reference's TOFU default)", low=0.0, low_open=True)


class GradientAscent(Objective):
    info = ObjectiveInfo(
        name="ga",
        summary="Gradient ascent on the forget rows' cross-entropy.",
        formula="L = −mean_{forget} CE(f(x), y)",
        params={"lr": LR},
        citation=NPO_CITATION + " (baseline `grad_ascent`)",
        uses=frozenset({"forget_labels"}),
        notes="Unbounded below: the forget loss can grow without limit and drag the retain accuracy with it "
              "(catastrophic collapse). The loop stops at the first non-finite value.",
    )

    def loss(self, model: nn.Module, forget: Rows, retain: Rows) -> torch.Tensor:
        return ga_loss(model(forget.x), forget.y)


class GradientDifference(Objective):
    info = ObjectiveInfo(
        name="gd",
        summary="Gradient ascent on forget plus gradient descent on retain.",
        formula="L = −mean_{forget} CE + α·mean_{retain} CE",
        params={"lr": LR, "retain_weight": RETAIN_WEIGHT},
        citation=NPO_CITATION + " (baseline `grad_diff`)",
        uses=frozenset({"forget_labels", "retain", "retain_labels"}),
    )

    def loss(self, model: nn.Module, forget: Rows, retain: Rows) -> torch.Tensor:
        return ga_loss(model(forget.x), forget.y) + self.params["retain_weight"] * F.cross_entropy(model(retain.x),
                                                                                                  retain.y)


class NPO(Objective):
    info = ObjectiveInfo(
        name="npo",
        summary="Negative preference optimisation: a bounded, reference-relative ascent on the forget rows.",
        formula="L = −(2/β)·mean_{forget} log σ(−β·(log π_θ(y|x) − log π_ref(y|x)))",
        params={"lr": LR, "beta": BETA},
        citation=NPO_CITATION,
        uses=frozenset({"forget_labels", "reference"}),
        notes="π_ref is the pre-trained model, its log-probabilities computed once on every forget row. The "
              "paper's synthetic experiments use β = 1 and its TOFU runs β = 0.1 (the default here).",
    )

    def forget_term(self, model: nn.Module, forget: Rows) -> torch.Tensor:
        ref_logp = log_likelihood(self._reference_logits("forget")[forget.index], forget.y)
        return npo_loss(model(forget.x), forget.y, ref_logp, self.params["beta"])

    def loss(self, model: nn.Module, forget: Rows, retain: Rows) -> torch.Tensor:
        return self.forget_term(model, forget)


class NPORetain(NPO):
    info = ObjectiveInfo(
        name="npo-rt",
        summary="NPO plus cross-entropy on the retain rows (the paper's NPO+RT).",
        formula="L = NPO_β(forget) + α·mean_{retain} CE",
        params={"lr": LR, "beta": BETA, "retain_weight": RETAIN_WEIGHT},
        citation=NPO_CITATION + " (`npo_grad_diff`)",
        uses=frozenset({"forget_labels", "reference", "retain", "retain_labels"}),
    )

    def loss(self, model: nn.Module, forget: Rows, retain: Rows) -> torch.Tensor:
        return self.forget_term(model, forget) + self.params["retain_weight"] * F.cross_entropy(model(retain.x),
                                                                                                retain.y)


class Finetune(Objective):
    info = ObjectiveInfo(
        name="finetune",
        summary="Keep training on the retain rows only; forgetting comes from catastrophic forgetting alone.",
        formula="L = mean_{retain} CE",
        params={"lr": Param(1e-3, "Adam learning rate (that of pre-training: this is more training)", low=0.0,
                            low_open=True)},
        citation="Standard baseline (fine-tuning on the retain set), e.g. Golatkar et al., CVPR 2020",
        uses=frozenset({"retain", "retain_labels"}),
    )

    def loss(self, model: nn.Module, forget: Rows, retain: Rows) -> torch.Tensor:
        return F.cross_entropy(model(retain.x), retain.y)


class DatamodelMatching(Objective):
    info = ObjectiveInfo(
        name="dmm",
        summary="Fine-tune to match the oracle logits predicted by data attribution (datamodels).",
        formula="L = (Σ_{forget} ‖f(x) − ŷ(x)‖² + w·Σ_{retain} ‖f(x) − ŷ(x)‖²)/(K·(n_f + w·n_r)), "
                "ŷ = predicted oracle logits",
        params={"lr": Param(5e-4, "Adam learning rate (the reference's default)", low=0.0, low_open=True),
                "retain_weight": Param(3.0, "weight of the retain rows (the reference fine-tunes on the forget set "
                                            "plus 3× as many retain rows)", low=0.0)},
        citation=DMM_CITATION,
        uses=frozenset({"retain", "attribution"}),
        notes="The predicted oracle logits come from lossbench.unlearning.attribution: linear datamodels estimated "
              "from about ten retrains, each leaving out one of round(1/ρ) random folds of the training rows for a "
              "forget fraction ρ (16 or 32 retrains on half of the classes each for class forgetting), computed once "
              "per (dataset, seed, forget kind) without seeing the forget set. The matching itself reads no label.",
    )

    def setup(self, model: nn.Module, data: UnlearningData) -> None:
        if data.predicted_oracle is None:
            raise UserError("dmm needs the attribution's predicted oracle logits, and none were computed.",
                            "Run dmm through the unlearning task, which estimates the datamodels first.")
        super().setup(model, data)

    def loss(self, model: nn.Module, forget: Rows, retain: Rows) -> torch.Tensor:
        assert self.data is not None and self.data.predicted_oracle is not None
        w = self.params["retain_weight"]
        f_target = self.data.predicted_oracle["forget"][forget.index]
        r_target = self.data.predicted_oracle["retain"][retain.index]
        f_err = F.mse_loss(model(forget.x), f_target, reduction="sum")
        r_err = F.mse_loss(model(retain.x), r_target, reduction="sum")
        k = f_target.shape[-1]
        return (f_err + w * r_err) / (k * (len(forget) + w * len(retain)))


class AdvUnlearn(Objective):
    info = ObjectiveInfo(
        name="adv-unlearn",
        summary="Unlearn against adversarially perturbed forget inputs (PGD), keeping the retain outputs close to "
                "the original model's.",
        formula="L = NPO_β(x_f + δ*, y_f) + γ·mean_{retain} KL(π_ref ‖ π_θ), "
                "δ* = argmin_{‖δ‖∞ ≤ ε} CE(f(x_f + δ), y_f) by PGD",
        params={
            "lr": LR,
            "beta": BETA,
            "epsilon": Param(0.25, "L∞ radius of the attack, in units of the standardised inputs (0 = no attack)",
                             low=0.0),
            "attack_steps": Param(5, "PGD steps per unlearning step (the reference uses 30 on prompts)", low=1),
            "retain_weight": Param(1.0, "γ, the reference's retain_loss_w (its default; the README's examples use 0.3)",
                                   low=0.0),
            "warmup": Param(0.2, "share of the budget unlearned without attack (the reference: 200 of 1000)",
                            low=0.0, high=1.0, high_open=True),
        },
        citation=ADV_CITATION,
        uses=frozenset({"forget_labels", "reference", "retain"}),
        notes="Diffusion models, prompts and the ESD objective are out of scope: on a classifier the attacker "
              "perturbs forget inputs within an L∞ ball to bring the forgotten label back (PGD from a random start, "
              "step 2.5ε/steps), the upper level applies NPO at the perturbed inputs, and the utility regulariser "
              "keeps the retain predictions near the frozen original model (as AdvUnlearn's retain loss matches "
              "the original model). `adv-unlearn:epsilon=0` is the same objective without the attack.",
    )

    def loss(self, model: nn.Module, forget: Rows, retain: Rows) -> torch.Tensor:
        raise NotImplementedError("adv-unlearn attacks inside update()")

    def update(self, model: nn.Module, forget: Rows, retain: Rows, optimizer: torch.optim.Optimizer,
               step: int) -> float:
        assert self.data is not None
        p = self.params
        x = forget.x
        if p["epsilon"] > 0 and step >= p["warmup"] * self.data.budget:
            x = pgd_toward_label(model, forget.x, forget.y, p["epsilon"], p["attack_steps"], self.data.generator)
        ref_logp = log_likelihood(self._reference_logits("forget")[forget.index], forget.y)
        optimizer.zero_grad(set_to_none=True)
        value = npo_loss(model(x), forget.y, ref_logp, p["beta"])
        if p["retain_weight"] > 0:
            value = value + p["retain_weight"] * reference_kl(model(retain.x),
                                                              self._reference_logits("retain")[retain.index])
        value.backward()
        optimizer.step()
        return float(value.detach())
