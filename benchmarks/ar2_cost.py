"""Cost and quality of one trial of each objective of the ``retrieval-ar2`` suite (query–document, stdlib docs).

Each trial runs exactly as ``lossbench run`` runs it (:func:`lossbench.trial.execute`: ``trial.setup``, the
suite's typed configuration, the training loop, the test metrics and the method's row columns), one thread, one
after the other in this process, and prints per seed and objective: epochs, CPU seconds of the trial
(``process_time``, which another job on the machine does not inflate), its wall, training and evaluation seconds,
test R@1/R@5/R@20/MRR@10, and for ``ar2`` the reranked metrics and the seconds spent in index refreshes, ranker
updates and candidate scoring, and the test reranking. The load average is printed before and after.

    python benchmarks/ar2_cost.py --seeds 0 1 --markdown
    python benchmarks/ar2_cost.py --objectives infonce ance ar2:adv_lambda=0 --seeds 0
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import torch

from lossbench.runner import expand
from lossbench.suite import load_suite
from lossbench.trial import execute

SUITE = "retrieval-ar2"
COLUMNS = ("epochs_run", "cpu_s", "wall_s", "train_s", "eval_s", "m_recall_at_1", "m_recall_at_5", "m_recall_at_20",
           "m_mrr_at_10", "m_rr_recall_at_1", "m_rr_recall_at_5", "m_rr_mrr_at_10", "m_index_refreshes", "m_index_s",
           "m_ranker_s", "m_rerank_s")


def rows(objectives: list[str] | None, seeds: list[int]) -> list[dict[str, Any]]:
    specs, _ = expand(load_suite(SUITE), losses=objectives, seeds=seeds)
    out = []
    for spec in sorted(specs, key=lambda s: s.seed):
        start = time.process_time()
        row = execute(spec).row
        if row["status"] != "ok":
            raise SystemExit(f"{spec.loss} seed {spec.seed}: {row['status']}: {row['error_msg']}")
        out.append({**row, "cpu_s": time.process_time() - start})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--objectives", nargs="+", default=None,
                        help="specs as in a suite, e.g. ar2:warmup_epochs=5 (default: the suite's)")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    results = rows(args.objectives, args.seeds)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    keys = ["loss", "seed", *COLUMNS]
    if args.markdown:
        print("| " + " | ".join(k.removeprefix("m_") for k in keys) + " |")
        print("|" + "---|" * len(keys))
    for row in results:
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in (row.get(k, "") for k in keys)]
        cells = ["" if c == "nan" else c for c in cells]
        print(("| " + " | ".join(cells) + " |") if args.markdown
              else "  ".join(f"{k.removeprefix('m_')}={c}" for k, c in zip(keys, cells, strict=True)))


if __name__ == "__main__":
    main()
