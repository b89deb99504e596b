"""Reliability diagrams, one PNG per loss, for one dataset and seed of a suite.

Run: ``python benchmarks/image_reliability.py [--suite image] [--dataset images:digits] [--seed 0]
[--loss ce --loss focal ...] [--out docs/results/figures]``

Each loss is trained exactly as a trial of the suite (same split, initial weights, batches and augmentation
for a given seed); the test-split probabilities go to :func:`lossbench.report.reliability.save_reliability_diagrams`.
Needs matplotlib.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from lossbench.objectives import build_loss, build_method, parse_objective
from lossbench.report.reliability import save_reliability_diagrams
from lossbench.specs import TrialSpec
from lossbench.suite import load_suite
from lossbench.tasks import TASK_TYPES
from lossbench.train import train
from lossbench.trial import cached_dataset


def predictions(suite_name: str, uri: str, seed: int, losses: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    suite = load_suite(suite_name)
    data = cached_dataset(uri)
    task = TASK_TYPES.get(suite.task)
    out = {}
    for text in losses:
        obj = parse_objective(text)
        spec = TrialSpec(suite.name, suite.version, suite.task, uri, data.content_hash, obj, seed,
                         config=suite.config, metrics=suite.metrics, primary_metric=suite.primary_metric)
        prepared = task.prepare(data, spec)
        torch.manual_seed(seed)  # as in the trial: weights from the seed alone
        model = task.build_model(prepared, spec)
        torch.manual_seed(seed + 1)
        loss = build_loss(obj, **prepared.loss_context(seed))
        method = build_method(obj)
        train(task, model, prepared, loss, method, training=suite.config.training, seed=seed,
              primary_metric=suite.primary_metric, metrics=suite.metrics)
        final = method.finish(model, prepared)
        proba, _ = task.outputs(final, prepared.test.X, want_features=False)
        out[str(obj)] = (prepared.test.y.numpy(), proba)
        print(f"{obj}: accuracy {np.mean(proba.argmax(1) == out[str(obj)][0]):.3f}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="image")
    parser.add_argument("--dataset", default="images:digits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--loss", action="append", default=None)
    parser.add_argument("--out", default="docs/results/figures")
    args = parser.parse_args()
    torch.set_num_threads(1)
    losses = args.loss or list(load_suite(args.suite).losses)
    preds = predictions(args.suite, args.dataset, args.seed, losses)
    stem = "reliability-" + args.dataset.split(":", 1)[1].replace("#", "-").replace("=", "")
    for path in save_reliability_diagrams(preds, args.out, prefix=stem):
        print(path)


if __name__ == "__main__":
    main()
