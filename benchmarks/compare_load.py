"""Time ``compare`` over a large synthetic results directory (default 100,000 trial rows).

Usage: python benchmarks/compare_load.py [--datasets 200] [--losses 10] [--seeds 50] [--decimals 2]

Writes the rows with ResultStore.append (one fragment per dataset, as a real run leaves many), then
times reading them back and running the full comparison (bootstrap CIs, paired differences, ranks,
Friedman, pairwise Wilcoxon + Holm). ``--decimals 2`` rounds the values as an accuracy on a small
test set is, so most paired differences have ties and zeros (the exact signed-rank path).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lossbench.compare import compare
from lossbench.results import load_trials
from tests.resultgen import make_rows, noisy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=200)
    parser.add_argument("--losses", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--decimals", type=int, default=None, help="round the values (ties and zeros)")
    args = parser.parse_args()
    shape = (args.datasets, args.losses, args.seeds)
    values = noisy(shape, shift=np.linspace(-0.02, 0.02, args.losses))
    if args.decimals is not None:
        values = np.round(values, args.decimals)
    losses = ["ce", *[f"loss{i}" for i in range(1, args.losses)]]
    from lossbench.store import ResultStore

    with tempfile.TemporaryDirectory() as tmp:
        store = ResultStore(Path(tmp) / "results")
        store.open_for_writing()
        t0 = time.perf_counter()
        for i in range(args.datasets):
            rows = make_rows(values[i : i + 1], datasets=[f"d{i}"], losses=losses)
            store.append(rows)
        t_write = time.perf_counter() - t0
        t0 = time.perf_counter()
        trials = load_trials([store.root])
        t_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = compare(trials)
        t_compare = time.perf_counter() - t0
    n = len(trials)
    print(
        f"rows={n} datasets={args.datasets} losses={args.losses} seeds={args.seeds} fragments={args.datasets}"
        f" decimals={args.decimals}"
    )
    print(
        f"write={t_write:.2f}s load={t_load:.2f}s compare={t_compare:.2f}s total(load+compare)="
        f"{t_load + t_compare:.2f}s"
    )
    print(f"per_dataset rows={len(result.per_dataset)} pairwise tests={len(result.pairwise)}")


if __name__ == "__main__":
    main()
