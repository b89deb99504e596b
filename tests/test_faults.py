"""Faults from outside a run: the results disk fills up mid-run, and two runs race for one directory."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from lossbench import store as store_module
from lossbench.cli.app import app
from lossbench.store import ResultStore

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file locks and signals")


def test_disk_full_mid_run_stops_with_one_line_and_keeps_what_was_written(
    tmp_path: Path, tiny_suite_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tiny tmpfs needs root and a mount; failing the Nth Parquet write models ENOSPC exactly where it hurts."""
    real = store_module.write_parquet_atomic
    calls = {"n": 0}

    def fills_up(table: pa.Table, path: Path) -> None:
        calls["n"] += 1
        if calls["n"] > 6:  # curves + row per trial: three trials get through
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(table, path)

    monkeypatch.setattr(store_module, "write_parquet_atomic", fills_up)
    out = tmp_path / "r"
    result = CliRunner().invoke(app, ["run", "--suite", str(tiny_suite_file), "--out", str(out), "-q",
                                      "--no-vectorize"])  # one fragment per trial
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = [x for x in result.output.splitlines() if x.strip()]
    assert len(lines) == 1 and "No space left on device" in lines[0] and "rerun the same command" in lines[0]
    assert len(ResultStore(out).read_trials()) == 3  # everything written before stays readable
    assert not list(out.glob("*/.part-*.tmp"))

    monkeypatch.setattr(store_module, "write_parquet_atomic", real)  # space freed: the same command resumes
    again = CliRunner().invoke(app, ["run", "--suite", str(tiny_suite_file), "--out", str(out), "-q"])
    assert again.exit_code == 0, again.output
    assert len(ResultStore(out).read_trials()) == 8


def test_trials_folder_replaced_by_a_file_mid_run(tmp_path: Path, tiny_suite_file: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The directory stops accepting writes (removed, remounted read-only): same clean stop, exit 2."""
    out = tmp_path / "r"
    real_append = ResultStore.append
    seen = {"n": 0}

    def block(self: ResultStore, rows, curves=(), run_id="run") -> None:  # type: ignore[no-untyped-def]
        seen["n"] += 1
        if seen["n"] == 3:
            for f in self.metrics_dir.iterdir():
                f.unlink()
            self.metrics_dir.rmdir()
            self.metrics_dir.write_text("not a folder any more")
        real_append(self, rows, curves, run_id)

    monkeypatch.setattr(ResultStore, "append", block)
    result = CliRunner().invoke(app, ["run", "--suite", str(tiny_suite_file), "--out", str(out), "-q",
                                      "--no-vectorize"])  # one fragment per trial
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Could not write results" in result.output and "Traceback" not in result.output
    assert len(ResultStore(out).read_trials()) == 2


WAITING_LOSS = """
import os, time
from pathlib import Path
import torch.nn.functional as F
from lossbench.losses import LOSSES, LossBase, LossInfo, register_loss

class WaitsForGate(LossBase):
    \"\"\"Cross-entropy that holds its first step until the test opens the gate: the run stays busy on cue.\"\"\"
    info = LossInfo(name="test-wait-gate", family="test", tasks=frozenset({"binary", "multiclass"}),
                    input="logits", params={}, citation="test only")

    def per_sample(self, input, target, **extras):
        gate = Path(os.environ["LOSSBENCH_TEST_GATE"])
        while not gate.exists():
            time.sleep(0.05)
        return F.cross_entropy(input, target, reduction="none")

if WaitsForGate.info.name not in LOSSES:
    register_loss(WaitsForGate)
"""


@pytest.mark.slow
def test_two_concurrent_runs_on_one_directory(tmp_path: Path, tiny_suite_file: Path) -> None:
    """Two real `lossbench run` processes on one --out: the second is refused in one line, the first completes."""
    out, gate, plugin = tmp_path / "r", tmp_path / "gate", tmp_path / "waiting_loss.py"
    plugin.write_text(WAITING_LOSS)
    cmd = [sys.executable, "-m", "lossbench", "run", "--suite", str(tiny_suite_file), "--plugin", str(plugin),
           "--loss", "test-wait-gate", "--loss", "ce", "--out", str(out), "-q"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "LOSSBENCH_TEST_GATE": str(gate)}
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        lock = out / ".lock"
        while time.monotonic() < deadline and first.poll() is None and not (
            lock.is_file() and lock.read_text() and (out / "manifest.json").is_file()
        ):
            time.sleep(0.05)  # the lock names its holder once taken; the manifest entry follows, then trial 1 waits
        assert first.poll() is None, first.stderr.read().decode()[-2000:]
        before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != ".lock"}
        second = subprocess.run(cmd, env=env, capture_output=True, timeout=120)
        err = second.stderr.decode()
        assert second.returncode == 2, err
        assert f"Another lossbench run (pid {first.pid})" in err and "write to another --out directory" in err, err
        assert "Traceback" not in err and len([x for x in err.splitlines() if x.strip()]) == 1
        after = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != ".lock"}
        assert after == before  # the refused run wrote nothing: not the manifest, not a fragment
    finally:
        gate.touch()
    assert first.wait(timeout=180) == 0, first.stderr.read().decode()[-2000:]
    first.stderr.close()
    trials = ResultStore(out).read_trials()
    assert len(trials) == 2 * 2 * 2 and set(trials["status"]) == {"ok"}
