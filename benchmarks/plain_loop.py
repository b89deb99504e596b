"""The training script a researcher writes by hand: the baseline lossbench's throughput is measured against.

Run: ``python benchmarks/plain_loop.py --dataset openml:1068 --dataset openml:1494 --loss ce --loss focal --seeds 5``

Sequential over the (dataset, loss, seed) grid, one torch thread, no harness: split, scale and one-hot
encode with scikit-learn, an MLP in ``nn.Sequential``, a ``randperm`` batch loop with Adam, validation
F1 after every epoch to keep the best weights, test metrics at the end. The losses are lossbench's own
modules (a researcher would copy the same code), so only the harness differs. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.metrics import f1_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from lossbench.losses import make_loss
from lossbench.sources import load_dataset


def preprocess(X, train, others):  # type: ignore[no-untyped-def]
    numeric = [c for c in X.columns if X[c].dtype.kind in "fiu"]
    categorical = [c for c in X.columns if c not in numeric]
    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="ignore", sparse_output=False)), categorical),
    ], sparse_threshold=0.0)
    pre.fit(X.iloc[train])
    return [torch.as_tensor(pre.transform(X.iloc[i]), dtype=torch.float32) for i in (train, *others)]


def mlp(n_in: int, n_out: int, hidden: list[int]) -> nn.Module:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(n_in, h), nn.ReLU()]
        n_in = h
    return nn.Sequential(*layers, nn.Linear(n_in, n_out))


def run_trial(X, y, loss_name: str, seed: int, args: argparse.Namespace) -> dict:  # type: ignore[no-untyped-def]
    idx = np.arange(len(y))
    rest, test = train_test_split(idx, test_size=args.test, stratify=y, random_state=seed)
    train, val = train_test_split(rest, test_size=args.val / (1 - args.test), stratify=y[rest], random_state=seed + 1)
    Xtr, Xva, Xte = preprocess(X, train, (val, test))
    ytr, yva, yte = (torch.as_tensor(y[i]) for i in (train, val, test))
    k = int(y.max()) + 1
    torch.manual_seed(seed)
    model = mlp(Xtr.shape[1], k, args.hidden)
    loss_fn = make_loss(loss_name, None, class_counts=np.bincount(y[train], minlength=k).tolist(), n_classes=k,
                        n_samples=len(train), seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    best, best_state = -1.0, None
    for _epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(ytr))
        for start in range(0, len(perm), args.batch_size):
            b = perm[start : start + args.batch_size]
            if len(b) < 2:
                continue
            opt.zero_grad()
            loss = loss_fn(model(Xtr[b]), ytr[b])
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            f1 = f1_score(yva.numpy(), model(Xva).argmax(1).numpy(), average="binary" if k == 2 else "macro")
        if f1 > best:
            best, best_state = f1, copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    with torch.no_grad():
        proba = torch.softmax(model(Xte), 1).numpy()
    return {"f1": f1_score(yte.numpy(), proba.argmax(1), average="binary" if k == 2 else "macro"),
            "auroc": roc_auc_score(yte.numpy(), proba[:, 1]) if k == 2 else float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", action="append", required=True)
    ap.add_argument("--loss", action="append", default=None)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--hidden", type=int, nargs="+", default=[128, 128])
    ap.add_argument("--lr", type=float, default=0.002)
    ap.add_argument("--test", type=float, default=0.3)
    ap.add_argument("--val", type=float, default=0.2)
    args = ap.parse_args()
    torch.set_num_threads(1)
    losses = args.loss or ["ce", "focal", "anyloss-f1"]
    data = {uri: load_dataset(uri) for uri in args.dataset}  # parsed once, as a script would read its CSVs
    t0 = time.perf_counter()
    n = 0
    for ds in data.values():
        for loss in losses:
            for seed in range(args.seeds):
                run_trial(ds.X, ds.y, loss, seed, args)
                n += 1
    wall = time.perf_counter() - t0
    print(json.dumps({"variant": "plain loop", "trials": n, "wall_s": wall, "load": os.getloadavg(),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
