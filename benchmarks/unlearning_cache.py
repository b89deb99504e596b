"""How often the unlearning task trains its shared models: computations vs cache hits over one seed's methods.

Run: ``python benchmarks/unlearning_cache.py [--suite unlearning] [--dataset sklearn:digits] [--seed 0]``

Runs every method of the suite for one (dataset, seed) through the real trial path, in one process on one thread,
with a fresh cache folder, then the same trials again (a rerun, or another worker, reading the disk cache). Prints,
per cached kind (pre-training, oracles with their replicas, DMM's datamodels), how many were computed and how many
read back, and the CPU seconds of each pass. Expected: one pre-training, one oracle set and one datamodel set
computed for the seed, every other method a hit; the second pass computes nothing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from lossbench.runner import expand
from lossbench.specs import TrialSpec
from lossbench.suite import load_suite
from lossbench.trial import execute
from lossbench.unlearning import cache


def one_pass(specs: list[TrialSpec]) -> tuple[float, dict[str, int], list[str]]:
    cache.COUNTS.clear()
    start = time.process_time()
    statuses = [execute(spec).status for spec in specs]
    return time.process_time() - start, dict(sorted(cache.COUNTS.items())), statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="unlearning")
    parser.add_argument("--dataset", default="sklearn:digits")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        os.environ["LOSSBENCH_CACHE_DIR"] = folder
        specs, _ = expand(load_suite(args.suite), datasets=[args.dataset], seeds=[args.seed])
        print(f"{args.suite}, {args.dataset}, seed {args.seed}: {len(specs)} trials "
              f"({', '.join(str(s.objective) for s in specs)})")
        for name in ("fresh cache", "second pass"):
            seconds, counts, statuses = one_pass(specs)
            ok = sum(s == "ok" for s in statuses)
            tally = ", ".join(f"{k} {v}" for k, v in counts.items())
            print(f"  {name}: {seconds:.1f} CPU s, {ok}/{len(specs)} ok; {tally}")


if __name__ == "__main__":
    main()
