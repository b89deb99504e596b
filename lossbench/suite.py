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

from lossbench.config import ModelConfig, TrainingConfig, TrialConfig, defaults, split_config, training_config
from lossbench.errors import SpecError, SuiteError
from lossbench.specs import ObjectiveSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: The keys of ``[training]`` and their defaults (``dtype`` is optional and has none); defined by TrainingConfig.
TRAINING_DEFAULTS: dict[str, Any] = {k: v for k, v in defaults(TrainingConfig).items() if k != "dtype"}
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
    objectives: tuple[ObjectiveSpec, ...]  # the losses and methods, parsed and validated
    primary_metric: str
    seeds: tuple[int, ...] = (0, 1, 2)
    metrics: tuple[str, ...] = ()
    description: str = ""
    config: TrialConfig = field(default_factory=TrialConfig)  # model, training, split and task options, typed
    path: str = ""

    @property
    def losses(self) -> tuple[str, ...]:
        """The objectives as their canonical text (the ``loss`` column)."""
        return tuple(str(o) for o in self.objectives)

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
            **self.config.canonical(),
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

    from lossbench.objectives import check_task, parse_objective
    from lossbench.specs import DatasetURI

    objectives = []
    for text in losses:
        try:
            objectives.append(parse_objective(text))
        except SpecError as exc:
            raise fail("losses", exc.message, exc.hint or "") from None
    canon_losses = [str(o) for o in objectives]
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

    from lossbench.evaluation import metrics_for
    from lossbench.metrics import METRICS
    from lossbench.tasks import TASK_TYPES

    task = data["task"]
    if task not in TASK_TYPES:
        raise fail("task", f"unknown task type {task!r}.", TASK_TYPES.suggest(task))
    task_type = TASK_TYPES.get(task)
    training = training_config(data.get("training", {}), fail)
    split = split_config(data.get("split", {}), fail)
    model = model_config(data.get("model", {}), task_type.default_model, fail)
    for metric in [*metrics, data["primary_metric"]]:
        if metric not in METRICS:
            raise fail("metrics", f"unknown metric {metric!r}.", METRICS.suggest(metric))
        kind = METRICS.get(metric).prediction
        if kind not in task_type.predictions:
            raise fail("metrics", f"{metric!r} needs {kind} predictions, which the {task!r} task does not make.",
                       f"Metrics that fit: {', '.join(metrics_for(task_type))}.")
    if data["primary_metric"] not in metrics:
        metrics = [data["primary_metric"], *metrics]

    for obj in objectives:
        try:
            check_task(obj, task_type)
        except SpecError as exc:
            raise fail("losses", exc.message, exc.hint or "") from None
    table = dict(data.get("options", {}))
    options = task_type.parse_options(table, lambda k, p, f="": fail(f"options.{k}", p, f))
    return Suite(
        name=data["name"],
        version=str(data["version"]),
        task=task,
        datasets=tuple(canon_datasets),
        objectives=tuple(objectives),
        primary_metric=data["primary_metric"],
        seeds=seeds,
        metrics=tuple(metrics),
        description=data.get("description", ""),
        config=TrialConfig(model, training, split, options, table),
        path=where,
    )


def model_config(table: Mapping[str, Any], default_family: str, fail: Any) -> ModelConfig:
    """``[model]``: a registered family (the task's own without ``family``) and options of the types its
    registration declares."""
    from lossbench.models import MODELS

    model = dict(table)
    family = model.pop("family", default_family)
    if family not in MODELS:
        raise fail("model.family", f"unknown model family {family!r}.", MODELS.suggest(str(family)))
    declared = MODELS.entry(family).meta.get("params", {})
    extra = set(model) - set(declared)
    if extra:
        raise fail(f"model.{sorted(extra)[0]}", "unknown option.", f"Options of {family!r}: "
                   + ", ".join(sorted(declared)) + ".")
    check_model_options(model, declared, fail)
    return ModelConfig(family, model)


def trial_config(task: str, tables: Mapping[str, Any], where: str = "<config>") -> TrialConfig:
    """A :class:`TrialConfig` from suite-style tables (``model``, ``training``, ``split``, ``options``), validated as
    a suite's are: for code that builds a trial without a suite file."""
    from lossbench.tasks import TASK_TYPES

    def fail(key: str, problem: str, fix: str = "See docs/suites.md for the suite format.") -> SuiteError:
        return SuiteError(f"{where}: {key}: {problem}", fix)

    task_type = TASK_TYPES.get(task)
    table = dict(tables.get("options", {}))
    return TrialConfig(
        model_config(tables.get("model", {}), task_type.default_model, fail),
        training_config(tables.get("training", {}), fail),
        split_config(tables.get("split", {}), fail),
        task_type.parse_options(table, lambda k, p, f="": fail(f"options.{k}", p, f)),
        table,
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
