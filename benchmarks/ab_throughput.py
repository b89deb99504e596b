"""Throughput of two or more checkouts of lossbench on the same grid, in one sitting, runs alternating.

Run: ``python benchmarks/ab_throughput.py --openml-cache /tmp/lb_openml --checkout before=/tmp/base
--checkout after=. [--datasets 6] [--repeats 3]``

Each checkout runs ``benchmarks/throughput.py --child`` (its own copy) on one suite written by this script: the
grid and budget of ``throughput.py`` (the first ``--datasets`` of the ``imbalanced`` suite, smallest first).
Variants (``--n-jobs 1`` and ``2``, ``--no-vectorize`` and ``--vectorize``) and checkouts alternate, the order
reversed every repeat, so a drift in the machine's load hits each alike. Printed: every run's wall time (and, for
``--n-jobs 1``, the CPU time of the process that trains), then per variant the best of the repeats and its ratio
to the first checkout. A checkout of another version may compute different values; the work is the same
(patience 0: every trial runs every epoch).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
sys.path.insert(0, str(ROOT / "benchmarks"))

# Explicit on both sides: per trial was the default before stacking became it. A checkout older than
# --no-vectorize (in throughput.py's child) fails on the --no-vectorize variants.
VARIANTS = {"--n-jobs 1 --no-vectorize": ["--n-jobs", "1", "--no-vectorize"],
            "--n-jobs 1 --vectorize": ["--n-jobs", "1", "--vectorize"],
            "--n-jobs 2 --no-vectorize": ["--n-jobs", "2", "--no-vectorize"],
            "--n-jobs 2 --vectorize": ["--n-jobs", "2", "--vectorize"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--openml-cache", required=True)
    ap.add_argument("--checkout", action="append", required=True, help="LABEL=PATH of a lossbench checkout")
    ap.add_argument("--datasets", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help="comma-separated subset of: " + ", ".join(VARIANTS))
    args = ap.parse_args()
    variants = {v.strip(): VARIANTS[v.strip()] for v in args.variants.split(",") if v.strip()}
    checkouts = dict(c.split("=", 1) for c in args.checkout)
    os.environ["OPENML_CACHE_DIR"] = args.openml_cache
    import throughput

    from lossbench.sources import load_dataset
    from lossbench.suite import load_suite

    uris = list(load_suite("imbalanced").datasets)
    sizes = {u: len(load_dataset(u).y) for u in uris}
    chosen = sorted(uris, key=sizes.get)[: args.datasets]
    tmp = Path(tempfile.mkdtemp(prefix="lossbench-ab-"))
    suite = throughput.bench_suite(chosen, tmp / "throughput.toml")
    print(f"grid: {chosen}; checkouts {checkouts}; load {os.getloadavg()}", flush=True)
    walls: dict[tuple[str, str], list[float]] = {}
    for rep in range(args.repeats):
        for variant, extra in variants.items():
            order = list(checkouts.items())
            for label, path in order if rep % 2 == 0 else order[::-1]:
                cmd = [sys.executable, "benchmarks/throughput.py", "--child", "--suite", str(suite), "--openml-cache",
                       args.openml_cache, "--out", str(tmp / f"{label}-{rep}-{variant.replace(' ', '')}"), *extra]
                out = subprocess.run(cmd, capture_output=True, text=True, cwd=path,
                                     env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(path).resolve())})
                if out.returncode:
                    sys.exit(f"{label} {variant} failed:\n{out.stderr[-3000:]}")
                r = json.loads(out.stdout.strip().splitlines()[-1])
                walls.setdefault((label, variant), []).append(r["wall_s"])
                cpu = f", {r['driver_cpu_s']:.1f} s CPU" if "--n-jobs 1" in variant else ""
                print(f"  {rep} {label} {variant}: {r['wall_s']:.1f} s{cpu}, {r['statuses']}, "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
    first = next(iter(checkouts))
    print(f"\n| variant | {' | '.join(checkouts)} (best of {args.repeats}, s) | " +
          " | ".join(f"{c} / {first}" for c in list(checkouts)[1:]) + " |")
    print("|---|" + "---|" * (2 * len(checkouts) - 1))
    for variant in variants:
        best = {c: min(walls[(c, variant)]) for c in checkouts}
        print(f"| {variant} | " + " | ".join(f"{best[c]:.1f}" for c in checkouts) + " | " +
              " | ".join(f"{best[c] / best[first]:.2f}" for c in list(checkouts)[1:]) + " |")


if __name__ == "__main__":
    main()
