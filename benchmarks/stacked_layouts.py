"""The batched products of one stacked layer in both weight layouts: which one MKL runs fast, per layer shape.

Run: ``python benchmarks/stacked_layouts.py [--members 15] [--batch 256]``

For each layer shape (in → out) of the throughput grid's MLP (6 or 30 features → 128 → 128 → 2, plus a 10-class
head), one thread, microseconds per call (mean of 400 after 30 warm-up calls) of the three products a training
step needs, with the weights stored ``(S, in, out)`` ("in-major") or ``(S, out, in)`` ("out-major", as
``nn.Linear`` keeps them): the forward ``x @ W``, the input gradient ``g @ Wᵀ`` and the weight gradient (``xᵀ g``
in-major, ``gᵀ x`` out-major). ``vectorized.StackedMLP`` stores a layer out-major when it narrows (out < in).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import torch

SHAPES = [(6, 128), (30, 128), (128, 128), (128, 2), (128, 10)]


def micros(fn: Callable[[], object], calls: int = 400) -> float:
    for _ in range(30):
        fn()
    t = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t) / calls * 1e6


def layer(S: int, B: int, n_in: int, n_out: int) -> list[tuple[float, float]]:
    """(in-major, out-major) µs of the forward, the input gradient and the weight gradient of one layer."""
    x, g = torch.randn(S, B, n_in), torch.randn(S, B, n_out)
    w_io, w_oi, b = torch.randn(S, n_in, n_out), torch.randn(S, n_out, n_in), torch.randn(S, 1, n_out)
    return [
        (micros(lambda: torch.baddbmm(b, x, w_io)), micros(lambda: torch.baddbmm(b, x, w_oi.transpose(1, 2)))),
        (micros(lambda: torch.bmm(g, w_io.transpose(1, 2))), micros(lambda: torch.bmm(g, w_oi))),
        (micros(lambda: torch.bmm(x.transpose(1, 2), g)), micros(lambda: torch.bmm(g.transpose(1, 2), x))),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=15)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"members {args.members}, batch {args.batch}, 1 thread, torch {torch.__version__}, load {os.getloadavg()}")
    print("| in → out | forward in / out-major | input grad in / out | weight grad in / out | sum in / out |")
    print("|---|---|---|---|---|")
    for n_in, n_out in SHAPES:
        fwd, gx, gw = layer(args.members, args.batch, n_in, n_out)
        total = [sum(v) for v in zip(fwd, gx, gw, strict=True)]
        print(f"| {n_in} → {n_out} | {fwd[0]:.0f} / {fwd[1]:.0f} | {gx[0]:.0f} / {gx[1]:.0f} | "
              f"{gw[0]:.0f} / {gw[1]:.0f} | {total[0]:.0f} / {total[1]:.0f} |")


if __name__ == "__main__":
    main()
