"""Suites are data: a TOML file, validated here, with errors that name the file, key and fix.

A suite names its task type, datasets (as URIs), model family, training budget,
seeds, metrics and default losses. The packaged suites live in ``suites/``;
any other file is accepted by path.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lossbench.errors import SpecError, SuiteError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: Allowed keys per section, with their types and defaults.
TRAINING_DEFAULTS: dict[str, Any] = {
    "epochs": 30,
    "batch_size": 64,
    "optimizer": "adam",
    "lr": 1e-3,
    "weight_decay": 0.0,
    "momentum": 0.9,
    "patience": 10,  # epochs without validation improvement before stopping; 0 disables
}
SPLIT_DEFAULTS: dict[str, Any] = {"test": 0.2, "val": 0.2}
OPTIMIZERS = ("adam", "adamw", "sgd")
TOP_LEVEL: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "version": (str, int),
    "description": str,
    "task": str,
    "datasets": list,
    "losses": list,
    "seeds": (int, list),
    "metrics": list,
    "primary_metric": str,
    "model": dict,
    "training": dict,
    "split": dict,
    "options": dict,
}
REQUIRED = ("name", "version", "task", "datasets", "losses", "primary_metric")
#: More seeds than this is a typo, not a benchmark; expanding the grid would exhaust memory before failing.
MAX_SEEDS = 10_000


def packaged_suites_dir() -> Path:
    """Suites shipped with the package (in a wheel) or beside it (in a source checkout)."""
    inside = Path(__file__).parent / "suites"
    return inside if inside.is_dir() else Path(__file__).parent.parent / "suites"


def packaged_suites() -> dict[str, Path]:
    root = packaged_suites_dir()
    return {p.stem: p for p in sorted(root.glob("*.toml"))} if root.is_dir() else {}


@dataclass(frozen=True)
class Suite:
    name: str
    version: str
    task: str
    datasets: tuple[str, ...]
    losses: tuple[str, ...]
    primary_metric: str
    seeds: tuple[int, ...] = (0, 1, 2)
    metrics: tuple[str, ...] = ()
    description: str = ""
    model: Mapping[str, Any] = field(default_factory=lambda: {"family": "mlp"})
    training: Mapping[str, Any] = field(default_factory=lambda: dict(TRAINING_DEFAULTS))
    split: Mapping[str, Any] = field(default_factory=lambda: dict(SPLIT_DEFAULTS))
    options: Mapping[str, Any] = field(default_factory=dict)
    path: str = ""

    @property
    def config(self) -> dict[str, Any]:
        """What a trial's ``config_hash`` covers: everything that changes what is trained."""
        return {
            "model": dict(self.model),
            "training": dict(self.training),
            "split": dict(self.split),
            "options": dict(self.options),
        }

    def resolved(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "task": self.task,
            "datasets": list(self.datasets),
            "losses": list(self.losses),
            "seeds": list(self.seeds),
            "metrics": list(self.metrics),
            "primary_metric": self.primary_metric,
            **self.config,
            "path": self.path,
        }


def load_suite(name_or_path: str) -> Suite:
    """Load a packaged suite by name, or any suite file by path."""
    path = Path(name_or_path).expanduser()
    if path.suffix == ".toml" or path.exists():
        if path.is_dir():
            raise SuiteError(f"Suite {str(path)!r} is a directory, not a suite file.",
                             "Pass a .toml file, or a packaged suite name (see `lossbench list suites`).")
        if not path.is_file():
            raise SuiteError(f"Suite file {str(path)!r} does not exist.", "Check the path.")
    else:
        suites = packaged_suites()
        if name_or_path not in suites:
            import difflib

            close = difflib.get_close_matches(name_or_path, list(suites), n=3, cutoff=0.5)
            hint = f"Did you mean {' or '.join(map(repr, close))}? " if close else ""
            raise SuiteError(
                f"Unknown suite {name_or_path!r}.",
                hint + "See `lossbench list suites`, or pass the path of a .toml suite file.",
            )
        path = suites[name_or_path]
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SuiteError(f"{path}: not valid TOML ({exc}).", "Fix the syntax; see docs/suites.md.") from None
    return parse_suite(data, str(path))


