"""The results directory: append-only Parquet fragments, a manifest, a schema version.

Layout::

    RESULTS/
      manifest.json                 schema version, one entry per run (argv, suite, versions, git sha) and
                                    the decisions of an adaptive run (`run --until-conclusive`)
      trials/part-<run>-<n>.parquet one file per finished unit of work (or per compaction)
      metrics/part-<run>-<n>.parquet per-epoch curves, long format
      examples/<trial_id>.npz       a few test predictions of an ok trial (segmentation), for report plots

Every file is written to a temporary name and renamed, so a reader never sees a
half-written fragment and a killed run loses at most the trials in flight.
Reading de-duplicates by ``trial_id``, keeping the latest attempt, which makes
re-running failed trials and compaction safe. Examples are one file per trial, replaced (or removed) when the
trial is written again, so they always belong to its latest attempt and need no compaction.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import re
import shutil
import uuid
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lossbench.errors import ResultsError
from lossbench.schema import (
    METADATA_KEY,
    SCHEMA_VERSION,
    SUCCESS,
    TRIAL_COLUMNS,
    UNVERSIONED_PROTOCOL,
    metrics_schema,
    trials_schema,
)

MANIFEST = "manifest.json"
#: Columns every reader relies on (de-duplication, pairing); a file without them is not a usable result file.
REQUIRED_COLUMNS = ("trial_id", "attempt", "ended_at", "status", "dataset", "loss", "seed")
#: The arrays of an examples file (see ``TaskType.examples``).
EXAMPLE_KEYS = ("image", "mask", "proba", "index")
#: A trial_id that is safe as a file name (run trial ids are hex hashes).
_SAFE_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")


def temporary_name(path: Path) -> Path:
    """A fresh hidden name beside ``path`` (``.NAME.XXXX.tmp``: the next run under the lock removes leftovers)."""
    return path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"


# Files are created by open() rather than mkstemp, whose 0600 would ignore the umask: a team shares results.
def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = temporary_name(path)
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_parquet_atomic(table: pa.Table, path: Path) -> None:
    tmp = temporary_name(path)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def rows_to_table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    extra = sorted({k for r in rows for k in r if k not in TRIAL_COLUMNS})
    schema = trials_schema(extra)
    columns = {f.name: [r.get(f.name) for r in rows] for f in schema}
    return pa.table(columns, schema=schema)


def file_schema_version(path: Path) -> int | None:
    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(METADATA_KEY)
    return int(raw) if raw is not None else None


class ResultStore:
    """Reads and writes one results directory."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.trials_dir = self.root / "trials"
        self.metrics_dir = self.root / "metrics"
        self.examples_dir = self.root / "examples"
        self._counter = 0
        self._writer_id = uuid.uuid4().hex[:8]

    # -- writing ----------------------------------------------------------------------------------
    def check_writable(self) -> None:
        """Fail now if the directory could not be created or written, creating nothing (a refused run leaves
        no empty folders behind)."""
        if self.root.exists() and not self.root.is_dir():
            raise ResultsError(f"--out {str(self.root)!r} is a file, not a directory.", "Choose a directory path.")
        existing = self.root
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            reason = "not a directory" if not existing.is_dir() else "permission denied"
            raise ResultsError(f"Cannot write to results directory {str(self.root)!r} ({str(existing)!r}: {reason}).",
                               "Choose a writable --out directory.")

    def open_for_writing(self) -> None:
        """Create the directory (or check an existing one) before any trial runs."""
        if self.root.exists() and not self.root.is_dir():
            raise ResultsError(f"--out {str(self.root)!r} is a file, not a directory.", "Choose a directory path.")
        if self.root.is_dir():
            self.check_schema()  # before writing anything into a directory this version cannot own
        try:
            self.trials_dir.mkdir(parents=True, exist_ok=True)
            self.metrics_dir.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".write-test-{self._writer_id}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ResultsError(
                f"Cannot write to results directory {str(self.root)!r} ({exc.strerror or exc}).",
                "Choose a writable --out directory.",
            ) from None

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """One writer at a time: a second run into the same directory is refused, not interleaved."""
        path = self.root / ".lock"
        fh = open(path, "a+")  # noqa: SIM115  (held for the whole run)
        try:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                raise ResultsError(
                    f"Another lossbench run ({holder}) is writing to {str(self.root)!r}.",
                    "Wait for it to finish, or write to another --out directory.",
                ) from None
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()}")
            fh.flush()
            yield
        finally:
            fh.close()

    @contextlib.contextmanager
    def marker_dir(self, run_id: str) -> Iterator[str]:
        """A scratch folder where workers mark the trials they are running."""
        # Called under the lock, so any other marker folder or temporary file belongs to a run that was killed.
        for stale in self.root.glob(".inflight-*"):
            shutil.rmtree(stale, ignore_errors=True)
        for folder in (self.root, self.trials_dir, self.metrics_dir, self.examples_dir):
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)
        path = self.root / f".inflight-{run_id}"
        path.mkdir(exist_ok=True)
        try:
            yield str(path)
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def _next_name(self, run_id: str) -> str:
        self._counter += 1
        return f"part-{run_id}-{self._writer_id}-{self._counter:06d}.parquet"

    def append(self, rows: Sequence[dict[str, Any]], curves: Sequence[dict[str, Any]] = (), run_id: str = "run") -> None:
        """Write finished trials as one fragment; curves go first so a visible trial has its curves."""
        if not rows:
            return
        try:
            if curves:
                table = pa.Table.from_pylist(list(curves), schema=metrics_schema())
                write_parquet_atomic(table, self.metrics_dir / self._next_name(run_id))
            write_parquet_atomic(rows_to_table(rows), self.trials_dir / self._next_name(run_id))
        except OSError as exc:
            raise write_failed(self.root, exc) from None

    def examples_path(self, trial_id: str) -> Path | None:
        """Where ``trial_id``'s examples live; None for an id that is not a plain file name."""
        return self.examples_dir / f"{trial_id}.npz" if _SAFE_ID.fullmatch(trial_id) else None

    def write_examples(self, trial_id: str, arrays: Mapping[str, np.ndarray] | None) -> None:
        """Store a trial's example predictions (``None``: remove any an earlier attempt left).

        Call it before ``append`` writes the trial's row, so a visible row never shows another attempt's examples.
        """
        path = self.examples_path(trial_id)
        if path is None:
            return
        try:
            if not arrays:
                path.unlink(missing_ok=True)  # a failed rerun must not show the old attempt's predictions
                return
            buf = io.BytesIO()
            np.savez_compressed(buf, **{k: np.asarray(arrays[k]) for k in EXAMPLE_KEYS})
            self.examples_dir.mkdir(exist_ok=True)  # only results that have examples get the folder
            atomic_write_bytes(path, buf.getvalue())
        except OSError as exc:
            raise write_failed(self.root, exc) from None

    def read_manifest(self) -> dict[str, Any]:
        path = self.root / MANIFEST
        if not path.is_file():
            return {"schema_version": SCHEMA_VERSION, "runs": []}
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ResultsError(f"{path} is not readable JSON ({exc}).", "Restore it or remove the file.") from None

    def record_run(self, entry: dict[str, Any]) -> None:
        manifest = self.read_manifest()
        manifest["schema_version"] = SCHEMA_VERSION
        runs = [r for r in manifest.get("runs", []) if r.get("run_id") != entry.get("run_id")]
        manifest["runs"] = [*runs, entry]
        try:
            atomic_write_bytes(self.root / MANIFEST, json.dumps(manifest, indent=2, default=str).encode())
        except OSError as exc:
            raise write_failed(self.root, exc) from None

    def record_decisions(self, history: list[dict[str, Any]]) -> None:
        """Replace the manifest's record of adaptive-seeding decisions (``lossbench run --until-conclusive``)."""
        manifest = self.read_manifest()
        manifest["schema_version"] = SCHEMA_VERSION
        manifest["decisions"] = history
        try:
            atomic_write_bytes(self.root / MANIFEST, json.dumps(manifest, indent=2, default=str).encode())
        except OSError as exc:
            raise write_failed(self.root, exc) from None

    def check_same_experiment(self, suite: Mapping[str, Any]) -> None:
        """Refuse to add a run of another suite, suite version or configuration to this directory.

        ``suite`` is the resolved suite a run records in the manifest. Runs into one directory may differ in
        datasets, losses, seeds and reported metrics (they extend one experiment), nothing else: pooled,
        trials trained under two protocols would be compared as if they were one.
        """
        for run in self.read_manifest().get("runs", []):
            held = run.get("suite")
            if not isinstance(held, Mapping):
                continue
            differences = experiment_differences(held, suite)
            if not differences:
                continue
            here, there = describe_suite(suite), describe_suite(held)
            detail = "" if here != there else " with another configuration (" + "; ".join(
                f"{key}: {new!r} here, {old!r} in the folder" for key, old, new in differences[:3]) + ")"
            raise ResultsError(
                f"{str(self.root)!r} holds results of {there}; this run is {here}{detail}.",
                "Write to another --out directory, or remove the folder to start over "
                "(one folder holds one experiment, so its trials stay comparable).",
            )

    # -- reading ----------------------------------------------------------------------------------
    def check_schema(self) -> None:
        manifest = self.read_manifest()
        found = manifest.get("schema_version", SCHEMA_VERSION)
        if found != SCHEMA_VERSION:
            raise ResultsError(
                f"{str(self.root)!r} was written with result schema version {found}; this lossbench writes "
                f"version {SCHEMA_VERSION}.",
                "Write to a new --out directory, or use the lossbench version that wrote it.",
                exit_code=3,
            )

    def fragments(self, kind: str = "trials") -> list[Path]:
        folder = self.trials_dir if kind == "trials" else self.metrics_dir
        return sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []

    def read_trials(self) -> pd.DataFrame:
        """All trials, one row per trial_id (the latest attempt)."""
        self.check_schema()
        return read_trial_files(self.fragments("trials"))

    def read_metrics(self) -> pd.DataFrame:
        files = self.fragments("metrics")
        if not files:
            return pd.DataFrame(columns=["trial_id", "split", "metric", "step", "value"])
        frame = pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)
        return frame.drop_duplicates(["trial_id", "split", "metric", "step"], keep="last")

    def completed(self, rerun: str = "none") -> set[str]:
        """trial_ids that resume skips.

        By default every recorded trial counts as done, whatever its status; ``rerun='failed'``
        keeps only the successful ones (ok, skipped), ``rerun='all'`` none.
        """
        if rerun == "all":
            return set()
        trials = self.read_trials()
        if trials.empty:
            return set()
        if rerun == "failed":
            trials = trials[trials["status"].isin(SUCCESS)]
        return set(trials["trial_id"])

    def compact(self, run_id: str) -> None:
        """Merge the run's many small fragments into one file; safe to kill at any point (reads de-duplicate).

        See ``merge_fragments`` for how the driver's memory stays bounded.
        """
        for kind, folder in (("trials", self.trials_dir), ("metrics", self.metrics_dir)):
            files = self.fragments(kind)
            if len(files) < 2:
                continue
            target = folder / f"part-{run_id}-compact-{uuid.uuid4().hex[:8]}.parquet"
            try:
                merge_fragments(files, target, kind)
            except OSError as exc:  # the fragments stay as they are: compaction is only an optimisation
                raise write_failed(self.root, exc) from None
            for f in files:
                f.unlink(missing_ok=True)


