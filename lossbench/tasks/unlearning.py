"""The unlearning task: pre-train, forget a set of training rows, compare each method with retraining.

A trial is one (dataset, seed, method). It pre-trains the suite's model on the training split (the classification
task's split, preprocessing and training loop, so the pre-trained model is the ``ce`` trial's), selects the forget
set (``[options] forget``), retrains the oracles on the retain rows, then runs the method: ``retrain`` is the oracle
itself; every other method starts from a copy of the pre-trained weights and takes ``budget`` unlearning steps.
Pre-training, oracles and DMM's datamodels are cached per key (:mod:`lossbench.unlearning.cache`), so the methods
of a seed share them bit for bit. The metrics (``lossbench.metrics.unlearning``) read one
:class:`UnlearningView` of the model: its outputs on the forget, retain and test rows next to the oracles'.
Design and choices: docs/unlearning.md.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

import lossbench
from lossbench import streams
from lossbench.errors import DataError, SpecError
from lossbench.evaluation import Predictions
from lossbench.metrics import unlearning as um
from lossbench.sources.base import Dataset
from lossbench.specs import PROTOCOL, TrialSpec, short_hash
from lossbench.tasks.base import TASK_TYPES, Fail, Prepared, TensorSplit
from lossbench.tasks.classification import ClassificationOptions, TabularClassification
from lossbench.unlearning.cache import cached
from lossbench.unlearning.forget import ForgetOption, parse_forget, select_forget

#: Splits the metrics compare with the oracles.
PARTS = ("forget", "retain", "test")
#: The metric pre-training and the oracles stop early on (validation split), whatever the suite's primary metric.
TRAINING_METRIC = "accuracy"


DEFAULT_FORGET = ForgetOption(fraction=0.1)


@dataclass(frozen=True)
class UnlearningOptions:
    """``[options]`` of an unlearning suite (see docs/unlearning.md)."""

    forget: ForgetOption = DEFAULT_FORGET
    budget: int = 100  # unlearning steps of every method
    batch_size: int = 64  # forget and retain rows per step
    oracles: int = 5  # retrains with other initial weights, for KLoM
    pgd_epsilon: float = 0.25  # L∞ radius of the attack behind forget_accuracy_pgd
    pgd_steps: int = 10
    curve_every: int = 10  # utility curve: forget/retain/test accuracy every this many steps (0: none)
    datamodel_fits: int = 8  # DMM's retrains on subsets, about this many


INTS = {"budget": 1, "batch_size": 1, "oracles": 2, "pgd_steps": 1, "curve_every": 0, "datamodel_fits": 2}


def parse_unlearning_options(table: Mapping[str, Any], fail: Fail) -> UnlearningOptions:
    known = {"forget", "pgd_epsilon", *INTS}
    for key in table:
        if key not in known:
            raise fail(key, "unknown option.", f"The unlearning task accepts: {', '.join(sorted(known))}.")
    values: dict[str, Any] = {}
    if "forget" in table:
        try:
            values["forget"] = parse_forget(table["forget"])
        except SpecError as exc:
            raise fail("forget", exc.message, exc.hint or "") from None
    for key, low in INTS.items():
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                what = "steps" if key == "budget" else "a whole number"
                raise fail(key, f"must be an integer >= {low} ({what}); got {value!r}.",
                           f"The default is {key} = {getattr(UnlearningOptions(), key)}.")
            values[key] = value
    if "pgd_epsilon" in table:
        eps = table["pgd_epsilon"]
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 <= eps < float("inf"):
            raise fail("pgd_epsilon", f"must be a number >= 0; got {eps!r}.", "The default is pgd_epsilon = 0.25.")
        values["pgd_epsilon"] = float(eps)
    return UnlearningOptions(**values)


@dataclass
class OracleReference:
    """What a method is measured against, for one (dataset, seed, forget set)."""

    forget: np.ndarray  # positions in the training split
    retain: np.ndarray
    oracle_margins: dict[str, np.ndarray]  # part -> (R, n): margins of the R oracle replicas
    oracle_accuracy: dict[str, float]  # part -> accuracy of the retrain oracle
    oracle_mia: float
    retrain_s: float
    options: UnlearningOptions
    seed: int
    timing: dict[str, float] = field(default_factory=dict)  # unlearn_s of the model being evaluated


class UnlearningView:
    """One model's outputs on the forget, retain and test rows beside the oracles': what every metric reads."""

    def __init__(self, model: nn.Module, prepared: Prepared, ref: OracleReference) -> None:
        self.ref = ref
        self.model = model
        self.parts = parts_of(prepared, ref)
        self.logits = {k: outputs(model, p.X) for k, p in self.parts.items()}
        self.labels = {k: p.y.cpu().numpy() for k, p in self.parts.items()}
        self.accuracy = {k: um.accuracy(self.logits[k], self.labels[k]) for k in PARTS}

    def klom(self, part: str) -> float:
        mine = um.margins(self.logits[part], self.labels[part])
        return um.klom(um.klom_gaussian(mine, self.ref.oracle_margins[part]))

    @functools.cached_property
    def mia_auc(self) -> float:
        return um.mia_auc(um.cross_entropy(self.logits["forget"], self.labels["forget"]),
                          um.cross_entropy(self.logits["test"], self.labels["test"]))

    @functools.cached_property
    def forget_accuracy_pgd(self) -> float:
        from lossbench.unlearning.adversarial import pgd_toward_label

        part, opts = self.parts["forget"], self.ref.options
        x = pgd_toward_label(self.model, part.X, part.y, opts.pgd_epsilon, opts.pgd_steps,
                             streams.generator(self.ref.seed, "attack", device=part.X.device))
        return um.accuracy(outputs(self.model, x), self.labels["forget"])

    @property
    def relative_cost(self) -> float:
        return um.relative_cost(self.ref.timing.get("unlearn_s", float("nan")), self.ref.retrain_s)


@torch.no_grad()
def outputs(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    model.eval()
    return model(x).detach().to(torch.float64).cpu().numpy()


def parts_of(prepared: Prepared, ref: OracleReference) -> dict[str, TensorSplit]:
    train = prepared.train
    take = lambda rows: TensorSplit(train.X[torch.as_tensor(rows)], train.y[torch.as_tensor(rows)])  # noqa: E731
    return {"forget": take(ref.forget), "retain": take(ref.retain), "test": prepared.test}


def state_sha(model: nn.Module) -> str:
    """A hash of the weights: equal for every method of a seed (the pairing test compares it)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class Unlearning(TabularClassification):
    name = "unlearning"
    description = "Unlearn a forget set from a pre-trained MLP; every method measured against retraining"
    loss_tasks = frozenset({"unlearning"})
    predictions = frozenset({"proba", "unlearning"})
    default_model = "mlp"
    predicts_from_outputs = False
    runs_trials = True

    def parse_options(self, table: Mapping[str, Any], fail: Fail) -> UnlearningOptions:
        """``[options]``: forget ("fraction=0.1" or "class=3"), budget, batch_size, oracles, pgd_epsilon,
        pgd_steps, curve_every, datamodel_fits (see docs/unlearning.md)."""
        return parse_unlearning_options(table, fail)

    def check_options(self, data: Dataset, options: UnlearningOptions) -> None:
        cls = options.forget.cls
        if cls is not None and (cls >= data.n_classes or not np.any(np.asarray(data.y) == cls)):
            raise DataError(f"Dataset {data.uri!r} has no class {cls} to forget (classes 0..{data.n_classes - 1}).",
                            "Choose a class index present in the data, or a forget fraction.")

    def prepare(self, data: Dataset, spec: TrialSpec) -> Prepared:
        plain = replace(spec, config=replace(spec.config, options=ClassificationOptions()))
        prepared = super().prepare(data, plain)
        prepared.kind = "unlearning"
        return prepared

    def predict(self, model: nn.Module, prepared: Prepared, split: str, kinds: frozenset[str]) -> Predictions:
        out: dict[str, tuple[Any, ...]] = {}
        if "proba" in kinds:
            out.update(super().predict(model, prepared, split, frozenset({"proba"})))
        if "unlearning" in kinds:
            out["unlearning"] = (UnlearningView(model, prepared, prepared.context["unlearning"]),)
        return out

    def run_trial(self, spec: TrialSpec, row: dict[str, Any]) -> Any:
        from lossbench.trial import TrialResult

        return TrialResult(*run(self, spec, row))


