"""Forward + backward cost of every registered loss relative to ``ce``.

Run: ``python benchmarks/loss_cost.py [--repeats 200] [--batch 4096] [--classes 10] [--markdown]``

Every loss sees the same (batch × classes) float32 logits on the CPU with torch limited to one
thread; each timing is the median over repeats of one forward and one backward pass (fresh
leaf tensor each time, loss object built once, as in training). Ratios are to ``ce`` measured
in the same run, so machines can be compared by ratio rather than by absolute time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from lossbench.conformance import context, extras_for
from lossbench.losses import LOSSES, make_loss

#: Targets from the performance budget: named families within 1.5x of ce, everything else within 3x.
TIGHT = {"comp-sum": 1.5, "metric-surrogate": 1.5, "ldr": 1.5}
DEFAULT_TARGET = 3.0


def target_for(name: str) -> float:
    return TIGHT.get(LOSSES.get(name).info.family, DEFAULT_TARGET)


def time_loss(name: str, x: torch.Tensor, y: torch.Tensor, repeats: int, warmup: int = 10) -> float:
    k = x.shape[1]
    b = x.shape[0]
    ctx = context(k) | {"n_samples": b}
    loss = make_loss(name, None, **ctx)
    extras = extras_for(loss, b)
    times = []
    for i in range(warmup + repeats):
        leaf = x.detach().clone().requires_grad_(True)
        start = time.perf_counter()
        loss(leaf, y, **extras).backward()
        elapsed = time.perf_counter() - start
        if i >= warmup:
            times.append(elapsed)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, args.classes, generator=g)
    y = torch.randint(0, args.classes, (args.batch,), generator=g)
    names = [n for n in LOSSES.names() if args.classes >= 3 or "binary" in LOSSES.get(n).info.tasks]
    xb = x[:, :2].contiguous()
    yb = y % 2
    rows = []
    ce = time_loss("ce", x, y, args.repeats)
    ce_binary = time_loss("ce", xb, yb, args.repeats)
    for name in names:
        binary_only = "multiclass" not in LOSSES.get(name).info.tasks
        # binary-only losses are timed on the first two columns, against ce on the same input
        t = time_loss(name, xb, yb, args.repeats) if binary_only else time_loss(name, x, y, args.repeats)
        ratio = t / (ce_binary if binary_only else ce)
        target = target_for(name)
        rows.append((name, t * 1e6, ratio, target, ratio <= target, binary_only))
    if args.markdown:
        print("| loss | median µs | × ce | target | met |")
        print("|---|---:|---:|---:|---|")
        for name, us, ratio, target, ok, binary_only in rows:
            label = f"{name} (K=2)" if binary_only else name
            print(f"| `{label}` | {us:.0f} | {ratio:.2f} | ≤ {target:g} | {'yes' if ok else '**no**'} |")
    else:
        for name, us, ratio, target, ok, _ in rows:
            flag = "" if ok else "  MISSES TARGET"
            print(f"{name:18s} {us:9.0f} us  {ratio:5.2f}x ce  (target {target:g}x){flag}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