#: Fragments read before they are merged into one contiguous table: bounds compaction's memory.
MERGE_BATCH = 128
KEEP_LATEST = {"trials": (["trial_id"], ["ended_at", "attempt"]), "metrics": (["trial_id", "split", "metric", "step"], [])}


def merge_fragments(files: Sequence[Path], target: Path, kind: str) -> None:
    """Write ``files`` as one Parquet file, keeping only the rows a reader would keep (latest per key).

    Dropping duplicates here means a compaction interrupted and redone leaves none behind. Fragments are
    read in batches, each merged into one contiguous table at once: every table read from a file carries
    some 100 KB of overhead, so holding thousands of them made compaction the driver's memory peak.
    """
    subset, order = KEEP_LATEST[kind]
    schema = pa.unify_schemas([pq.read_schema(f) for f in files], promote_options="permissive")
    merged: list[pa.Table] = []
    for start in range(0, len(files), MERGE_BATCH):
        tables = [pq.read_table(f) for f in files[start:start + MERGE_BATCH]]
        aligned = [pa.Table.from_arrays([t.column(field.name).cast(field.type) if field.name in t.column_names
                                         else pa.nulls(len(t), field.type) for field in schema], schema=schema)
                   for t in tables]
        merged.append(pa.concat_tables(aligned).combine_chunks())
        del tables, aligned
    table = pa.concat_tables(merged).combine_chunks()
    keys = table.select(subset + order).to_pandas()
    if order:
        keys = keys.sort_values(order, kind="stable")
    keys = keys.drop_duplicates(subset, keep="last")
    table = table.take(pa.array(np.sort(keys.index.to_numpy()), type=pa.int64()))
    write_parquet_atomic(table.replace_schema_metadata({METADATA_KEY: str(SCHEMA_VERSION).encode()}), target)