TASK_TYPES.register("unlearning", Unlearning(), description=Unlearning.description)


# -- one trial ---------------------------------------------------------------------------------------------------


def pretrain_key(spec: TrialSpec) -> dict[str, Any]:
    """Everything that determines the pre-trained weights."""
    config = spec.config
    return {"dataset": spec.dataset, "data_hash": spec.data_hash, "seed": spec.seed,
            "model": config.model.canonical(), "training": config.training.canonical(), "split": asdict(config.split),
            "device": torch.device(spec.device).type, "lossbench": lossbench.__version__,
            "torch": torch.__version__, "protocol": PROTOCOL}


def fit(task: Unlearning, prepared: Prepared, spec: TrialSpec, rows: np.ndarray | None,
        init: tuple[int | str, ...] = ()) -> tuple[nn.Module, float]:
    """The pre-training recipe (``ce``, the suite's training loop) on ``rows`` of the training split (all: None),
    from the seed's initial weights (another draw of the init stream with ``init``); (model, seconds)."""
    from lossbench.methods import Plain
    from lossbench.objectives import build_loss, parse_objective
    from lossbench.train import train

    start = time.perf_counter()
    part = copy.copy(prepared)
    if rows is not None:
        index = torch.as_tensor(rows, device=prepared.train.X.device)
        part.train = TensorSplit(prepared.train.X[index], prepared.train.y[index])
    streams.seed_torch(spec.seed, "init", *init)
    model = task.build_model(part, spec).to(spec.device)
    loss = build_loss(parse_objective("ce"), **part.loss_context(spec.seed)).to(spec.device)
    train(task, model, part, loss, Plain(), training=spec.config.training, seed=spec.seed,
          primary_metric=TRAINING_METRIC, metrics=(TRAINING_METRIC,))
    return model.eval(), time.perf_counter() - start


