"""Trials per minute: lossbench against the hand-written loop (benchmarks/plain_loop.py) on the same grid.

Run: ``python benchmarks/throughput.py --openml-cache /tmp/openml_cache [--datasets 14] [--repeats 1]``

The grid is the ``imbalanced`` suite's datasets (the first ``--datasets`` of them, smallest first when
fewer than all) × ce, focal, anyloss-f1 × 5 seeds, with the model and budget of the plain loop: MLP
2×128, 30 epochs, batch 256, Adam (lr 0.002), no early stopping (patience 0), so both do the same
number of optimiser steps. Each variant runs in a child process, variants alternate, and every figure
is printed next to ``os.getloadavg()``: on a shared machine timings are noisy.

Printed: trials/minute per variant and its ratio to the plain loop; the share of wall time outside
forward, backward, optimiser step and evaluation (measured by timing those calls in-process) for the
plain loop (its ``run_trial``, run from this script) and for sequential lossbench runs, so the harness
overhead is what lossbench adds beyond the hand-written loop's own share; 1 → 2 worker scaling; the
driver's peak memory and CPU time; and the compute floor (grid forward + backward FLOPs / single-core
matmul rate × cores), with each variant's time as a multiple of it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

LOSSES = ["ce", "focal", "anyloss-f1"]
SEEDS = 5
#: short name -> (printed name, lossbench arguments); "vectorised" is the default since stacking became the default
VARIANTS = {
    "seq": ("lossbench --n-jobs 1 --no-vectorize", ["--n-jobs", "1", "--no-vectorize", "--instrument"]),
    "par": ("lossbench --n-jobs 2 --no-vectorize", ["--n-jobs", "2", "--no-vectorize"]),
    "vec-seq": ("lossbench --n-jobs 1", ["--n-jobs", "1", "--instrument"]),
    "vec-par": ("lossbench --n-jobs 2", ["--n-jobs", "2"]),
}
TRAINING = {"epochs": 30, "batch_size": 256, "optimizer": "adam", "lr": 0.002, "patience": 0}
HIDDEN = [128, 128]


def bench_suite(datasets: list[str], path: Path) -> Path:
    rows = ", ".join(f'"{d}"' for d in datasets)
    training = "\n".join(f"{k} = {json.dumps(v)}" for k, v in TRAINING.items())
    path.write_text(f'''name = "throughput"
version = "1"
task = "classification"
datasets = [{rows}]
losses = {json.dumps(LOSSES)}
seeds = {SEEDS}
primary_metric = "f1_tuned"
metrics = ["f1", "auprc", "auroc"]

[model]
family = "mlp"
hidden = {json.dumps(HIDDEN)}
dropout = 0.0

[training]
{training}

[split]
test = 0.3
val = 0.2
''')
    return path


# -- child: one lossbench run, optionally with its compute timed ---------------------------------------
class Timer:
    """Time spent inside wrapped calls; nested wrapped calls count once (in the outermost)."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self.depth = 0

    def wrap(self, owner: Any, name: str, label: str) -> None:
        inner = getattr(owner, name)
        timer = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            if timer.depth:
                return inner(*args, **kwargs)
            timer.depth += 1
            t = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                timer.spent[label] = timer.spent.get(label, 0.0) + time.perf_counter() - t
                timer.depth -= 1

        setattr(owner, name, timed)


