"""Post-hoc calibration fitted on the validation split: temperature scaling and correctness-aware (CA) calibration.

Both train the classifier normally, then ``finish`` returns a wrapper whose logits are divided by a positive
temperature (one global T, or one T per row), so the argmax, and every thresholded metric at the argmax, is unchanged.

Sources:

* Temperature scaling: Guo, Pleiss, Sun, Weinberger, "On Calibration of Modern Neural Networks", ICML 2017.
  Reference baseline read in ``liuyvchi/Correctness-aware-calibration`` ``src/cal_metrics/temperature_scaling_CA.py``
  (class ``Temperature``: NLL, LBFGS, initial T = 1.5). Difference: here log T is optimised, so T stays positive.
* CA calibration: Liu, Wang, Zou, Zou, Zheng, "Optimizing Calibration by Gaining Aware of Prediction Correctness",
  arXiv 2404.13016 (2024). Checked against the same file, class ``Temperature_adaptive``:
  ``T_i = clamp(Linear(ReLU(Linear(feat_i))), 0.1, 10)``; ``correct_i = 1[argmax f_i = y_i]``;
  ``L_CA = Σ_i w_i (conf_i − correct_i)² / Σ_i w_i`` with ``w_i = 1 − acc`` for correct rows, ``acc`` for wrong rows.
  The unused BCE correctness head is left out.

Tabular deviations (CA): the paper's features are predictions on image transformations (rotation, greyscale, colour
jitter), which do not exist for tables. The features used here (recorded in the docs) are, per row: the sorted top-3
logits (zero-padded when K < 3), the softmax entropy, and under ``noise_passes`` passes of input dropout (rate
``noise``, masks from a fixed seed): the mean max-probability, the agreement rate of the argmax with the clean argmax and
the mean probability of the clean argmax class. Features are standardised with validation statistics. The reference
trains with Adam lr 1e-4, batch 1000, 10 epochs on ~50k ImageNet validation images; validation splits here are small, so
the calibrator is trained full-batch with Adam lr 1e-2 for ``steps`` steps. When the validation split is missing or all
(or none) of its rows are predicted correctly, the CA weights are undefined and the method falls back to temperature
scaling (recorded as ``ca_fallback = 1``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lossbench import streams
from lossbench.losses.base import Param
from lossbench.methods.base import Method, MethodContext, MethodInfo, StepState, register_method
from lossbench.methods.common import BOTH

TS_CITATION = "Guo et al., On Calibration of Modern Neural Networks, ICML 2017"
CA_CITATION = "Liu et al., Optimizing Calibration by Gaining Aware of Prediction Correctness, arXiv 2404.13016 (2024)"
FEATURES = ("top3_logits", "entropy", "noise_mean_maxprob", "noise_agreement", "noise_mean_prob_of_pred")


@torch.no_grad()
def logits_of(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    was = model.training
    model.eval()
    out = model(X)
    model.train(was)
    return out


def fit_temperature(logits: torch.Tensor, y: torch.Tensor, init: float = 1.5, max_iter: int = 100) -> float:
    """The single temperature minimising validation NLL (LBFGS on log T)."""
    log_t = torch.tensor(float(torch.log(torch.tensor(init))), requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")
    logits, y = logits.detach().float().cpu(), y.cpu()

    def closure() -> torch.Tensor:
        opt.zero_grad()
        value = F.cross_entropy(logits / log_t.exp(), y)
        value.backward()
        return value

    opt.step(closure)
    t = float(log_t.detach().exp())
    nll_t = float(F.cross_entropy(logits / t, y))
    # Never worse than leaving the model alone.
    return t if torch.isfinite(torch.tensor(t)) and nll_t <= float(F.cross_entropy(logits, y)) else 1.0


class TemperatureScaled(nn.Module):
    """``model(x) / T``."""

    def __init__(self, model: nn.Module, temperature: float) -> None:
        super().__init__()
        self.model = model
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) / self.temperature


def ca_features(model: nn.Module, X: torch.Tensor, passes: int, rate: float, seed: int) -> torch.Tensor:
    """Per-row features of correctness (see the module docstring); deterministic given ``seed``."""
    logits = logits_of(model, X)
    k = logits.shape[1]
    top = logits.topk(min(3, k), dim=1).values
    if k < 3:
        top = torch.cat([top, torch.zeros(len(X), 3 - k, dtype=top.dtype, device=top.device)], dim=1)
    prob = F.softmax(logits, dim=1)
    entropy = -(prob * prob.clamp_min(1e-12).log()).sum(dim=1, keepdim=True)
    pred = logits.argmax(dim=1)
    g = streams.generator(seed, "method_setup", "ca noise masks")  # the same masks at every call
    maxp, agree, pprob = [], [], []
    for _ in range(passes):
        keep = (torch.rand(X.shape, generator=g) >= rate).to(X.device, X.dtype)
        p = F.softmax(logits_of(model, X * keep / (1 - rate)), dim=1)
        maxp.append(p.max(dim=1).values)
        agree.append((p.argmax(dim=1) == pred).to(p.dtype))
        pprob.append(p.gather(1, pred[:, None])[:, 0])
    noisy = torch.stack([torch.stack(v).mean(0) for v in (maxp, agree, pprob)], dim=1)
    return torch.cat([top, entropy, noisy], dim=1)


def ca_loss(cal_logits: torch.Tensor, correct: torch.Tensor) -> torch.Tensor:
    """``Σ w_i (conf_i − correct_i)² / Σ w_i``, w = 1 − acc for correct rows and acc for wrong ones."""
    correct = correct.to(cal_logits.dtype)
    acc = correct.mean()
    w = correct * (1 - acc) + (1 - correct) * acc
    conf = F.softmax(cal_logits, dim=1).max(dim=1).values
    return (w * (conf - correct) ** 2).sum() / w.sum().clamp_min(1e-12)


class TemperatureNet(nn.Module):
    """Features → T in [0.1, 10] (Linear → ReLU → Linear, clamped)."""

    def __init__(self, n_in: int, hidden: int, generator: torch.Generator) -> None:
        super().__init__()
        self.embed = nn.Linear(n_in, hidden)
        self.out = nn.Linear(hidden, 1)
        with torch.no_grad():
            bound = 1.0 / n_in**0.5
            self.embed.weight.uniform_(-bound, bound, generator=generator)
            self.embed.bias.uniform_(-bound, bound, generator=generator)
            self.out.weight.uniform_(-0.01, 0.01, generator=generator)
            self.out.bias.fill_(1.0)  # start at T ≈ 1, inside the clamp, so gradients flow

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return self.out(F.relu(self.embed(feat))).clamp(0.1, 10.0)[:, 0]


class CACalibrated(nn.Module):
    """``model(x) / T(features(x))`` with one temperature per row."""

    def __init__(self, model: nn.Module, net: TemperatureNet, mean: torch.Tensor, std: torch.Tensor,
                 passes: int, rate: float, seed: int) -> None:
        super().__init__()
        self.model, self.net = model, net
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.passes, self.rate, self.seed = passes, rate, seed

    def temperature(self, x: torch.Tensor) -> torch.Tensor:
        feat = ca_features(self.model, x, self.passes, self.rate, self.seed)
        return self.net((feat - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) / self.temperature(x)[:, None]


class _PostHoc(Method):
    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.seed = 0
        self.recorded: dict[str, float] = {}

    def setup(
        self, model: nn.Module, prepared: Any, loss: nn.Module, state: StepState, context: MethodContext | None = None
    ) -> None:
        self.seed = context.seed if context is not None else 0


@register_method
class TemperatureScaling(_PostHoc):
    """Train normally; fit one temperature on validation NLL."""

    info = MethodInfo(
        name="temp-scaling",
        family="calibration",
        tasks=BOTH,
        params={},
        citation=TS_CITATION,
        summary="Post-hoc: one temperature fitted on validation NLL (argmax unchanged).",
    )

    def finish(self, model: nn.Module, prepared: Any) -> nn.Module:
        if prepared.val is None:
            self.recorded = {"temperature": 1.0}
            return model
        t = fit_temperature(logits_of(model, prepared.val.X), prepared.val.y)
        self.recorded = {"temperature": t}
        return TemperatureScaled(model, t)

    def record(self) -> dict[str, float]:
        return dict(self.recorded)


@register_method
class CACalibration(_PostHoc):
    """Train normally; fit a per-row temperature on validation with the correctness-aware loss."""

    info = MethodInfo(
        name="ca-calibration",
        family="calibration",
        tasks=BOTH,
        params={
            "steps": Param(300, "full-batch Adam steps of the calibrator", low=1, high=100_000),
            "lr": Param(0.01, "calibrator learning rate", low=0.0, low_open=True),
            "hidden": Param(16, "width of the calibrator's hidden layer", low=1, high=4096),
            "noise": Param(0.1, "input dropout rate of the noisy passes", low=0.0, high=1.0, high_open=True),
            "noise_passes": Param(4, "noisy forward passes per row", low=1, high=64),
        },
        citation=CA_CITATION,
        summary="Post-hoc: per-row temperature from correctness features, fitted with the CA loss (argmax unchanged).",
    )

    def finish(self, model: nn.Module, prepared: Any) -> nn.Module:
        val = prepared.val
        if val is None:
            self.recorded = {"temperature": 1.0, "ca_fallback": 1.0}
            return model
        logits = logits_of(model, val.X)
        correct = logits.argmax(dim=1) == val.y
        if bool(correct.all()) or not bool(correct.any()):
            t = fit_temperature(logits, val.y)
            self.recorded = {"temperature": t, "ca_fallback": 1.0}
            return TemperatureScaled(model, t)
        passes, rate = int(self.params["noise_passes"]), float(self.params["noise"])
        feat = ca_features(model, val.X, passes, rate, self.seed)
        mean, std = feat.mean(0), feat.std(0).clamp_min(1e-6)
        g = streams.generator(self.seed, "method_setup", "ca temperature net")
        net = TemperatureNet(feat.shape[1], int(self.params["hidden"]), g).to(feat.device)
        opt = torch.optim.Adam(net.parameters(), lr=float(self.params["lr"]))
        z = (feat - mean) / std
        for _ in range(int(self.params["steps"])):
            opt.zero_grad()
            ca_loss(logits / net(z)[:, None], correct).backward()
            opt.step()
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
        wrapped = CACalibrated(model, net, mean, std, passes, rate, self.seed)
        with torch.no_grad():
            self.recorded = {"temperature": float(wrapped.temperature(val.X).mean()), "ca_fallback": 0.0}
        return wrapped

    def record(self) -> dict[str, float]:
        return dict(self.recorded)


__all__ = ["FEATURES", "CACalibrated", "CACalibration", "TemperatureScaled", "TemperatureScaling", "ca_features",
           "ca_loss", "fit_temperature"]
