"""Cost of Betti matching per image: persistence + image persistence + induced matching, and the loss's backward.

Run: ``python benchmarks/betti_cost.py [--sizes 64 128] [--images 20] [--markdown] [--absolute]``

Relative homology (the loss's default: images padded with a ring at their maximum) unless ``--absolute``.

Predictions P are made from procedural vessel masks G (``seg:vessels``) at two stages of training:
"early" (a blurred noise field around 0.5: many short noise bars) and "trained" (the blurred mask
plus a little noise). Each timing is the median over images of one call on one core (numba kernel,
compiled before timing), as wall time and as this process's CPU time (robust on a shared machine);
``cripser`` (C++ CubicalRipser) computing only the barcode of P is given for
scale, and the paper's C++ Betti matching takes about 3 ms at 64x64 (reference figure).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from lossbench.losses import topology
from lossbench.losses.topology import betti_matching, betti_matching_cost
from lossbench.sources.segmentation import make_images


def predictions(masks: np.ndarray, stage: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = []
    for g in masks:
        if stage == "early":
            p = 0.5 + 0.1 * ndimage.gaussian_filter(rng.normal(size=g.shape), 1.0)
        else:
            p = 0.05 + 0.9 * ndimage.gaussian_filter(g.astype(float), 0.8) + rng.normal(0, 0.05, g.shape)
        out.append(np.clip(p, 0, 1))
    return np.stack(out)


def median_ms(fn, items, clock=time.perf_counter) -> float:  # type: ignore[no-untyped-def]
    times = []
    for item in items:
        t = clock()
        fn(*item)
        times.append(clock() - t)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--absolute", action="store_true", help="absolute homology (relative=False)")
    args = ap.parse_args()
    relative = not args.absolute
    torch.set_num_threads(1)
    try:
        import cripser
    except ImportError:
        cripser = None
    topology._kernel()  # compile (or load from cache) before timing
    betti_matching(np.random.default_rng(0).random((8, 8)), np.zeros((8, 8)))
    rows = []
    for size in args.sizes:
        _, masks = make_images("vessels", args.images, size, seed=0)
        for stage in ("early", "trained"):
            preds = predictions(masks, stage, size)
            pairs = list(zip(preds, masks.astype(float), strict=True))
            bm = median_ms(lambda p, g: betti_matching(p, g, relative), pairs)
            # CPU time of this process: what the call costs when the machine is shared (wall time waits for others)
            bm_cpu = median_ms(lambda p, g: betti_matching(p, g, relative), pairs, time.process_time)
            tpairs = [(torch.tensor(p, requires_grad=True), torch.tensor(g > 0)) for p, g in pairs]
            loss = median_ms(lambda p, g: betti_matching_cost(p, g, relative=relative).backward(), tpairs)
            crip = median_ms(lambda p: cripser.computePH(1 - p, maxdim=1), [(p,) for p in preds]) if cripser else None
            n_bars = statistics.median(
                sum(len(m[k]) for m in betti_matching(p, g, relative) for k in ("p_birth_px", "p_un_birth_px"))
                for p, g in pairs
            )
            rows.append((size, stage, n_bars, bm, bm_cpu, loss, crip))
    if args.markdown:
        print("| size | predictions | bars of P | persistence + matching ms (wall) | (CPU) | loss + backward ms "
              "| cripser barcode ms |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for size, stage, n_bars, bm, bm_cpu, loss, crip in rows:
            c = f"{crip:.2f}" if crip is not None else "n/a"
            print(f"| {size}² | {stage} | {n_bars:.0f} | {bm:.2f} | {bm_cpu:.2f} | {loss:.2f} | {c} |")
    else:
        for r in rows:
            print(*r)


if __name__ == "__main__":
    main()
