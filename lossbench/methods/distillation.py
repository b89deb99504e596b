"""Dual-Head Knowledge Distillation (DHKD) for the tabular MLP.

Source: Yang, Zong, Huang, Feng, An, "Dual-Head Knowledge Distillation: Enhancing Logits Utilization with an
Auxiliary Head", arXiv 2411.08937 (2024). ``binary_kl_norm`` follows the reference code
``penghui-yang/DHKD`` ``distiller_zoo/BinaryKLNorm.py`` (sigmoid of the temperature-scaled logit difference,
clamped to [1e-8, 1 − 1e-8], KL from Bernoulli(0.5), times T², summed over classes, averaged over rows).

The teacher: the same MLP architecture, started from the student's initial weights (a copy, so no random state is
drawn), trained first with ``ce`` by the same loop, configuration and seed. It is therefore the model a plain ``ce``
trial of the same seed would produce; the student differs only in its objective. The paper distils from a larger
teacher network; a wider teacher is not offered here.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from lossbench.losses import make_loss
from lossbench.losses.base import Param
from lossbench.methods.base import Batch, Method, MethodContext, MethodInfo, Plain, StepState, register_method
from lossbench.methods.common import BOTH, seeded_linear, split_head

CITATION = (
    "Yang et al., Dual-Head Knowledge Distillation: Enhancing Logits Utilization with an Auxiliary Head, "
    "arXiv 2411.08937 (2024)"
)


def binary_kl_norm(
    student: torch.Tensor, teacher: torch.Tensor, temperature: float = 2.0, eps: float = 1e-8
) -> torch.Tensor:
    """``T²/N · Σ_{i,k} KL(Bern(0.5) ‖ Bern(σ((s − t)/T)))``: zero exactly where s = t, positive elsewhere."""
    d = torch.sigmoid((student - teacher) / temperature).clamp(eps, 1 - eps)
    # KL(Bern(0.5) || Bern(d)) = 0.5·log(0.5/d) + 0.5·log(0.5/(1 − d))
    kl = 0.5 * (torch.log(torch.tensor(0.5, dtype=d.dtype, device=d.device)) - torch.log(d)) + 0.5 * (
        torch.log(torch.tensor(0.5, dtype=d.dtype, device=d.device)) - torch.log1p(-d)
    )
    return temperature**2 * kl.sum() / student.shape[0]


@register_method
class DHKD(Method):
    """Student with a main head (CE, used for prediction) and an auxiliary head that matches the teacher's logits."""

    info = MethodInfo(
        name="dhkd",
        family="distillation",
        tasks=BOTH,
        params={
            "gamma": Param(1.0, "weight of the base loss on the main head (reference -r)", low=0.0),
            "alpha": Param(1.0, "weight of BinaryKLNorm on the auxiliary head (reference -a: 1 CIFAR-100, 0.1 ImageNet)",
                           low=0.0),
            "temperature": Param(2.0, "BinaryKLNorm temperature T", low=0.0, low_open=True),
        },
        citation=CITATION,
        summary="Distil a CE teacher into an auxiliary head with BinaryKLNorm; the main head keeps plain CE.",
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.aux: nn.Linear | None = None
        self.teacher_logits: torch.Tensor | None = None
        self.teacher_metrics: dict[str, float] = {}

    def setup(
        self, model: nn.Module, prepared: Any, loss: nn.Module, state: StepState, context: MethodContext | None = None
    ) -> None:
        if context is None or context.fit is None:
            raise RuntimeError("dhkd needs the training context to train its teacher")
        _, head = split_head(model)
        teacher = copy.deepcopy(model)  # same architecture and initial weights; copying draws no randomness
        teacher_loss = make_loss("ce").to(context.device)
        # Training the teacher must not shift the global RNG stream the student's dropout would see.
        dev = torch.device(context.device)
        with torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []):
            fitted = context.fit(teacher, teacher_loss, Plain())
        teacher.eval()
        with torch.no_grad():
            self.teacher_logits = teacher(prepared.train.X).detach()
        wanted = tuple(dict.fromkeys((context.primary_metric, *context.metrics)))
        self.teacher_metrics = {
            f"teacher_{k}": float(v) for k, v in context.task.evaluate(teacher, prepared, "test", wanted).items()
        }
        # The student's train_s starts after setup; the teacher's cost is reported on its own.
        self.teacher_metrics["teacher_train_s"] = float(fitted.train_s)
        self.teacher_metrics["teacher_epochs_run"] = float(fitted.epochs_run)
        # The auxiliary head reads the penultimate features, like the main head (the reference's linear variant).
        self.aux = seeded_linear(head.in_features, head.out_features, state.generator or torch.Generator()).to(
            head.weight.device
        )

    def parameters(self) -> list[nn.Parameter]:
        return list(self.aux.parameters()) if self.aux is not None else []

    def step(self, model: nn.Module, batch: Batch, loss: nn.Module, state: StepState) -> torch.Tensor:
        assert self.aux is not None and self.teacher_logits is not None
        body, head = split_head(model)
        features = body(batch.x)
        main = head(features)
        ce = loss(main, batch.y, **self.loss_kwargs(loss, batch, state))
        target = self.teacher_logits[batch.index.to(self.teacher_logits.device)]
        kd = binary_kl_norm(self.aux(features), target, float(self.params["temperature"]))
        return float(self.params["gamma"]) * ce + float(self.params["alpha"]) * kd

    def record(self) -> dict[str, float]:
        return dict(self.teacher_metrics)


__all__ = ["DHKD", "binary_kl_norm"]
