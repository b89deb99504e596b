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

from lossbench.report.reliability import save_reliability_diagrams
from lossbench.runner import expand
from lossbench.suite import load_suite
from lossbench.trial import setup, train_setup


def predictions(suite_name: str, uri: str, seed: int, losses: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    trials, _ = expand(load_suite(suite_name), losses=losses, datasets=[uri], seeds=[seed])
    out = {}
    for spec in trials:
        ready = setup(spec)  # as the trial sets itself up: split, initial weights, loss
        train_setup(spec, ready)
        final = ready.method.finish(ready.model, ready.prepared)
        proba, _ = ready.task.outputs(final, ready.prepared.test.X, want_features=False)
        out[spec.loss] = (ready.prepared.test.y.numpy(), proba)
        print(f"{spec.loss}: accuracy {np.mean(proba.argmax(1) == out[spec.loss][0]):.3f}", flush=True)
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
