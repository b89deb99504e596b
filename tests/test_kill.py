"""A run SIGKILLed at any moment loses at most the trials in flight, and a rerun completes it exactly once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lossbench.store import ResultStore
from lossbench.suite import load_suite

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX-only")


def raw_trial_ids(out: Path) -> list[str]:
    return [tid for f in sorted((out / "trials").glob("part-*.parquet"))
            for tid in pq.read_table(f, columns=["trial_id"]).column("trial_id").to_pylist()]


@pytest.mark.slow
def test_killed_run_resumes_with_every_trial_exactly_once(tmp_path: Path, tiny_suite_file: Path) -> None:
    out = tmp_path / "r"
    cmd = [sys.executable, "-m", "lossbench", "run", "--suite", str(tiny_suite_file), "--seeds", "4",
           "--out", str(out), "-q", "--no-vectorize"]  # one fragment per trial: killed between fragments
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "trials").is_dir() and len(list((out / "trials").glob("part-*.parquet"))) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-500:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = raw_trial_ids(out)
    expected = len(load_suite(str(tiny_suite_file)).datasets) * 2 * 4
    assert 3 <= len(partial) < expected
    ResultStore(out).read_trials()  # every fragment left behind is readable

    done = subprocess.run(cmd, env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    ids = raw_trial_ids(out)
    assert len(ids) == expected and len(set(ids)) == expected
    trials = ResultStore(out).read_trials()
    assert set(trials["status"]) == {"ok"}


@pytest.mark.slow
def test_driver_killed_at_random_points_ten_times_then_completes_exactly_once(tmp_path: Path,
                                                                            tiny_suite_file: Path) -> None:
    """SIGKILL the driver ten times at random moments (start-up, planning, training, writing, compacting)."""
    out = tmp_path / "r"
    cmd = [sys.executable, "-m", "lossbench", "run", "--suite", str(tiny_suite_file), "--seeds", "3",
           "--out", str(out), "-q"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    rng = random.Random(20260101)  # fixed: a failure is reproducible
    started = time.monotonic()
    for i in range(10):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if i % 2:  # mid-training: once 1-2 more fragments are written, then a random fraction of a trial later
            target = len(list(out.glob("trials/part-*.parquet"))) + rng.randint(1, 2)
            deadline = time.monotonic() + 60
            while (proc.poll() is None and time.monotonic() < deadline
                   and len(list(out.glob("trials/part-*.parquet"))) < target):
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.3))
        else:  # anywhere from interpreter start-up through planning to the first trials
            time.sleep(rng.uniform(0.2, 4.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        else:
            assert proc.returncode == 0, proc.stderr.read().decode()[-2000:]  # finished before the kill
        proc.stderr.close()
        for f in out.glob("*/part-*.parquet"):
            pq.read_table(f)  # no fragment is ever half-written, whenever the kill lands
        if out.is_dir():
            ResultStore(out).read_trials()
    done = subprocess.run(cmd, env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    expected = len(load_suite(str(tiny_suite_file)).datasets) * 2 * 3
    ids = raw_trial_ids(out)
    assert len(ids) == expected and len(set(ids)) == expected  # every trial exactly once, even in the raw files
    assert set(ResultStore(out).read_trials()["status"]) == {"ok"}
    assert not list(out.glob(".inflight-*"))
    assert time.monotonic() - started < 180
