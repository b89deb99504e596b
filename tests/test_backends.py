"""The dask backend gives the same rows as loky, on a real LocalCluster bound to 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from lossbench.backends import BackendConfig
from lossbench.errors import UserError
from lossbench.runner import plan, run
from lossbench.store import ResultStore
from lossbench.suite import Suite

METRIC_COLUMNS = ["trial_id", "status", "value", "m_accuracy", "m_auroc", "epochs_run"]


def run_with(tmp_path: Path, suite: Suite, backend: BackendConfig, name: str):  # type: ignore[no-untyped-def]
    store = ResultStore(tmp_path / name)
    the_plan = plan(store, suite, seeds=[0, 1])
    run(store, the_plan, backend=backend)
    return store.read_trials().sort_values("trial_id").reset_index(drop=True)


def test_dask_and_loky_give_the_same_rows(tmp_path: Path, tiny_suite: Suite) -> None:
    pytest.importorskip("dask.distributed")
    loky = run_with(tmp_path, tiny_suite, BackendConfig("loky", 2), "loky")
    dask = run_with(tmp_path, tiny_suite, BackendConfig("dask", 2), "dask")
    assert set(dask["backend"]) == {"dask"} and set(loky["backend"]) == {"loky"}
    assert loky[METRIC_COLUMNS].equals(dask[METRIC_COLUMNS])


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        (BackendConfig("ray"), "Unknown --backend 'ray'"),
        (BackendConfig("loky", scheduler="tcp://127.0.0.1:1"), "--scheduler only applies"),
        (BackendConfig("dask", retries=-1), "--retries must not be negative"),
    ],
)
def test_bad_backend_options(config: BackendConfig, fragment: str) -> None:
    with pytest.raises(UserError, match=fragment.replace("(", r"\(")):
        config.validate()
