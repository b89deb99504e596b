"""Cost and quality of one training of infonce, ance and ar2 on ``bundled:stdlib-docs`` (query–document).

Trains the ``retrieval`` suite's pair configuration (two 256-d towers, Adam lr 1e-3, batch 128, ≤ 20 epochs, early
stopping on validation R@1 with patience 5) through :func:`lossbench.train.train`, one thread, and prints per seed
and objective: epochs, training seconds, test R@1/R@5/R@20/MRR@10, and for ar2 the reranked metrics and the time
spent in index refreshes, ranker updates and scoring, and reranking. ``ance`` and ``ar2`` are not in the method
registry yet, so this drives them directly; it is the sizing run for the 5-seed results.

    python benchmarks/ar2_cost.py --seeds 0 1 --markdown
"""

from __future__ import annotations

import argparse
import time

import torch

from lossbench.losses import make_loss
from lossbench.methods import METHODS
from lossbench.methods.base import Method
from lossbench.methods.retriever_ranker import ANCE, AR2
from lossbench.sources import load_dataset
from lossbench.specs import TrialSpec
from lossbench.suite import load_suite
from lossbench.tasks import TASK_TYPES
from lossbench.train import train

METRICS = ("recall_at_1", "recall_at_5", "recall_at_20", "mrr_at_10")


def trial_spec(seed: int) -> TrialSpec:
    suite = load_suite("retrieval")
    config = {"model": dict(suite.model), "training": dict(suite.training), "split": dict(suite.split),
              "options": dict(suite.options)}
    return TrialSpec(suite="retrieval", suite_version=suite.version, task="retrieval", dataset="bundled:stdlib-docs",
                     data_hash="", loss="infonce", loss_version="1", seed=seed, config=config, metrics=METRICS,
                     primary_metric="recall_at_1")


def one(name: str, method: Method, seed: int) -> dict[str, float]:
    task = TASK_TYPES.get("retrieval")
    spec = trial_spec(seed)
    prepared = task.prepare(load_dataset("bundled:stdlib-docs"), spec)
    torch.manual_seed(seed)
    model = task.build_model(prepared, spec)
    start = time.perf_counter()
    result = train(task, model, prepared, make_loss("infonce"), method, training=spec.config["training"], seed=seed,
                   primary_metric="recall_at_1", metrics=METRICS)
    method.finish(model, prepared)
    wall = time.perf_counter() - start
    row = {"epochs": result.epochs_run, "train_s": result.train_s, "wall_s": wall,
           **task.evaluate(model, prepared, "test", METRICS), **method.record()}
    return {"objective": name, "seed": seed, **row}


def method(objective: str) -> Method:
    """``infonce`` (the plain step), ``ance`` or ``ar2``, with ``:key=value,...`` parameters."""
    name, _, params = objective.partition(":")
    kwargs = {k: float(v) if "." in v or "e-" in v else int(v)
              for k, v in (item.split("=") for item in params.split(",") if item)}
    return {"infonce": METHODS.get("plain"), "ance": ANCE, "ar2": AR2}[name](**kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--objectives", nargs="+", default=["infonce", "ance", "ar2"],
                        help="infonce, ance or ar2, with parameters as ar2:warmup_epochs=5,adv_lambda=0")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [one(name, method(name), seed) for seed in args.seeds for name in args.objectives]
    keys = ["objective", "seed", "epochs", "train_s", "wall_s", *METRICS, "rr_recall_at_1", "rr_recall_at_5",
            "rr_mrr_at_10", "index_refreshes", "index_s", "ranker_s", "rerank_s"]
    if args.markdown:
        print("| " + " | ".join(keys) + " |")
        print("|" + "---|" * len(keys))
    for row in rows:
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in (row.get(k, "") for k in keys)]
        print(("| " + " | ".join(cells) + " |") if args.markdown else "  ".join(f"{k}={c}" for k, c in zip(keys, cells,
                                                                                                      strict=True)))


if __name__ == "__main__":
    main()
