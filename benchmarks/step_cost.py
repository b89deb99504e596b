"""One training step of the throughput benchmark's MLP, split into forward, backward and optimiser step.

Run: ``python benchmarks/step_cost.py``

MLP 30 → 128 → 128 → 2, batch 256, cross-entropy, Adam, one thread; the default (per-tensor loop),
``foreach`` and ``fused`` Adam implementations alternate. Prints milliseconds per step.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn


def step_times(kind: str, steps: int = 600) -> dict[str, float]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(30, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 2))
    options = {} if kind == "default" else {kind: True}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, **options)
    X, y = torch.randn(4096, 30), torch.randint(0, 2, (4096,))
    spent = {"forward": 0.0, "backward": 0.0, "optimiser": 0.0}
    for i in range(steps + 50):
        idx = torch.randint(0, 4096, (256,))
        a = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(model(X[idx]), y[idx])
        b = time.perf_counter()
        loss.backward()
        c = time.perf_counter()
        opt.step()
        d = time.perf_counter()
        if i >= 50:  # warm-up steps excluded
            spent["forward"] += b - a
            spent["backward"] += c - b
            spent["optimiser"] += d - c
    return {k: 1e3 * v / steps for k, v in spent.items()}


def main() -> None:
    torch.set_num_threads(1)
    for _ in range(2):
        for kind in ("default", "foreach", "fused"):
            t = step_times(kind)
            print(f"Adam {kind:8s} total {sum(t.values()):.3f} ms/step: "
                  + ", ".join(f"{k} {v:.3f}" for k, v in t.items()))


if __name__ == "__main__":
    main()
