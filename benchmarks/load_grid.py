"""Run a large grid of tiny trials and report the driver's peak memory (default 2,000 trials).

Usage: python benchmarks/load_grid.py [--seeds 500] [--losses ce,focal,weighted-ce,anyloss-f1] [--n-jobs 2]

The grid is one small synthetic dataset × losses × seeds, a one-layer MLP trained for one epoch, so the
cost is dominated by the per-trial machinery (dispatch, rows, fragments, resume bookkeeping), which is what
a long run stresses. Only the driver process is measured (``getrusage(RUSAGE_SELF)``): workers are
separate processes whose peak is in each row's ``peak_rss_mb``. At the end the results are opened with
plain pandas, as a user would.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lossbench.backends import BackendConfig
from lossbench.runner import plan, run
from lossbench.store import ResultStore
from lossbench.suite import parse_suite


def rss_mb() -> float:
    """Peak resident memory of this (the driver) process so far; ru_maxrss is KiB on Linux."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """Resident memory now, from /proc (Linux); the peak alone cannot show growth after a spike."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=500)
    parser.add_argument("--losses", default="ce,focal,weighted-ce,anyloss-f1")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="Results directory (default: a temporary one).")
    args = parser.parse_args()
    losses = [x for x in args.losses.split(",") if x]
    suite = parse_suite({
        "name": "load", "version": "1", "task": "classification",
        "datasets": ["synthetic:classification#n=200&features=5&informative=3"],
        "losses": losses, "seeds": args.seeds, "primary_metric": "balanced_accuracy",
        "model": {"family": "mlp", "hidden": [8]},
        "training": {"epochs": 1, "batch_size": 64, "patience": 0},
    }, "load_grid")
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "results"
        store = ResultStore(out)
        t0 = time.perf_counter()
        the_plan = plan(store, suite)
        t_plan = time.perf_counter() - t0
        before = current_rss_mb()
        marks: list[tuple[int, float]] = []

        def on_result(_: object) -> None:
            marks.append((len(marks) + 1, current_rss_mb()))

        t0 = time.perf_counter()
        rows = run(store, the_plan, backend=BackendConfig("loky", args.n_jobs), on_result=on_result)
        t_run = time.perf_counter() - t0
        import pandas as pd

        t0 = time.perf_counter()
        frame = pd.read_parquet(out / "trials")
        t_read = time.perf_counter() - t0
        n = len(the_plan.trials)
        statuses = frame["status"].value_counts().to_dict()
        print(f"trials: {n} planned, {len(rows)} run, {len(frame)} rows read back by pandas, statuses {statuses}")
        print(f"plan: {t_plan:.1f} s; run: {t_run:.1f} s ({n / t_run:.1f} trials/s, n_jobs={args.n_jobs}); "
              f"pandas read: {t_read:.2f} s")
        steps = ", ".join(f"{marks[min(len(marks) - 1, len(marks) * q // 4)][1]:.0f}" for q in (0, 1, 2, 3, 4)) \
            if marks else "-"
        print(f"driver RSS: {before:.0f} MB before the run; after the first trial, 25%, 50%, 75%, 100% of the "
              f"trials: {steps} MB; {current_rss_mb():.0f} MB at the end; peak {rss_mb():.0f} MB")
        assert len(frame) == n and frame["trial_id"].is_unique, "every trial must be read back exactly once"
        if rss_mb() >= 500:
            raise SystemExit(f"driver peak RSS {rss_mb():.0f} MB is over the 500 MB budget")


if __name__ == "__main__":
    main()
