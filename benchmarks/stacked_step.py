"""One step of the loss × seed stacked model, and the variants tried for it: where the time goes, and what wins.

Run: ``python benchmarks/stacked_step.py [--members 15] [--steps 300] [--compile] [--profile] [--pairs 20]``

The throughput grid's model (MLP F → 128 → 128 → 2, batch 256) with ``--members`` models stacked (3 losses ×
5 seeds = 15), one thread. Variants, alternating, each timed in CPU seconds (``time.process_time``: the machine is
shared, and wall time would count the waiting):

- ``StackedLinear``: what ``vectorized.StackedMLP`` does: ``(S, in, out)`` weights, but ``(S, out, in)`` for the
  layer that narrows (128 → 2), each product of forward and backward in its fast layout; fused Adam;
- ``baddbmm``: every layer ``(S, in, out)`` through autograd's ``baddbmm`` (what 0.2.0 did), fused Adam;
- ``einsum``: ``torch.einsum("sbi,sio->sbo")`` + bias instead of ``baddbmm``;
- ``foreach`` / ``default`` Adam instead of ``fused``;
- ``compiled`` (with ``--compile``): ``torch.compile`` of the forward + loss.

The order of the variants is reversed every other repeat; medians are printed.

``--profile`` prints torch.profiler's table of the StackedLinear step (self CPU time by operator).
``--features`` sets the input width (the grid's datasets have 6 to 100 after one-hot encoding).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from lossbench.vectorized import StackedLinear

FEATURES, HIDDEN, CLASSES, BATCH, ROWS = 30, 128, 2, 256, 4096


def make(members: int, adam: str, out_major: bool = False) -> tuple[list[torch.Tensor], torch.optim.Optimizer]:
    """Stacked weights ``(S, in, out)``; with ``out_major``, ``(S, out, in)`` for a layer that narrows."""
    torch.manual_seed(0)
    widths = [FEATURES, HIDDEN, HIDDEN, CLASSES]
    params = []
    for a, b in itertools.pairwise(widths):
        shape = (members, b, a) if out_major and b < a else (members, a, b)
        params += [torch.randn(*shape).mul_(a**-0.5).requires_grad_(), torch.zeros(members, b, requires_grad=True)]
    options = {} if adam == "default" else {adam: True}
    return params, torch.optim.Adam(params, lr=1e-3, **options)


def stacked_forward(layer: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
                    params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The MLP over stacked ``(weight, bias)`` pairs, each layer computed by ``layer(h, weight, bias)``."""
    h = x
    for i in range(0, len(params), 2):
        h = layer(h, params[i], params[i + 1])
        if i + 2 < len(params):
            h = torch.relu(h)
    return h


def bmm_layer(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.baddbmm(b.unsqueeze(1), h, w)


def layout_layer(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # make(out_major=True) stores a narrowing layer (S, out, in): its last axis is the input's width
    return StackedLinear.apply(h, w, b, w.shape[2] == h.shape[-1] and w.shape[1] != w.shape[2])


def einsum_layer(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.einsum("sbi,sio->sbo", h, w) + b.unsqueeze(1)


forward_bmm = functools.partial(stacked_forward, bmm_layer)
forward_layout = functools.partial(stacked_forward, layout_layer)
forward_einsum = functools.partial(stacked_forward, einsum_layer)


def objective(forward: Callable, params: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    logits = forward(params, x)
    return F.cross_entropy(logits.reshape(-1, CLASSES), y.reshape(-1), reduction="none").view(y.shape).mean(1)


def cpu_ms_per_step(members: int, steps: int, forward: Callable, adam: str, compiled: bool = False) -> float:
    params, opt = make(members, adam, out_major=forward is forward_layout)
    X, y = torch.randn(members, ROWS, FEATURES), torch.randint(0, CLASSES, (members, ROWS))
    fn = torch.compile(objective, dynamic=False) if compiled else objective
    for i in range(steps + 20):
        if i == 20:  # warm-up (and compilation) excluded
            t0 = time.process_time()
        idx = torch.randint(0, ROWS, (BATCH,))
        opt.zero_grad(set_to_none=True)
        value = fn(forward, params, X[:, idx], y[:, idx])
        value.detach().tolist()  # the host sync of the real step
        value.sum().backward()
        opt.step()
    return 1e3 * (time.process_time() - t0) / steps


def paired(members: int, steps: int, pairs: int) -> None:
    """StackedLinear against 0.2.0's baddbmm step, alternating (order swapped every pair): on a shared machine
    the CPU time of one and the same step drifts by ±25 % between runs, so only many pairs say anything."""
    torch.set_num_threads(1)
    layout, bmm = [], []
    for i in range(pairs):
        both = [(forward_layout, layout), (forward_bmm, bmm)]
        for forward, out in both if i % 2 == 0 else both[::-1]:
            out.append(cpu_ms_per_step(members, steps, forward, "fused"))
    ratios = sorted(b / a for a, b in zip(layout, bmm, strict=True))
    print(f"StackedLinear ms/step: {' '.join(f'{x:.2f}' for x in layout)}")
    print(f"baddbmm ms/step:       {' '.join(f'{x:.2f}' for x in bmm)}")
    print(f"medians {statistics.median(layout):.2f} vs {statistics.median(bmm):.2f}; per-pair speed-up, sorted: "
          f"{' '.join(f'{r:.2f}' for r in ratios)} (median {statistics.median(ratios):.3f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=15)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--features", type=int, default=FEATURES)
    ap.add_argument("--pairs", type=int, default=0,
                    help="instead: this many alternating (StackedLinear, baddbmm) pairs, each pair's ratio printed")
    args = ap.parse_args()
    globals()["FEATURES"] = args.features
    if args.pairs:
        paired(args.members, args.steps, args.pairs)
        return
    torch.set_num_threads(1)
    print(f"members {args.members}, MLP {FEATURES}-{HIDDEN}-{HIDDEN}-{CLASSES}, batch {BATCH}, 1 thread, "
          f"torch {torch.__version__}, load {os.getloadavg()}")
    variants: dict[str, Callable[[], float]] = {
        "StackedLinear + fused Adam": lambda: cpu_ms_per_step(args.members, args.steps, forward_layout, "fused"),
        "baddbmm + fused Adam": lambda: cpu_ms_per_step(args.members, args.steps, forward_bmm, "fused"),
        "einsum + fused Adam": lambda: cpu_ms_per_step(args.members, args.steps, forward_einsum, "fused"),
        "baddbmm + foreach Adam": lambda: cpu_ms_per_step(args.members, args.steps, forward_bmm, "foreach"),
        "baddbmm + default Adam": lambda: cpu_ms_per_step(args.members, args.steps, forward_bmm, "default"),
    }
    if args.compile:
        variants["baddbmm compiled + fused Adam"] = lambda: cpu_ms_per_step(args.members, args.steps, forward_bmm,
                                                                          "fused", compiled=True)
    times: dict[str, list[float]] = {k: [] for k in variants}
    for rep in range(args.repeats):
        order = list(variants.items())
        for name, fn in order if rep % 2 == 0 else order[::-1]:  # the first of a round runs colder
            times[name].append(fn())
    base = statistics.median(times["baddbmm + fused Adam"])
    print("| variant | CPU ms/step (median) | per member | vs baddbmm + fused (0.2.0) |")
    print("|---|---|---|---|")
    for name, v in times.items():
        m = statistics.median(v)
        print(f"| {name} | {m:.2f} | {m / args.members:.3f} | {base / m:.2f}x |")
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            cpu_ms_per_step(args.members, 100, forward_layout, "fused")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    print(f"load at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
