"""The dask backend gives the same rows as loky, on a real LocalCluster bound to 127.0.0.1."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lossbench.backends import BackendConfig
from lossbench.errors import UserError
from lossbench.plugins import load_plugins
from lossbench.runner import plan, run
from lossbench.store import ResultStore
from lossbench.suite import Suite

METRIC_COLUMNS = ["trial_id", "status", "value", "m_accuracy", "m_auroc", "epochs_run"]


def run_with(tmp_path: Path, suite: Suite, backend: BackendConfig, name: str):  # type: ignore[no-untyped-def]
    store = ResultStore(tmp_path / name)
    the_plan = plan(store, suite, seeds=[0, 1])
    run(store, the_plan, backend=backend)
    return store.read_trials().sort_values("trial_id").reset_index(drop=True)


@pytest.mark.slow
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


KILLER = textwrap.dedent('''
    import os, signal
    from pathlib import Path
    import torch.nn.functional as F
    from lossbench.losses import LOSSES, LossBase, LossInfo, register_loss

    FLAG = Path(__file__).with_suffix(".killed")

    class KillsDaskWorker(LossBase):
        """SIGKILLs its dask worker process on seed 1: once (then trains), or every time with always=true."""
        info = LossInfo(name="test-kill-dask-worker", family="test", tasks=frozenset({"binary", "multiclass"}),
                        input="logits", params={}, citation="test only", needs=frozenset({"seed"}))

        def per_sample(self, input, target, **extras):
            if self.context["seed"] == 1 and (os.environ.get("KILL_ALWAYS") or not FLAG.exists()):
                FLAG.touch()
                os.kill(os.getpid(), signal.SIGKILL)
            return F.cross_entropy(input, target, reduction="none")

    if KillsDaskWorker.info.name not in LOSSES:
        register_loss(KillsDaskWorker)
''')


@pytest.mark.parametrize("always", [False, True], ids=["killed-once-retried", "killed-always-crashed"])
@pytest.mark.slow
def test_dask_worker_killed_mid_trial_is_retried_or_crashed_never_lost(
    tmp_path: Path, tiny_suite: Suite, monkeypatch: pytest.MonkeyPatch, always: bool
) -> None:
    pytest.importorskip("dask.distributed")
    import dask

    plugin = tmp_path / "killer.py"
    plugin.write_text(KILLER)
    if always:
        monkeypatch.setenv("KILL_ALWAYS", "1")  # worker processes inherit the driver's environment
    load_plugins([str(plugin)])
    store = ResultStore(tmp_path / "r")
    the_plan = plan(store, tiny_suite, losses=["ce", "test-kill-dask-worker"], seeds=[0, 1, 2], plugins=[str(plugin)])
    # The in-process scheduler of the LocalCluster gives up on a task after one dead worker (default: 3).
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        rows = run(store, the_plan, backend=BackendConfig("dask", 2))
    assert (tmp_path / "killer.killed").exists()  # a worker really was killed mid-trial
    trials = ResultStore(tmp_path / "r").read_trials()
    assert len(rows) == len(trials) == len(the_plan.trials) == trials["trial_id"].nunique()
    trials = trials.set_index(["dataset", "loss", "seed"])
    victims = trials.xs(("test-kill-dask-worker", 1), level=("loss", "seed"))
    if always:
        assert set(victims["status"]) == {"crashed"}
        assert victims["error_msg"].str.contains("dask worker died").all()
    else:
        assert set(victims["status"]) <= {"ok", "crashed"} and "ok" in set(victims["status"])
    others = trials.drop(index=victims.index.map(lambda d: (d, "test-kill-dask-worker", 1)))
    # Never lost: every other trial returned. (One that shared a dying worker may be recorded crashed too.)
    assert set(others["status"]) <= {"ok", "crashed"} and (others["status"] == "ok").mean() >= 0.75
    assert not list((tmp_path / "r").glob(".inflight-*"))


NESTED = textwrap.dedent('''
    import threading
    from pathlib import Path
    import torch.nn.functional as F
    from joblib import Parallel, delayed
    from lossbench.losses import LOSSES, LossBase, LossInfo, register_loss

    LOG = Path(__file__).with_suffix(".log")

    class NestedJoblib(LossBase):
        """Cross-entropy that first makes a joblib call with default n_jobs, as scikit-learn does inside a trial."""
        info = LossInfo(name="test-nested-joblib", family="test", tasks=frozenset({"binary", "multiclass"}),
                        input="logits", params={}, citation="test only")

        def per_sample(self, input, target, **extras):
            threads = Parallel()(delayed(threading.get_ident)() for _ in range(2))
            with LOG.open("a") as f:
                f.write(f"{threading.get_ident()} {' '.join(map(str, threads))}\\n")
            return F.cross_entropy(input, target, reduction="none")

    if NestedJoblib.info.name not in LOSSES:
        register_loss(NestedJoblib)
''')


@pytest.mark.slow
def test_joblib_calls_inside_a_dask_trial_stay_in_its_thread(tmp_path: Path, tiny_suite: Suite) -> None:
    """scikit-learn's joblib calls inside a trial must not go to the cluster: the waiting task would
    secede, its one-thread worker would start a second trial beside it, and a worker death would take both."""
    pytest.importorskip("dask.distributed")
    plugin = tmp_path / "nested.py"
    plugin.write_text(NESTED)
    load_plugins([str(plugin)])
    store = ResultStore(tmp_path / "r")
    the_plan = plan(store, tiny_suite, losses=["test-nested-joblib"], seeds=[0], plugins=[str(plugin)])
    run(store, the_plan, backend=BackendConfig("dask", 2))  # with one worker joblib would run it in place anyway
    assert set(store.read_trials()["status"]) == {"ok"}
    calls = [line.split() for line in (tmp_path / "nested.log").read_text().splitlines()]
    assert calls and all(set(nested) == {own} for own, *nested in calls)


@pytest.mark.slow
def test_gpu_trials_ask_dask_for_a_gpu_resource() -> None:
    pytest.importorskip("dask.distributed")
    from joblib.parallel import get_active_backend

    config = BackendConfig("dask", 1, gpu=True).validate()
    from lossbench.backends import parallel_backend

    with parallel_backend(config):
        backend, _ = get_active_backend()
        assert backend.submit_kwargs["resources"] == {"GPU": 1}
        workers = backend.client.scheduler_info()["workers"].values()
        assert all(w["resources"] == {"GPU": 1} for w in workers)


@pytest.mark.slow
def test_workers_warmed_while_planning_run_the_trials(tmp_path: Path, tiny_suite: Suite) -> None:
    """The pool warm_workers starts is the one the run uses: its trials find the one-time costs paid (warmup_s 0)."""
    from lossbench.runner import warm_workers

    backend = BackendConfig("loky", 2)
    thread = warm_workers(backend, "cpu", [])
    assert thread is not None and warm_workers(BackendConfig("loky", 1), "cpu", []) is None
    thread.join()
    store = ResultStore(tmp_path / "warm")
    rows = run(store, plan(store, tiny_suite), backend=backend)
    assert {r["status"] for r in rows} == {"ok"}
    assert any(r["warmup_s"] == 0 for r in rows)  # without the head start each worker's first unit pays it
