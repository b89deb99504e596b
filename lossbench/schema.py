"""The result schema: one row per trial, a long table of curves, a version on every file."""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = 1
METADATA_KEY = b"lossbench.schema_version"

STATUSES = ("ok", "skipped", "failed", "diverged", "timeout", "oom", "crashed")
#: The ``protocol`` of rows written before the column existed.
UNVERSIONED_PROTOCOL = "1"
#: Statuses that ``--rerun failed`` keeps; every other recorded status is rerun by it.
SUCCESS = frozenset({"ok", "skipped"})

#: Fixed columns of the trials table; metric columns ``m_<name>`` (test split) and
#: ``m_<name>_tuned`` follow, typed float64.
TRIAL_COLUMNS: dict[str, pa.DataType] = {
    # identity
    "trial_id": pa.string(),
    "run_id": pa.string(),
    "attempt": pa.int32(),
    # trial key (trial_id is the hash of these)
    "suite": pa.string(),
    "suite_version": pa.string(),
    "task": pa.string(),
    "dataset": pa.string(),
    "data_hash": pa.string(),
    "loss": pa.string(),
    "loss_version": pa.string(),
    "seed": pa.int64(),
    "config_hash": pa.string(),
    "protocol": pa.string(),  # lossbench.specs.PROTOCOL; rows written before it existed read as UNVERSIONED
    # readable parts of the key
    "loss_name": pa.string(),
    "method": pa.string(),
    "loss_params": pa.string(),
    "config": pa.string(),
    "dataset_name": pa.string(),
    # outcome
    "status": pa.string(),
    "error_type": pa.string(),
    "error_msg": pa.string(),
    # primary metric
    "metric": pa.string(),
    "value": pa.float64(),
    "higher_is_better": pa.bool_(),
    "eval_split": pa.string(),
    # data
    "n_classes": pa.int32(),
    "n_train": pa.int64(),
    "n_val": pa.int64(),
    "n_test": pa.int64(),
    # decision rule and training-label noise, as the task recorded them
    "threshold_rule": pa.string(),
    "noise_type": pa.string(),
    # unlearning: the forget option, the hash of the forget rows and of the pre-trained weights (pairing)
    "forget": pa.string(),
    "forget_key": pa.string(),
    "pretrain_sha": pa.string(),
    # cost
    "warmup_s": pa.float64(),  # the worker process's one-time start-up, paid before its first trial (else 0)
    "wall_s": pa.float64(),
    "train_s": pa.float64(),
    "eval_s": pa.float64(),
    "peak_rss_mb": pa.float64(),
    "epochs_run": pa.int32(),
    "best_epoch": pa.int32(),
    # provenance
    "lossbench_version": pa.string(),
    "git_sha": pa.string(),
    "git_dirty": pa.bool_(),
    "python": pa.string(),
    "torch_version": pa.string(),
    "numpy_version": pa.string(),
    "sklearn_version": pa.string(),
    "platform": pa.string(),
    "cpu_model": pa.string(),
    "n_cpus": pa.int32(),
    "device": pa.string(),
    "device_name": pa.string(),
    "threads": pa.int32(),
    "backend": pa.string(),
    "training_mode": pa.string(),  # per-seed | seed-stacked | loss-seed-stacked; not in the trial key
    "worker": pa.string(),
    "started_at": pa.timestamp("us", tz="UTC"),
    "ended_at": pa.timestamp("us", tz="UTC"),
}

METRIC_COLUMNS: dict[str, pa.DataType] = {
    "trial_id": pa.string(),
    "split": pa.string(),
    "metric": pa.string(),
    "step": pa.int32(),
    "value": pa.float64(),
}


def trials_schema(extra_columns: list[str]) -> pa.Schema:
    fields = [pa.field(k, t) for k, t in TRIAL_COLUMNS.items()]
    fields += [pa.field(c, pa.float64()) for c in sorted(extra_columns) if c not in TRIAL_COLUMNS]
    return pa.schema(fields, metadata={METADATA_KEY: str(SCHEMA_VERSION).encode()})


def metrics_schema() -> pa.Schema:
    return pa.schema([pa.field(k, t) for k, t in METRIC_COLUMNS.items()],
                     metadata={METADATA_KEY: str(SCHEMA_VERSION).encode()})