def load(task: Unlearning, prepared: Prepared, spec: TrialSpec, state: Mapping[str, torch.Tensor]) -> nn.Module:
    model = task.build_model(prepared, spec).to(spec.device)
    model.load_state_dict(state)
    return model.eval()


def run(task: Unlearning, spec: TrialSpec, row: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from lossbench.methods import METHODS
    from lossbench.objectives import build_method
    from lossbench.trial import cached_dataset, prepare_cached
    from lossbench.unlearning.loop import make_data, unlearn
    from lossbench.unlearning.objectives import rows as make_rows

    options: UnlearningOptions = spec.config.options
    data = cached_dataset(spec.dataset)
    if data.content_hash != spec.data_hash:
        raise DataError(f"Dataset {spec.dataset!r} changed since the run was planned "
                        f"(hash {data.content_hash}, expected {spec.data_hash}).")
    prepared = prepare_cached(task, data, spec)
    row.update({"n_classes": prepared.n_classes, "dataset_name": data.name,
                **{k: v for k, v in prepared.info.items() if k.startswith("n_")}})
    if METHODS.get(spec.objective.method_name).info.uses_base_loss:
        raise SpecError(f"{str(spec.objective)!r} is not an unlearning method.",
                        "The unlearning task runs retrain, finetune, ga, gd, npo, npo-rt, laf, dmm and adv-unlearn.")
    method = build_method(spec.objective)
    # Bad input fails here, before any training.
    y_train = prepared.train.y.cpu().numpy()
    forget = select_forget(y_train, spec.seed, options.forget)
    retain = np.setdiff1d(np.arange(len(y_train)), forget)
    forget_key = hashlib.sha256(forget.tobytes()).hexdigest()[:16]
    prepared.to(spec.device)

    key = pretrain_key(spec)
    pre = cached("pretrain", key, lambda: _as_entry(fit(task, prepared, spec, None)))
    oracle_key = {"pretrain": short_hash(key, 24), "forget": forget_key, "replicas": options.oracles}

    def oracles() -> dict[str, Any]:
        model, seconds = fit(task, prepared, spec, retain)
        replicas = [fit(task, prepared, spec, retain, ("oracle", r))[0].state_dict() for r in range(options.oracles)]
        return {"state": model.state_dict(), "seconds": seconds, "replicas": replicas}

    oracle = cached("oracle", oracle_key, oracles)
    pretrained = load(task, prepared, spec, pre["state"])
    retrained = load(task, prepared, spec, oracle["state"])
    ref = OracleReference(forget, retain, {}, {}, float("nan"), float(oracle["seconds"]), options, spec.seed)
    parts = parts_of(prepared, ref)
    margins = [{k: um.margins(outputs(load(task, prepared, spec, s), p.X), p.y.cpu().numpy())
                for k, p in parts.items()} for s in oracle["replicas"]]
    ref.oracle_margins = {k: np.stack([m[k] for m in margins]) for k in PARTS}
    oracle_view = UnlearningView(retrained, prepared, ref)
    ref.oracle_accuracy, ref.oracle_mia = dict(oracle_view.accuracy), oracle_view.mia_auc
    prepared.context["unlearning"] = ref

    objective = method.objective()
    curves: list[dict[str, Any]] = []
    record: dict[str, Any] = {"forget": options.forget.label, "forget_key": forget_key, "n_forget": len(forget),
                              "n_retain": len(retain), "budget": options.budget, "pretrain_sha": state_sha(pretrained),
                              "pretrain_s": float(pre["seconds"]), "retrain_s": ref.retrain_s,
                              "attribution_s": 0.0, "diverged_at": -1}
    if objective is None:  # retrain: the oracle is the answer; its cost is the retraining
        model, unlearn_s, steps = retrained, ref.retrain_s, 0
    else:
        model = copy.deepcopy(pretrained)
        predicted = None
        if spec.objective.method_name == "dmm":
            predicted, record["attribution_s"] = predicted_oracle(task, prepared, spec, key, pretrained, forget,
                                                                  retain)
        unlearning_data = make_data(model, make_rows(parts["forget"].X, parts["forget"].y),
                                    make_rows(parts["retain"].X, parts["retain"].y), options.budget, spec.seed,
                                    predicted)

        def utility(m: nn.Module) -> dict[str, float]:
            return {k: um.accuracy(outputs(m, p.X), p.y.cpu().numpy()) for k, p in parts.items()}

        result = unlearn(model, objective, unlearning_data, batch_size=options.batch_size, seed=spec.seed,
                         evaluate=utility if options.curve_every else None, curve_every=options.curve_every)
        unlearn_s, steps = result.unlearn_s, result.steps_run
        record["diverged_at"] = -1 if result.diverged_at is None else result.diverged_at
        for point in result.curve:
            curves += [{"split": part, "metric": "accuracy", "step": point["step"], "value": float(point[part])}
                       for part in PARTS]
    ref.timing["unlearn_s"] = unlearn_s
    record.update(steps_run=steps, unlearn_s=unlearn_s)
    t_eval = time.perf_counter()
    metrics = task.evaluate(model, prepared, "test", spec.metrics)
    out = {f"m_{k}": float(v) for k, v in metrics.items()}
    out.update(status="ok", value=float(metrics[spec.primary_metric]), train_s=unlearn_s,
               eval_s=time.perf_counter() - t_eval, epochs_run=steps, best_epoch=steps, **record)
    return out, curves


def _as_entry(fitted: tuple[nn.Module, float]) -> dict[str, Any]:
    model, seconds = fitted
    return {"state": model.state_dict(), "seconds": seconds}


def predicted_oracle(task: Unlearning, prepared: Prepared, spec: TrialSpec, key: Mapping[str, Any],
                     pretrained: nn.Module, forget: np.ndarray, retain: np.ndarray
                     ) -> tuple[dict[str, torch.Tensor], float]:
    """DMM's predicted oracle logits on the forget and retain rows, from datamodels cached per (pre-training key,
    forget kind): they never see which rows are forgotten, so every forget set of that kind shares them."""
    from lossbench.unlearning.attribution import class_influence, estimate_row_datamodel, predict_class_forget

    options: UnlearningOptions = spec.config.options
    x_train = prepared.train.X
    full = torch.as_tensor(outputs(pretrained, x_train))
    kind = options.forget.label if options.forget.fraction is not None else "class"
    dm_key = {"pretrain": short_hash(dict(key), 24), "kind": kind, "fits": options.datamodel_fits}

    def fit_rows(rows: np.ndarray) -> nn.Module:
        return fit(task, prepared, spec, rows)[0]

    def compute() -> dict[str, Any]:
        start = time.perf_counter()
        if options.forget.fraction is not None:
            dm = estimate_row_datamodel(fit_rows, x_train, options.forget.fraction, options.datamodel_fits,
                                        seed=spec.seed)
            value = {"inside": dm.inside.cpu(), "outside": dm.outside.cpu(), "included": dm.included}
        else:  # on the CPU, as a cache hit reads it, beside the CPU logits ``full``
            influence = class_influence(fit_rows, prepared.train.y.cpu().numpy(), x_train, seed=spec.seed)
            value = {"influence": influence.cpu()}
        return {**value, "seconds": time.perf_counter() - start}

    entry = cached("datamodel", dm_key, compute)
    if "influence" in entry:
        predicted = predict_class_forget(full, entry["influence"], int(options.forget.cls or 0))
    else:
        from lossbench.unlearning.attribution import RowDatamodel

        predicted = RowDatamodel(entry["inside"], entry["outside"], float(entry["included"])).predict(full, forget)
    predicted = predicted.to(device=x_train.device, dtype=x_train.dtype)
    rows = lambda r: predicted[torch.as_tensor(r, device=predicted.device)]  # noqa: E731
    return {"forget": rows(forget), "retain": rows(retain)}, float(entry["seconds"])
