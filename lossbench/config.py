"""A trial's configuration as typed values: training budget, split fractions, model, and the task's own options.

The suite parser (:mod:`lossbench.suite`) builds and validates these once; every consumer reads attributes and
no consumer restates a default. Defaults live here, in the dataclass fields, and nowhere else.

``TrialConfig.canonical()`` is what a trial's ``config_hash`` covers: the model table as written (with its family),
every training and split value (defaults filled in), and the ``[options]`` table as written. It is the same
dictionary the suite tables have always given, so trial ids of existing suites do not move.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

#: ``fail(key, problem, fix)`` builds the error that names a bad key (the suite parser's, or a plain ValueError).
Fail = Callable[..., Exception]

OPTIMIZERS = ("adam", "adamw", "sgd")
DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class TrainingConfig:
    """``[training]``: optimiser and budget."""

    epochs: int = 30
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    patience: int = 10  # epochs without validation improvement before stopping; 0 disables
    #: float64 for exactness checks. Unset means float32 and stays out of the hash, so suites that do not set it
    #: keep their trial ids.
    dtype: str | None = None

    def canonical(self) -> dict[str, Any]:
        out = asdict(self)
        if self.dtype is None:
            del out["dtype"]
        return out


@dataclass(frozen=True)
class SplitConfig:
    """``[split]``: test and validation fractions (fixed per dataset and seed)."""

    test: float = 0.2
    val: float = 0.2


@dataclass(frozen=True)
class ModelConfig:
    """``[model]``: the model family and its keyword options, as written in the suite."""

    family: str = "mlp"
    options: Mapping[str, Any] = field(default_factory=dict)

    def canonical(self) -> dict[str, Any]:
        return {"family": self.family, **self.options}


@dataclass(frozen=True)
class TrialConfig:
    """Everything that changes what a trial trains, typed. ``options`` is the task type's own options object."""

    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    options: Any = None
    options_table: Mapping[str, Any] = field(default_factory=dict)  # [options] as written: what the hash covers

    def canonical(self) -> dict[str, Any]:
        """The plain dictionary a trial's ``config_hash`` covers (and the ``config`` column shows)."""
        return {
            "model": self.model.canonical(),
            "training": self.training.canonical(),
            "split": asdict(self.split),
            "options": dict(self.options_table),
        }


def defaults(cls: type) -> dict[str, Any]:
    """A config dataclass's fields and their defaults."""
    return {f.name: f.default for f in fields(cls)}


def typed_table(table: Mapping[str, Any], cls: type, section: str, fail: Fail, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The values of ``table`` checked against the types of ``cls``'s defaults (ints are accepted as floats)."""
    known = {k: v for k, v in defaults(cls).items() if k not in skip}
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            raise fail(f"{section}.{key}", "unknown key.", f"Known keys: {', '.join(known)}.")
        want = type(known[key])
        if want is bool:
            ok = isinstance(value, bool)
        else:
            ok = (isinstance(value, want) and not isinstance(value, bool)) or (
                want is float and isinstance(value, int) and not isinstance(value, bool))
        if not ok:
            raise fail(f"{section}.{key}", f"must be a {want.__name__}; got {value!r}.")
        out[key] = float(value) if want is float else value
    return out


def training_config(table: Mapping[str, Any], fail: Fail) -> TrainingConfig:
    """``[training]``, validated."""
    values = typed_table({k: v for k, v in table.items() if k != "dtype"}, TrainingConfig, "training", fail,
                         skip=("dtype",))
    dtype = table.get("dtype")
    if dtype is not None and dtype not in DTYPES:
        raise fail("training.dtype", f"must be float32 or float64; got {dtype!r}.", 'Write dtype = "float64".')
    config = TrainingConfig(**values, dtype=dtype)
    if config.optimizer not in OPTIMIZERS:
        raise fail("training.optimizer", f"unknown optimizer {config.optimizer!r}.", f"Use one of {', '.join(OPTIMIZERS)}.")
    for key in ("epochs", "batch_size"):
        if getattr(config, key) < 1:
            raise fail(f"training.{key}", f"must be at least 1; got {getattr(config, key)}.")
    for key in ("lr", "weight_decay", "momentum"):
        # TOML has nan and inf literals; they would pass the comparisons below and train garbage
        if not math.isfinite(getattr(config, key)):
            raise fail(f"training.{key}", f"must be a finite number; got {getattr(config, key)}.")
    if config.lr <= 0:
        raise fail("training.lr", f"must be positive; got {config.lr}.")
    if config.patience < 0 or config.weight_decay < 0:
        raise fail("training", "patience and weight_decay must not be negative.")
    return config


def split_config(table: Mapping[str, Any], fail: Fail) -> SplitConfig:
    """``[split]``, validated."""
    config = SplitConfig(**typed_table(table, SplitConfig, "split", fail))
    if not (0 < config.test < 1 and 0 <= config.val < 1 and config.test + config.val < 1):
        raise fail("split", "test and val are fractions with 0 < test, 0 <= val and test + val < 1.")
    return config
