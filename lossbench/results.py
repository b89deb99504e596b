"""Results as the readers (compare, gate, report, calibrate) see them.

Three jobs: find the trial files behind any input a user types (a results root holding several
suites, one suite's results folder, its ``trials/`` folder, Parquet files or globs of them at any
level, or a mix); choose the metric to read and its direction and range; and split trials into
*comparable sets* — trials with the same suite, suite version, configuration and protocol — which
readers never pool into one cell or one paired difference.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lossbench.errors import ResultsError, UserError
from lossbench.store import MANIFEST, ResultStore, read_trial_files

KEY = ["dataset", "loss", "seed"]
#: What makes trials comparable: two trials that differ here measured different things.
SET_COLUMNS = ["suite", "suite_version", "config_hash", "protocol"]
#: The protocol of rows written before the ``protocol`` column existed.
DEFAULT_PROTOCOL = "1"
#: How far below a folder to look for results folders (results/<suite> is one level, runs/<date>/<suite> two).
SEARCH_DEPTH = 3
#: The glob that reads every trial file below a results root (DuckDB, polars, pyarrow; docs/results.md).
TRIALS_GLOB = "**/trials/*.parquet"


# -- finding the trial files ------------------------------------------------------------------------


def is_results_folder(path: Path) -> bool:
    """A folder written by ``lossbench run --out``: it has a ``trials/`` folder or a manifest."""
    return path.is_dir() and ((path / "trials").is_dir() or (path / MANIFEST).is_file())


def _owner(path: Path) -> Path | None:
    """The results folder ``path`` lies in (its parent or grandparent), if any."""
    for folder in list(path.parents)[:2]:
        if is_results_folder(folder):
            return folder
    return None


def find_results_folders(root: Path, depth: int = SEARCH_DEPTH) -> list[Path]:
    """Results folders at or below ``root`` (up to ``depth`` levels), not looking inside one."""
    if is_results_folder(root):
        return [root]
    found: list[Path] = []
    for current, dirs, _ in os.walk(root):
        here = Path(current)
        level = len(here.relative_to(root).parts)
        keep = []
        for name in sorted(dirs):
            sub = here / name
            if name.startswith("."):
                continue
            if is_results_folder(sub):
                found.append(sub)
            elif level + 1 < depth:
                keep.append(name)
        dirs[:] = keep
    return sorted(found)


@dataclass
class Inputs:
    """The trial files behind a list of inputs, and the results folders they belong to."""

    files: list[Path]
    folders: list[Path]


def _folder_trials(folder: Path) -> list[Path]:
    store = ResultStore(folder)
    store.check_schema()
    found = store.fragments("trials")
    if not found:
        raise ResultsError(
            f"{str(folder)!r} is a results folder with no trials yet.",
            "Wait for `lossbench run` to finish a trial, or pass another folder.",
        )
    return found


def _expand(text: str) -> list[Path]:
    if not glob.has_magic(text):
        return [Path(text)]
    matches = [Path(p) for p in sorted(glob.glob(text, recursive=True))]
    if not matches:
        raise _no_match(text)
    return matches


def _static_prefix(pattern: str) -> Path:
    """The folder a glob starts from: its parts before the first wildcard."""
    parts = Path(pattern).parts
    first = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))
    return Path(*parts[:first]) if first else Path(".")


def _no_match(pattern: str) -> ResultsError:
    """No file matches ``pattern``: name the folder and the glob that would read its results."""
    base = _static_prefix(pattern)
    folders = find_results_folders(base) if base.is_dir() else []
    if not folders:
        return ResultsError(f"No files match {pattern!r}.", "Check the glob pattern and the working directory.")
    if len(folders) == 1:
        where = f"{folders[0]}/trials/"
        hint = f"Pass {str(folders[0])!r}, or the glob '{folders[0]}/trials/*.parquet'."
    else:
        depths = {len(f.relative_to(base).parts) for f in folders}
        where = f"{len(folders)} results folders under {str(base)!r}"
        hint = f"Pass {str(base)!r} (all of them)"
        if len(depths) == 1:
            hint += f", or the glob '{base}/{'*/' * depths.pop()}trials/*.parquet'"
        hint += "."
    return ResultsError(f"No files match {pattern!r}; the trial files are in {where}.", hint)


def _resolve_path(path: Path, text: str) -> tuple[list[Path], list[Path]]:
    """(trial files, results folders) for one existing path."""
    if path.is_dir():
        if is_results_folder(path):
            return _folder_trials(path), [path]
        if is_results_folder(path.parent):  # its trials/, metrics/ or examples/: the folder
            return _folder_trials(path.parent), [path.parent]
        folders = find_results_folders(path)
        loose = sorted(path.glob("*.parquet"))  # a plain folder of trial files
        if not folders and not loose:
            raise ResultsError(
                f"{text!r} holds no lossbench results (no results folder within {SEARCH_DEPTH} levels, "
                "no .parquet file in it).",
                "Pass the --out folder of a `lossbench run` (e.g. results/<suite>), or a folder of its "
                "trials/*.parquet files.",
            )
        started = [f for f in folders if ResultStore(f).fragments("trials")]  # skip a run with no trial yet
        if folders and not started and not loose:
            return _folder_trials(folders[0]), folders  # says which folder has no trials
        return [f for folder in started for f in _folder_trials(folder)] + loose, started
    owner = _owner(path)
    if path.suffix == ".parquet" and (owner is None or path.parent.name == "trials"):
        return [path], [owner] if owner is not None else []
    if owner is not None:  # manifest.json, a curves fragment, an examples file: stands for its folder
        return _folder_trials(owner), [owner]
    if path.suffix == ".toml":
        raise ResultsError(
            f"{text!r} is a suite file, not results.",
            f"Run it first (`lossbench run --suite {text} --out results/{path.stem}`), then pass "
            f"results/{path.stem}.",
        )
    raise ResultsError(
        f"{text!r} is not a lossbench result file (.parquet) or results folder.",
        "Pass results folders (the --out of `lossbench run`), their trials/*.parquet files, or globs of them.",
    )


def resolve(inputs: Sequence[str | Path]) -> Inputs:
    """The trial files and results folders behind files, folders and globs (any mix, any level)."""
    files: list[Path] = []
    folders: list[Path] = []
    for item in inputs:
        text = str(item)
        for path in _expand(text):
            if not path.exists():
                raise ResultsError(f"{text!r} does not exist.", "Pass result files, globs or directories.")
            found, owners = _resolve_path(path, str(path))
            files.extend(found)
            folders.extend(owners)
    return Inputs(sorted(dict.fromkeys(files)), sorted(dict.fromkeys(folders)))


def resolve_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """The trial Parquet files behind ``inputs``, sorted, each once."""
    return resolve(inputs).files


def load_trials(inputs: Sequence[str | Path]) -> pd.DataFrame:
    """All trials from any mix of files, globs and directories (schema-checked, de-duplicated)."""
    return read_trial_files(resolve_inputs(inputs))


def load_curves(inputs: Sequence[str | Path]) -> pd.DataFrame:
    """The long per-epoch metrics table of every results folder behind ``inputs``."""
    frames = [ResultStore(f).read_metrics() for f in resolve(inputs).folders]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=["trial_id", "split", "metric", "step", "value"])
    return pd.concat(frames, ignore_index=True)


def load_examples(inputs: Sequence[str | Path]) -> dict[str, Path]:
    """trial_id → stored examples file, from every results folder behind ``inputs``."""
    found: dict[str, Path] = {}
    for root in resolve(inputs).folders:
        folder = ResultStore(root).examples_dir
        if folder.is_dir():
            found.update({p.stem: p for p in sorted(folder.glob("*.npz"))})
    return found


# -- the metric -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricChoice:
    """The metric a reader compares: its name, direction and the values it can take."""

    name: str
    higher_is_better: bool
    bounded: bool  # values in [0, 1]: the equivalence margin is absolute
    limits: tuple[float, float] = (float("-inf"), float("inf"))


#: Prefixes of metric columns that are a registered metric measured on another stage's output, with its
#: direction and range: ``rr_recall_at_5`` is recall_at_5 after a ranker reranked the retriever's candidates.
DERIVED_PREFIXES = ("rr_",)


def _registry_metric(name: str) -> Any:
    from lossbench.metrics import METRICS  # imported late: registering metrics imports sklearn

    base = next((name[len(p):] for p in DERIVED_PREFIXES if name.startswith(p) and name[len(p):] in METRICS), name)
    try:
        return METRICS.get(base)
    except UserError:
        return None


def _available(trials: pd.DataFrame) -> list[str]:
    ok = trials[trials["status"] == "ok"] if "status" in trials else trials
    primaries = set(ok["metric"].dropna().astype(str)) if "metric" in ok else set()
    extra = {c[2:] for c in trials.columns if c.startswith("m_") and not c.endswith("_tuned")}
    return sorted(primaries | extra)


def metric_values(trials: pd.DataFrame, metric: str | None = None) -> tuple[MetricChoice, pd.Series]:
    """Pick the metric to compare and return one value per trial row.

    Default: the rows' primary metric (``metric``/``value`` columns), which must be the same for every
    row. ``--metric NAME`` takes ``value`` where NAME is the row's primary metric, else ``m_NAME``.
    """
    ok = trials[trials["status"] == "ok"] if "status" in trials else trials
    primaries = sorted(ok["metric"].dropna().unique()) if "metric" in ok else []
    if metric is None:
        if len(primaries) != 1:
            by_suite = ""
            if len(primaries) > 1 and "suite" in ok:
                pairs = ok[["suite", "metric"]].dropna().drop_duplicates().sort_values(["suite", "metric"])
                by_suite = ": " + ", ".join(f"{r.metric} in suite {r.suite}" for r in pairs.itertuples())
            raise UserError(
                f"The trials have {len(primaries)} primary metrics{by_suite or ' (' + ', '.join(primaries) + ')'}.",
                f"Choose one with --metric (available: {', '.join(_available(trials)) or 'none'}), "
                "or pass one suite's results folder.",
            )
        metric = str(primaries[0])
    column = f"m_{metric}"
    is_primary = trials["metric"] == metric if "metric" in trials else pd.Series(False, index=trials.index)
    if not is_primary.any() and column not in trials:
        raise UserError(
            f"No metric {metric!r} in these results.", f"Available: {', '.join(_available(trials)) or 'none'}."
        )
    values = pd.Series(np.nan, index=trials.index, dtype=float)
    if column in trials:
        values = pd.to_numeric(trials[column], errors="coerce").astype(float)
    if is_primary.any():
        values = values.where(~is_primary, pd.to_numeric(trials["value"], errors="coerce"))
    registered = _registry_metric(metric)
    if registered is not None:
        choice = MetricChoice(
            metric, bool(registered.greater_is_better), bool(registered.bounded), registered.value_range
        )
    else:
        # an unregistered (plug-in) metric: trust the rows' direction flag, infer boundedness from values
        hib = trials.loc[is_primary, "higher_is_better"].dropna() if is_primary.any() else pd.Series(dtype=bool)
        finite = values[np.isfinite(values)]
        bounded = bool(len(finite) and finite.between(0, 1).all())
        limits = (0.0, 1.0) if bounded else (float("-inf"), float("inf"))
        choice = MetricChoice(metric, bool(hib.iloc[0]) if len(hib) else True, bounded, limits)
    return choice, values


# -- comparable sets --------------------------------------------------------------------------------


def set_keys(trials: pd.DataFrame) -> pd.DataFrame:
    """The SET_COLUMNS of every row as text; a missing ``protocol`` is the first protocol."""
    out = pd.DataFrame(index=trials.index)
    for col in SET_COLUMNS:
        default = DEFAULT_PROTOCOL if col == "protocol" else ""
        out[col] = trials[col].astype("string").fillna(default).astype(str) if col in trials else default
    return out


def _flat(config: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(config, dict):
        return {prefix: config}
    out: dict[str, Any] = {}
    for k, v in config.items():
        out.update(_flat(v, f"{prefix}{k}."))
    return {k.rstrip("."): v for k, v in out.items()}


def _config_labels(trials: pd.DataFrame, hashes: Iterable[str]) -> dict[str, str]:
    """For configurations of one suite: what differs between them (``training.epochs=5``), else the hash."""
    hashes = list(hashes)
    configs: dict[str, dict[str, Any]] = {}
    if "config" in trials:
        for h in hashes:
            raw = trials.loc[trials["config_hash"].astype(str) == h, "config"].dropna()
            try:
                configs[h] = _flat(json.loads(str(raw.iloc[0]))) if len(raw) else {}
            except (json.JSONDecodeError, TypeError):
                configs[h] = {}
    keys = sorted({k for c in configs.values() for k in c})
    differing = [k for k in keys if len({json.dumps(c.get(k), sort_keys=True) for c in configs.values()}) > 1]
    labels = {}
    for h in hashes:
        c = configs.get(h, {})
        if differing and c and len(differing) <= 2:
            labels[h] = ", ".join(f"{k}={c.get(k, '-')}" for k in differing)
        else:
            labels[h] = f"config {h}"
    return labels


def sets_table(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per comparable set: its label, the SET_COLUMNS and the number of trials."""
    keys = set_keys(trials)
    table = keys.value_counts(sort=False).rename("n_trials").reset_index().sort_values(SET_COLUMNS)
    table = table.reset_index(drop=True)
    if len(table) <= 1:
        return table.assign(set=table["suite"]).loc[:, ["set", *SET_COLUMNS, "n_trials"]]
    labels = []
    for row in table.itertuples():
        same_suite = table[table["suite"] == row.suite]
        same_version = same_suite[same_suite["suite_version"] == row.suite_version]
        parts = [row.suite]
        if same_suite["suite_version"].nunique() > 1:
            parts.append(f"v{row.suite_version}")
        if same_version["config_hash"].nunique() > 1:
            sub = trials[(keys["suite"] == row.suite) & (keys["suite_version"] == row.suite_version)]
            parts.append(_config_labels(sub, same_version["config_hash"].unique())[row.config_hash])
        if same_suite["protocol"].nunique() > 1:
            parts.append(f"protocol {row.protocol}")
        labels.append(" ".join(parts))
    return table.assign(set=labels).loc[:, ["set", *SET_COLUMNS, "n_trials"]]


def label_sets(trials: pd.DataFrame) -> pd.DataFrame:
    """``trials`` with a ``set`` column naming each row's comparable set.

    When the trials hold more than one set, ``dataset`` becomes ``"<set> / <dataset>"``, so every
    reader keys cells and pairs on it and never pools two sets. Calling it again changes nothing.
    """
    if "set" in trials.columns or trials.empty:
        return trials if "set" in trials.columns else trials.assign(set=pd.Series(dtype=str))
    table = sets_table(trials)
    keys = set_keys(trials)
    label = keys.merge(table, on=SET_COLUMNS, how="left")["set"].to_numpy()
    out = trials.assign(set=label)
    if len(table) > 1:
        out["dataset"] = out["set"] + " / " + out["dataset"].astype(str)
    return out