def parse_suite(data: Mapping[str, Any], where: str = "<suite>") -> Suite:
    """Validate a suite mapping; every error names ``where``, the key and the fix."""

    def fail(key: str, problem: str, fix: str = "See docs/suites.md for the suite format.") -> SuiteError:
        return SuiteError(f"{where}: {key}: {problem}", fix)

    if not data:
        raise fail("(file)", "the suite is empty.", "A suite needs at least: " + ", ".join(REQUIRED) + ".")
    for key in data:
        if key not in TOP_LEVEL:
            import difflib

            close = difflib.get_close_matches(key, list(TOP_LEVEL), n=1)
            raise fail(key, "unknown key.", f"Did you mean {close[0]!r}?" if close else "Remove it.")
    for key in REQUIRED:
        if key not in data:
            raise fail(key, "missing.", f"Add {key} = ... to the suite file.")
    for key, kind in TOP_LEVEL.items():
        if key in data and (not isinstance(data[key], kind) or isinstance(data[key], bool)):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise fail(key, f"must be a {names}; got {type(data[key]).__name__}.")

    # The name becomes the default results folder, results/<name>: no separators or "..", it must stay inside
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", data["name"]) or ".." in data["name"]:
        raise fail("name", f"{data['name']!r} is not a plain name.",
                   "Use letters, digits, '.', '_' and '-' (it names the results folder).")
    datasets = _str_list(data["datasets"], "datasets", fail)
    losses = _str_list(data["losses"], "losses", fail)
    metrics = _str_list(data.get("metrics", []), "metrics", fail, allow_empty=True)
    seeds_raw = data.get("seeds", 3)
    if isinstance(seeds_raw, int):
        if seeds_raw < 1:
            raise fail("seeds", f"must be at least 1; got {seeds_raw}.")
        if seeds_raw > MAX_SEEDS:
            raise fail("seeds", f"must be at most {MAX_SEEDS:,}; got {seeds_raw}.")
        seeds = tuple(range(seeds_raw))
    else:
        if not seeds_raw or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds_raw):
            raise fail("seeds", "must be a count or a non-empty list of non-negative integers.")
        if len(seeds_raw) > MAX_SEEDS:
            raise fail("seeds", f"lists {len(seeds_raw):,} seeds; at most {MAX_SEEDS:,} are allowed.")
        if len(set(seeds_raw)) != len(seeds_raw):
            raise fail("seeds", "lists a seed twice.")
        seeds = tuple(seeds_raw)

    from lossbench.specs import DatasetURI, ObjectiveSpec

    canon_losses = []
    for text in losses:
        try:
            canon_losses.append(str(ObjectiveSpec.parse(text)))
        except SpecError as exc:
            raise fail("losses", exc.message, exc.hint or "") from None
    if len(set(canon_losses)) != len(canon_losses):
        dup = next(x for x in canon_losses if canon_losses.count(x) > 1)
        raise fail("losses", f"{dup!r} is listed twice.", "Remove the duplicate.")
    canon_datasets = []
    for text in datasets:
        try:
            canon_datasets.append(str(DatasetURI.parse(text)))
        except SpecError as exc:
            raise fail("datasets", exc.message, exc.hint or "") from None
    if len(set(canon_datasets)) != len(canon_datasets):
        raise fail("datasets", "a dataset is listed twice.", "Remove the duplicate.")

    raw_training = dict(data.get("training", {}))
    # Optional and without a default, so configs (and trial ids) of suites that do not set it are unchanged.
    dtype = raw_training.pop("dtype", None)
    training = _section(raw_training, TRAINING_DEFAULTS, "training", fail)
    if dtype is not None:
        if dtype not in ("float32", "float64"):
            raise fail("training.dtype", f"must be float32 or float64; got {dtype!r}.", 'Write dtype = "float64".')
        training["dtype"] = dtype
    if training["optimizer"] not in OPTIMIZERS:
        raise fail("training.optimizer", f"unknown optimizer {training['optimizer']!r}.",
                   f"Use one of {', '.join(OPTIMIZERS)}.")
    for key in ("epochs", "batch_size"):
        if training[key] < 1:
            raise fail(f"training.{key}", f"must be at least 1; got {training[key]}.")
    for key in ("lr", "weight_decay", "momentum"):
        # TOML has nan and inf literals; they would pass the comparisons below and train garbage
        if not math.isfinite(training[key]):
            raise fail(f"training.{key}", f"must be a finite number; got {training[key]}.")
    if training["lr"] <= 0:
        raise fail("training.lr", f"must be positive; got {training['lr']}.")
    if training["patience"] < 0 or training["weight_decay"] < 0:
        raise fail("training", "patience and weight_decay must not be negative.")
    split = _section(data.get("split", {}), SPLIT_DEFAULTS, "split", fail)
    if not (0 < split["test"] < 1 and 0 <= split["val"] < 1 and split["test"] + split["val"] < 1):
        raise fail("split", "test and val are fractions with 0 < test, 0 <= val and test + val < 1.")

    model = dict(data.get("model", {}))
    model.setdefault("family", "mlp")
    from lossbench.models import MODELS

    if model["family"] not in MODELS:
        raise fail("model.family", f"unknown model family {model['family']!r}.", MODELS.suggest(str(model["family"])))
    allowed = set(MODELS.entry(model["family"]).meta.get("params", {})) | {"family"}
    extra = set(model) - allowed
    if extra:
        raise fail(f"model.{sorted(extra)[0]}", "unknown option.", f"Options of {model['family']!r}: "
                   + ", ".join(sorted(allowed - {"family"})) + ".")
    check_model_options(model, MODELS.entry(model["family"]).meta.get("params", {}), fail)

    from lossbench.metrics import METRICS
    from lossbench.tasks import TASK_TYPES

    task = data["task"]
    if task not in TASK_TYPES:
        raise fail("task", f"unknown task type {task!r}.", TASK_TYPES.suggest(task))
    for metric in [*metrics, data["primary_metric"]]:
        if metric not in METRICS:
            raise fail("metrics", f"unknown metric {metric!r}.", METRICS.suggest(metric))
    if data["primary_metric"] not in metrics:
        metrics = [data["primary_metric"], *metrics]
    options = dict(data.get("options", {}))
    TASK_TYPES.get(task).validate_options(options, lambda k, p, f="": fail(f"options.{k}", p, f))
    return Suite(
        name=data["name"],
        version=str(data["version"]),
        task=task,
        datasets=tuple(canon_datasets),
        losses=tuple(canon_losses),
        primary_metric=data["primary_metric"],
        seeds=seeds,
        metrics=tuple(metrics),
        description=data.get("description", ""),
        model=model,
        training=training,
        split=split,
        options=options,
        path=where,
    )


