"""What one seed of the unlearning task costs: pre-training, oracles, DMM's datamodels and each method, on one thread.

Run: ``python benchmarks/unlearning_cost.py [--budget 100] [--oracles 5] [--markdown]``

Data and models as the default unlearning suite will use them: scikit-learn digits (60/20/20 split, standardised)
with the MLP (64, 64) and the small CNN (channels 32, 64, batch norm), and the bundled letter table (5,000 rows,
26 classes) with the MLP. Training recipe of the tabular and image suites: Adam, 30 epochs, batch 64 (MLP, lr 1e-3)
or 128 (CNN, lr 2e-3), a validation pass per epoch, no early stopping (the worst case). Forget sets: random 10 % and
50 % of the training rows. Each method runs ``--budget`` steps with forget and retain batches of 64, and its row is
evaluated as the task will: accuracies and margins on forget, retain and test rows, MIA AUC, KLoM against the
``--oracles`` retrains, and forget accuracy under PGD. Prints CPU seconds of the one-thread process (so a busy
machine does not inflate them); the last line estimates one seed of a suite with both fractions and every method.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable
from importlib import resources

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn

from lossbench.metrics import unlearning as um
from lossbench.models.cnn import cnn
from lossbench.models.mlp import MLP
from lossbench.unlearning import OBJECTIVES, make_objective
from lossbench.unlearning.adversarial import pgd_toward_label
from lossbench.unlearning.attribution import design_for, estimate_row_datamodel
from lossbench.unlearning.forget import select_forget
from lossbench.unlearning.loop import make_data, unlearn
from lossbench.unlearning.objectives import rows

Split = tuple[torch.Tensor, torch.Tensor]


def load(name: str, seed: int = 0) -> tuple[Split, Split, Split]:
    if name == "digits":
        X, y = load_digits(return_X_y=True)
    else:
        frame = pd.read_csv(resources.files("lossbench") / "data" / "letter.csv.gz")
        y = frame.pop("letter").astype("category").cat.codes.to_numpy()
        X = frame.to_numpy()
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=seed, stratify=y)
    X_tr, X_va, y_tr, y_va = train_test_split(X_tr, y_tr, test_size=0.25, random_state=seed, stratify=y_tr)
    scaler = StandardScaler().fit(X_tr)

    def split(a: np.ndarray, b: np.ndarray) -> Split:
        return torch.tensor(scaler.transform(a), dtype=torch.float32), torch.tensor(b, dtype=torch.long)

    return split(X_tr, y_tr), split(X_va, y_va), split(X_te, y_te)


def fit(build: Callable[[], nn.Module], train: Split, val: Split, seed: int, batch: int, lr: float,
        epochs: int = 30) -> nn.Module:
    torch.manual_seed(seed)
    model = build()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    X, y = train
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(y), generator=g)
        for start in range(0, len(y), batch):
            idx = order[start : start + batch]
            if len(idx) < 2:
                continue
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(X[idx]), y[idx]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            model(val[0])  # the loop's validation pass
    return model.eval()


def logits(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(x).numpy()


def evaluate_row(model: nn.Module, parts: dict[str, Split], oracle_margins: dict[str, np.ndarray]) -> None:
    """The metrics the task computes for one row (values discarded: only their cost matters here)."""
    z = {k: logits(model, x) for k, (x, _) in parts.items()}
    for k, (_, y) in parts.items():
        um.accuracy(z[k], y.numpy())
        um.klom(um.klom_gaussian(um.margins(z[k], y.numpy()), oracle_margins[k]))
    um.mia_auc(um.cross_entropy(z["forget"], parts["forget"][1].numpy()),
               um.cross_entropy(z["test"], parts["test"][1].numpy()))
    x_f, y_f = parts["forget"]
    um.accuracy(logits(model, pgd_toward_label(model, x_f, y_f, 0.25, 10, torch.Generator().manual_seed(0))),
                y_f.numpy())


def clock(fn: Callable[[], object]) -> tuple[float, object]:
    """CPU seconds of ``fn`` (one thread: the compute it needs, whatever else the machine runs) and its result."""
    start = time.process_time()
    out = fn()
    return time.process_time() - start, out


def case(name: str, arch: str, budget: int, n_oracles: int, markdown: bool) -> None:
    train, val, test = load(name)
    k = int(train[1].max()) + 1
    if arch == "cnn":
        train, val, test = ((x.reshape(-1, 1, 8, 8), y) for x, y in (train, val, test))
        build: Callable[[], nn.Module] = lambda: cnn((1, 8, 8), k, channels=(32, 64))  # noqa: E731
        batch, lr = 128, 2e-3
    else:
        build = lambda: MLP(train[0].shape[1], k, hidden=(64, 64))  # noqa: E731
        batch, lr = 64, 1e-3
    seed = 0
    fit(build, train, val, seed, batch, lr, epochs=2)  # warm-up, not timed
    pre_s, pre = clock(lambda: fit(build, train, val, seed, batch, lr))
    lines = [f"{name} {arch}: {len(train[1])} training rows, pre-train {pre_s:.2f} s"]
    per_seed = pre_s
    for fraction in (0.1, 0.5):
        forget = select_forget(train[1].numpy(), seed, {"fraction": fraction})
        keep = np.setdiff1d(np.arange(len(train[1])), forget)
        f_rows, r_rows = (train[0][forget], train[1][forget]), (train[0][keep], train[1][keep])
        oracle_s, _ = clock(lambda: fit(build, r_rows, val, seed, batch, lr))  # noqa: B023
        ensemble_s, oracles = clock(lambda: [fit(build, r_rows, val, seed + 1 + r, batch, lr)  # noqa: B023
                                             for r in range(n_oracles)])
        parts = {"forget": f_rows, "retain": r_rows, "test": test}
        oracle_margins = {p: np.stack([um.margins(logits(o, x), y.numpy()) for o in oracles])  # type: ignore[union-attr]
                          for p, (x, y) in parts.items()}
        folds, repeats = design_for(fraction)
        attribution_s, datamodel = clock(lambda fraction=fraction: estimate_row_datamodel(
            lambda r: fit(build, (train[0][r], train[1][r]), val, seed, batch, lr), train[0], fraction, seed=seed))
        predicted = datamodel.predict(torch.tensor(logits(pre, train[0])), forget)  # type: ignore[union-attr]
        eval_s, _ = clock(lambda: evaluate_row(pre, parts, oracle_margins))  # noqa: B023
        per_seed += oracle_s + ensemble_s + attribution_s + eval_s
        lines.append(f"  forget {fraction:.0%} ({len(forget)} rows): retrain {oracle_s:.2f} s, {n_oracles} oracles "
                     f"{ensemble_s:.2f} s, DMM datamodels ({folds} folds × {repeats}) {attribution_s:.2f} s, "
                     f"evaluation of a row {eval_s:.2f} s")
        cells = []
        for entry in OBJECTIVES:
            model = copy.deepcopy(pre)
            data = make_data(model, rows(*f_rows), rows(*r_rows), budget, seed,
                             {"forget": predicted[forget], "retain": predicted[keep]})
            method_s, _ = clock(lambda model=model, data=data, name=entry.name: unlearn(
                model, make_objective(name), data, batch_size=64, seed=seed))
            per_seed += method_s + eval_s
            cells.append(f"{entry.name} {method_s:.2f}")
        lines.append(f"    {budget} steps, seconds: " + ", ".join(cells))
    lines.append(f"  one seed, both fractions, every method and its evaluation: {per_seed:.1f} s")
    print("\n".join(lines) if not markdown else "\n".join(f"    {line}" for line in lines), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--oracles", type=int, default=5)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name, arch in (("digits", "mlp"), ("digits", "cnn"), ("letter", "mlp")):
        case(name, arch, args.budget, args.oracles, args.markdown)


if __name__ == "__main__":
    main()