#: Keys of a resolved suite in which runs into one results directory may differ: they extend the experiment.
EXTENDS_EXPERIMENT = frozenset({"datasets", "losses", "seeds", "metrics", "description", "path"})


def describe_suite(suite: Mapping[str, Any]) -> str:
    return f"suite {suite.get('name')!r} v{suite.get('version')}"


def experiment_differences(held: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(dotted key, held value, new value) for every setting that makes ``new`` another experiment."""

    def flat(value: Any, prefix: str = "") -> dict[str, Any]:
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for k, v in value.items():
                if prefix or k not in EXTENDS_EXPERIMENT:
                    out.update(flat(v, f"{prefix}{k}."))
            return out
        return {prefix[:-1]: value}

    a, b = flat(held), flat(json.loads(json.dumps(new, default=str)))  # as the manifest stores it
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def write_failed(root: Path, exc: OSError) -> ResultsError:
    """The one message for a results directory that stopped accepting writes (disk full, permissions, removed)."""
    return ResultsError(
        f"Could not write results to {str(root)!r} ({exc.strerror or exc}); everything written before is intact.",
        "Free disk space or fix permissions, then rerun the same command to resume.",
    )


def read_trial_files(files: Iterable[Path]) -> pd.DataFrame:
    """Read trial fragments (any mix of runs), checking schema versions, newest attempt per trial_id."""
    tables = []
    for f in files:
        try:
            version = file_schema_version(f)
            table = pq.read_table(f)
        except (OSError, pa.ArrowInvalid) as exc:
            raise ResultsError(f"{f} is not a readable Parquet file ({exc}).",
                               "Remove or restore the file; other fragments are unaffected.") from None
        if version is None:
            raise ResultsError(f"{f} is not a lossbench result file (no schema version in its metadata).",
                               "Pass files written by `lossbench run`.", exit_code=3)
        if version != SCHEMA_VERSION:
            raise ResultsError(f"{f} has result schema version {version}; this lossbench reads {SCHEMA_VERSION}.",
                               "Use the lossbench version that wrote it.", exit_code=3)
        missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
        if missing:
            raise ResultsError(f"{f} claims to be a lossbench result file but lacks the column(s) {', '.join(missing)}.",
                               "Pass files written by `lossbench run`.", exit_code=3)
        tables.append(table)
    if not tables:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in TRIAL_COLUMNS})
    frame = pa.concat_tables(tables, promote_options="permissive").to_pandas()
    frame["protocol"] = frame.get("protocol", pd.Series(index=frame.index, dtype=object)).fillna(UNVERSIONED_PROTOCOL)
    frame = frame.sort_values(["ended_at", "attempt"], kind="stable")
    return frame.drop_duplicates("trial_id", keep="last").reset_index(drop=True)


def read_examples(path: Path) -> dict[str, np.ndarray]:
    """The arrays of one examples file (no pickled objects are ever loaded)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in EXAMPLE_KEYS}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise ResultsError(f"{path} is not a readable examples file ({exc}).",
                           "Remove the file; the trial's row and metrics are unaffected.") from None
    return arrays