def check_model_options(model: Mapping[str, Any], defaults: Mapping[str, Any], fail: Any) -> None:
    """Type-check model options against the registered defaults, so a bad value fails here, not in every trial."""
    for key, default in defaults.items():
        if key not in model:
            continue
        value = model[key]
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, (list, tuple)):
            ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 65536
                                                 for v in value)
        elif isinstance(default, (int, float)):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if ok and isinstance(default, int):
                ok = isinstance(value, int)
        else:
            ok = isinstance(value, type(default))
        if ok and key == "dropout":
            ok = 0 <= value < 1
        if not ok:
            what = {bool: "true or false", list: "a list of layer widths (integers 1..65536)",
                    tuple: "a list of layer widths (integers 1..65536)"}.get(type(default), type(default).__name__)
            if key == "dropout":
                what = "a number in [0, 1)"
            raise fail(f"model.{key}", f"must be {what}; got {value!r}.", f"The default is {key} = {default!r}.")


def _str_list(value: list[Any], key: str, fail: Any, allow_empty: bool = False) -> list[str]:
    if not value and not allow_empty:
        raise fail(key, "is empty.", f"List at least one entry in {key}.")
    if not all(isinstance(v, str) and v.strip() for v in value):
        raise fail(key, "every entry must be a non-empty string.")
    return [v.strip() for v in value]


def _section(value: Mapping[str, Any], defaults: Mapping[str, Any], name: str, fail: Any) -> dict[str, Any]:
    out = dict(defaults)
    for key, v in value.items():
        if key not in defaults:
            raise fail(f"{name}.{key}", "unknown key.", f"Known keys: {', '.join(defaults)}.")
        want = type(defaults[key])
        ok = (isinstance(v, want) and not isinstance(v, bool)) or (want is float and isinstance(v, int)
                                                                   and not isinstance(v, bool))
        if want is bool:
            ok = isinstance(v, bool)
        if not ok:
            raise fail(f"{name}.{key}", f"must be a {want.__name__}; got {v!r}.")
        out[key] = float(v) if want is float else v
    return out
