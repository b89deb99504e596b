"""Faults a long run must survive: a worker killed mid-trial, a hanging trial, a second writer."""

from __future__ import annotations

import sys
import textwrap
import threading
from pathlib import Path

import pytest

from lossbench.backends import BackendConfig
from lossbench.errors import ResultsError
from lossbench.plugins import load_plugins
from lossbench.runner import expand, plan, run
from lossbench.store import ResultStore
from lossbench.suite import Suite
from lossbench.trial import execute

PLUGIN = textwrap.dedent('''
    import os, signal, time
    import torch
    import torch.nn.functional as F
    from lossbench.losses import LOSSES, LossBase, LossInfo, register_loss

    def info(name):
        return LossInfo(name=name, family="test", tasks=frozenset({"binary", "multiclass"}), input="logits",
                        params={}, citation="test only", needs=frozenset({"seed"}))

    class KillsWorker(LossBase):
        """Kills its own process on seed 1: a segfault or the kernel's OOM killer, seen from outside."""
        info = info("test-kill-worker")

        def per_sample(self, input, target, **extras):
            if self.context["seed"] == 1:
                os.kill(os.getpid(), signal.SIGKILL)
            return F.cross_entropy(input, target, reduction="none")

    class Hangs(LossBase):
        info = info("test-hang")

        def per_sample(self, input, target, **extras):
            time.sleep(3600)  # stuck inside one step, where the loop's own deadline check never runs
            return F.cross_entropy(input, target, reduction="none")

    for cls in (KillsWorker, Hangs):
        if cls.info.name not in LOSSES:
            register_loss(cls)
''')


@pytest.fixture
def plugin(tmp_path: Path) -> str:
    path = tmp_path / "faulty_losses.py"
    path.write_text(PLUGIN)
    return str(path)  # a file path: workers load it whatever their sys.path


@pytest.mark.slow
def test_worker_killed_mid_trial_is_crashed_and_the_run_goes_on(tmp_path: Path, tiny_suite: Suite,
                                                               plugin: str) -> None:
    load_plugins([plugin])
    store = ResultStore(tmp_path / "r")
    the_plan = plan(store, tiny_suite, losses=["ce", "test-kill-worker"], seeds=[0, 1, 2], plugins=[plugin])
    rows = run(store, the_plan, backend=BackendConfig("loky", 2))
    assert len(rows) == 6
    trials = ResultStore(tmp_path / "r").read_trials().set_index(["loss", "seed"])
    assert trials.loc[("test-kill-worker", 1), "status"] == "crashed"
    assert "died" in trials.loc[("test-kill-worker", 1), "error_msg"]
    others = trials.drop(index=("test-kill-worker", 1))
    assert set(others["status"]) == {"ok"}
    assert not list((tmp_path / "r").glob(".inflight-*"))
    # The dead stack's trials were retried one at a time, each alone ("per-seed"), in one fresh process up to the
    # death and another after it: fewer processes than retried trials (0.2.0 started one per trial).
    retried = trials[(trials["training_mode"] == "per-seed") & (trials["status"] == "ok")]
    assert len(retried) >= 2 and retried["worker"].nunique() < len(retried)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGALRM is POSIX-only")
def test_hanging_trial_becomes_timeout(tiny_suite: Suite, plugin: str) -> None:
    load_plugins([plugin])
    trials, _ = expand(tiny_suite, losses=["test-hang"], seeds=[0], trial_timeout=1.0, plugins=[plugin])
    row = execute(trials[0]).row
    assert row["status"] == "timeout"
    assert row["wall_s"] < 10


def test_second_writer_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    store.open_for_writing()
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        with ResultStore(tmp_path).lock():
            entered.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    entered.wait(10)
    try:
        with pytest.raises(ResultsError, match="Another lossbench run"), store.lock():
            pass
    finally:
        release.set()
        holder.join()
    with store.lock():  # free again once the first writer is done
        pass


def test_unknown_plugin_is_a_clear_error(tiny_suite: Suite) -> None:
    from lossbench.errors import UserError

    with pytest.raises(UserError, match="Cannot import plug-in module 'no_such_module'"):
        load_plugins(["no_such_module"])