def child(args: argparse.Namespace) -> None:
    import torch

    from lossbench.backends import BackendConfig
    from lossbench.provenance import resolve_device
    from lossbench.runner import plan, run
    from lossbench.store import ResultStore
    from lossbench.suite import load_suite

    timer = Timer()
    if args.instrument:  # only meaningful in-process (--n-jobs 1: trials run in this process)
        from lossbench.losses.base import LossBase
        from lossbench.models.mlp import MLP
        from lossbench.tasks.classification import TabularClassification
        from lossbench.vectorized import StackedMLP

        for owner in (MLP, StackedMLP, LossBase):
            timer.wrap(owner, "forward", "forward")
        timer.wrap(torch.Tensor, "backward", "backward")
        for opt in (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD):
            timer.wrap(opt, "step", "optimizer")
        timer.wrap(TabularClassification, "evaluate", "evaluation")
    os.environ["OPENML_CACHE_DIR"] = args.openml_cache
    suite = load_suite(args.suite)
    t0, cpu0 = time.perf_counter(), time.process_time()
    store = ResultStore(Path(args.out))
    device = resolve_device(args.device)
    the_plan = plan(store, suite, device=device)
    rows = run(store, the_plan, backend=BackendConfig("loky", args.n_jobs, gpu=device.startswith("cuda")),
               vectorize=not args.no_vectorize)
    wall = time.perf_counter() - t0
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    import psutil

    # the workers are still alive (joblib keeps its pool): their CPU time, which RUSAGE_CHILDREN may never see
    workers_cpu = 0.0
    for proc in psutil.Process().children(recursive=True):
        try:
            times = proc.cpu_times()
            workers_cpu += times.user + times.system
        except psutil.Error:
            pass
    modes: dict[str, int] = {}
    for r in rows:
        modes[r["training_mode"]] = modes.get(r["training_mode"], 0) + 1
    print(json.dumps({"trials": len(rows), "wall_s": wall, "driver_cpu_s": time.process_time() - cpu0,
                      "workers_cpu_s": workers_cpu, "modes": modes, "device": device,
                      "statuses": statuses, "spent": timer.spent,
                      "load": os.getloadavg(), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def plain_child(args: argparse.Namespace) -> None:
    """benchmarks/plain_loop.py's loop, with the same calls timed as in lossbench's instrumented runs."""
    import torch
    from torch import nn

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import plain_loop

    from lossbench.losses.base import LossBase
    from lossbench.sources import load_dataset

    timer = Timer()
    for owner in (nn.Sequential, LossBase):
        timer.wrap(owner, "forward", "forward")
    timer.wrap(torch.Tensor, "backward", "backward")
    timer.wrap(torch.optim.Adam, "step", "optimizer")
    for name in ("f1_score", "roc_auc_score"):
        timer.wrap(plain_loop, name, "evaluation")
    torch.set_num_threads(1)
    os.environ["OPENML_CACHE_DIR"] = args.openml_cache
    data = [load_dataset(uri) for uri in args.datasets_uri]
    loop_args = argparse.Namespace(epochs=TRAINING["epochs"], batch_size=TRAINING["batch_size"], hidden=HIDDEN,
                                   lr=TRAINING["lr"], test=0.3, val=0.2)
    t0 = time.perf_counter()
    n = 0
    for ds in data:
        for loss in LOSSES:
            for seed in range(SEEDS):
                plain_loop.run_trial(ds.X, ds.y, loss, seed, loop_args)
                n += 1
    wall = time.perf_counter() - t0
    print(json.dumps({"trials": n, "wall_s": wall, "spent": timer.spent, "load": os.getloadavg(),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


# -- parent ------------------------------------------------------------------------------------------
def cpu_seconds() -> float:
    """User + system CPU time of this process's finished children (and the workers they waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_child(cmd: list[str]) -> dict[str, Any]:
    before, cpu = os.getloadavg(), cpu_seconds()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if out.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["load_before"] = before
    # on a loaded machine the comparable figure (wall time includes the waiting); workers that were never
    # reaped are missing from RUSAGE_CHILDREN, so the child's own count of them is taken when larger
    result["cpu_s"] = max(cpu_seconds() - cpu, result.get("driver_cpu_s", 0.0) + result.get("workers_cpu_s", 0.0))
    return result


def cpu_model() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def matmul_rate(n: int = 1024, repeats: int = 10) -> float:
    """Single-thread float32 matmul FLOP/s: the best a core does on dense work (median of repeats)."""
    import statistics

    import torch

    torch.set_num_threads(1)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times)


def grid_flops(datasets: list[str], suite_path: Path) -> float:
    """Forward + backward FLOPs of training (3 × forward per row and epoch) plus validation/test forwards."""
    from lossbench.runner import plan
    from lossbench.suite import load_suite
    from lossbench.tasks import TASK_TYPES
    from lossbench.trial import cached_dataset

    suite = load_suite(str(suite_path))
    total = 0.0
    task = TASK_TYPES.get("classification")
    seen: set[str] = set()
    for spec in plan(None, suite).trials:
        if spec.dataset in seen or spec.seed != 0:
            continue
        seen.add(spec.dataset)
        prepared = task.prepare(cached_dataset(spec.dataset), spec)
        widths = [prepared.n_features, *HIDDEN, prepared.n_classes]
        macs = sum(a * b for a, b in itertools.pairwise(widths))
        n_train, n_val, n_test = len(prepared.train), len(prepared.split("val")), len(prepared.test)
        epochs = TRAINING["epochs"]
        per_trial = 2 * macs * (3 * n_train * epochs + n_val * epochs + n_test)
        total += per_trial * len(LOSSES) * SEEDS
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--openml-cache", required=True)
    ap.add_argument("--datasets", type=int, default=14, help="how many of the suite's datasets (smallest first)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--suite", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--n-jobs", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--no-vectorize", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--vectorize", action="store_true", help=argparse.SUPPRESS)  # the default; ab_throughput.py
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto: where the lossbench variants train")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help=f"comma-separated subset of {','.join(VARIANTS)} (the plain loop is always run)")
    ap.add_argument("--instrument", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--plain-child", dest="datasets_uri", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    if args.datasets_uri:
        plain_child(args)
        return

    os.environ["OPENML_CACHE_DIR"] = args.openml_cache
    from lossbench.sources import load_dataset
    from lossbench.suite import load_suite

    uris = list(load_suite("imbalanced").datasets)
    sizes = {u: len(load_dataset(u).y) for u in uris}
    chosen = uris if args.datasets >= len(uris) else sorted(uris, key=sizes.get)[: args.datasets]
    tmp = Path(tempfile.mkdtemp(prefix="lossbench-throughput-"))
    suite_path = bench_suite(chosen, tmp / "throughput.toml")
    n_trials = len(chosen) * len(LOSSES) * SEEDS
    print(f"cpu: {cpu_model()}; device for lossbench: {args.device}")
    print(f"grid: {len(chosen)} datasets ({sum(sizes[u] for u in chosen)} rows) x {len(LOSSES)} losses x {SEEDS} seeds"
          f" = {n_trials} trials; MLP {HIDDEN}, {TRAINING}; cores {os.cpu_count()}; load {os.getloadavg()}")

    # plain_loop.py's run_trial, with forward/backward/step/evaluation timed like the lossbench runs
    plain = [sys.executable, "benchmarks/throughput.py", "--openml-cache", args.openml_cache, "--plain-child", *chosen]
    lb = [sys.executable, "benchmarks/throughput.py", "--child", "--suite", str(suite_path),
          "--openml-cache", args.openml_cache, "--device", args.device]
    chosen_variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(chosen_variants) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}; choose from {', '.join(VARIANTS)}")
    variants = {"plain loop (1 process)": plain,
                **{VARIANTS[v][0]: [*lb, *VARIANTS[v][1]] for v in chosen_variants}}
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in variants}
    for rep in range(args.repeats):
        for name, cmd in variants.items():  # alternating, so slow drifts in load hit every variant alike
            extra = ["--out", str(tmp / f"out-{rep}-{len(results[name])}-{abs(hash(name))}")] if cmd is not plain else []
            r = run_child([*cmd, *extra])
            results[name].append(r)
            print(f"  {name}: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} CPU-s, load "
                  f"{tuple(round(x, 2) for x in r['load'])}" + (f", modes {r['modes']}" if "modes" in r else ""),
                  flush=True)

    rate = matmul_rate()
    cores = os.cpu_count() or 1
    flops = grid_flops(chosen, suite_path)
    floor = flops / (rate * cores)
    best = {k: min(r["wall_s"] for r in v) for k, v in results.items()}
    base = best["plain loop (1 process)"]
    print(f"\ncompute floor: {flops / 1e12:.2f} TFLOP / ({rate / 1e9:.1f} GFLOP/s x {cores} cores) = {floor:.1f} s")
    cpu_base = min(r["cpu_s"] for r in results["plain loop (1 process)"])
    print("| variant | wall s | trials/min | vs plain loop | x floor | CPU-s | vs plain loop (CPU-s) | load at end |")
    print("|---|---|---|---|---|---|---|---|")
    for name, v in results.items():
        w = best[name]
        r = min(v, key=lambda x: x["wall_s"])
        print(f"| {name} | {w:.1f} | {60 * n_trials / w:.1f} | {base / w:.2f}x | {w / floor:.1f} | {r['cpu_s']:.1f} | "
              f"{cpu_base / r['cpu_s']:.2f}x | {', '.join(f'{x:.1f}' for x in r['load'])} |")
    for name in ("plain loop (1 process)", VARIANTS["seq"][0], VARIANTS["vec-seq"][0]):
        if name not in results:
            continue
        r = min(results[name], key=lambda x: x["wall_s"])
        spent = r["spent"]
        compute = sum(spent.values())
        strict = spent.get("forward", 0) + spent.get("backward", 0) + spent.get("evaluation", 0)
        print(f"time outside compute, {name}: {100 * (1 - compute / r['wall_s']):.1f}% outside forward, backward, "
              f"optimiser step, evaluation ({100 * (1 - strict / r['wall_s']):.1f}% counting the optimiser step as "
              f"overhead); split: " + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(spent.items())))
    for one, two in ((VARIANTS["seq"][0], VARIANTS["par"][0]), (VARIANTS["vec-seq"][0], VARIANTS["vec-par"][0])):
        if one not in best or two not in best:
            continue
        print(f"1 -> 2 worker scaling ({one}): {100 * best[one] / (2 * best[two]):.0f}% "
              f"(speed-up {best[one] / best[two]:.2f}x)")
    for name, v in results.items():
        cpu = [r["driver_cpu_s"] for r in v if "driver_cpu_s" in r]
        print(f"peak RSS of the driver process, {name}: {max(r['peak_rss_mb'] for r in v):.0f} MB"
              + (f"; driver CPU {min(cpu):.1f} s" if cpu else ""))
    print(f"load at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
