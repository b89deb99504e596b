"""`lossbench run` as a newcomer and a CI job meet it: where results go, what the exit code says, what a piped
log shows, what Ctrl-C keeps, and which files a failed command leaves behind."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from lossbench.cli.app import app
from lossbench.store import ResultStore

runner = CliRunner()
BINARY = "synthetic:classification#n=300&minority=0.3"

PLUGIN = """
import os, time
from pathlib import Path
import torch
import torch.nn.functional as F
from lossbench.losses import LOSSES, LossBase, LossInfo, register_loss

def info(name):
    return LossInfo(name=name, family="test", tasks=frozenset({"binary", "multiclass"}), input="logits",
                    params={}, citation="test only")

class Raises(LossBase):
    info = info("test-raises")
    def per_sample(self, input, target, **extras):
        raise RuntimeError("a bug in this loss")

class NaN(LossBase):
    info = info("test-nan")
    def per_sample(self, input, target, **extras):
        return F.cross_entropy(input, target, reduction="none") * float("nan")

class Slow(LossBase):
    \"\"\"Cross-entropy whose construction (once per trial) takes 2.5 s.\"\"\"
    info = info("test-slow")
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        time.sleep(2.5)
    def per_sample(self, input, target, **extras):
        return F.cross_entropy(input, target, reduction="none")

class WaitsForGate(LossBase):
    info = info("test-wait-gate")
    def per_sample(self, input, target, **extras):
        gate = Path(os.environ["LOSSBENCH_TEST_GATE"])
        while not gate.exists():
            time.sleep(0.05)
        return F.cross_entropy(input, target, reduction="none")

for cls in (Raises, NaN, Slow, WaitsForGate):
    if cls.info.name not in LOSSES:
        register_loss(cls)
"""


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    path = tmp_path / "test_losses.py"
    path.write_text(PLUGIN)
    return path


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), catch_exceptions=False)


def table_csv(path: Path, n: int = 120) -> Path:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3))
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    frame["label"] = (X[:, 0] > 0).astype(int)
    frame.to_csv(path, index=False)
    return path


# -- results that cannot mix ------------------------------------------------------------------------------------

def test_own_csv_gets_its_own_folder_and_a_header_that_names_it(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    table_csv(tmp_path / "mine.csv")
    result = invoke("run", "--dataset", "csv:mine.csv#target=label", "--loss", "ce", "--seeds", "1")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["mine"]  # not results/quickstart
    assert "quickstart v1:" not in result.output
    assert "csv:mine.csv#target=label (the training settings of suite quickstart v1): 1 trials" in result.output
    # a dataset of the suite itself stays in the suite's folder
    dry = invoke("run", "--dataset", "sklearn:iris", "--loss", "ce", "--seeds", "1", "--dry-run")
    assert dry.exit_code == 0 and not (tmp_path / "results" / "quickstart").exists()


def test_a_folder_refuses_another_suite_or_configuration(tmp_path: Path, tiny_suite_file: Path,
                                                         snapshot: Callable[[Path], dict[str, bytes]]) -> None:
    out = tmp_path / "r"
    first = invoke("run", "--suite", str(tiny_suite_file), "--out", str(out), "--seeds", "1", "-q", "-l", "ce")
    assert first.exit_code == 0, first.output
    before = snapshot(out)

    other = tmp_path / "other.toml"
    other.write_text(tiny_suite_file.read_text().replace('name = "tiny"', 'name = "other"'))
    refused = runner.invoke(app, ["run", "--suite", str(other), "--out", str(out), "-q"])
    assert refused.exit_code == 2, refused.output
    assert f"'{out}' holds results of suite 'tiny' v1; this run is suite 'other' v1." in refused.output

    longer = tmp_path / "longer.toml"
    longer.write_text(tiny_suite_file.read_text().replace("epochs = 3", "epochs = 5"))
    refused = runner.invoke(app, ["run", "--suite", str(longer), "--out", str(out), "--dry-run"])
    assert refused.exit_code == 2, refused.output
    assert "with another configuration (training.epochs: 5 here, 3 in the folder)" in refused.output
    assert snapshot(out) == before  # refused runs touch nothing

    # more losses, seeds and datasets extend the same experiment
    more = invoke("run", "--suite", str(tiny_suite_file), "--out", str(out), "--seeds", "1", "-q", "-l", "focal",
                  "--seed-offset", "5")
    assert more.exit_code == 0, more.output


def test_status_covers_every_run_and_seed_offset_shifts_seeds(tmp_path: Path, tiny_suite_file: Path) -> None:
    out = tmp_path / "r"
    dry = invoke("run", "--suite", str(tiny_suite_file), "--out", str(out), "--seeds", "2", "--seed-offset", "10",
                 "-l", "ce", "--dry-run")
    assert dry.exit_code == 0 and re.search(r"│ 10 +│", dry.output) and re.search(r"│ 11 +│", dry.output)
    assert invoke("run", "--suite", str(tiny_suite_file), "--out", str(out), "--seeds", "1", "-l", "ce",
                  "-q").exit_code == 0
    assert invoke("run", "--suite", str(tiny_suite_file), "--out", str(out), "--seeds", "2", "--seed-offset", "10",
                  "-l", "focal", "-q").exit_code == 0
    trials = ResultStore(out).read_trials()
    assert sorted(set(trials.loc[trials["loss"] == "focal", "seed"])) == [10, 11]
    status = invoke("status", str(out))
    assert status.exit_code == 0, status.output
    assert "(2 runs): 6 trials — ok 6, pending 0" in status.output  # 2 datasets × (1 + 2) trials


# -- exit codes -------------------------------------------------------------------------------------------------

def test_exit_codes_say_whether_trials_have_results(tmp_path: Path, tiny_suite_file: Path, plugin: Path) -> None:
    base = ["run", "--suite", str(tiny_suite_file), "--seeds", "1", "--plugin", str(plugin), "-d", BINARY, "-q"]
    skipped = invoke(*base, "--out", str(tmp_path / "a"), "-l", "z-loss")  # multiclass only: skipped on binary data
    assert skipped.exit_code == 6, skipped.output
    diverged = invoke(*base, "--out", str(tmp_path / "b"), "-l", "ce", "-l", "test-nan")  # a result, not a fault
    assert diverged.exit_code == 0, diverged.output
    assert set(ResultStore(tmp_path / "b").read_trials()["status"]) == {"ok", "diverged"}
    failed = invoke(*base, "--out", str(tmp_path / "c"), "-l", "ce", "-l", "test-raises")
    assert failed.exit_code == 4, failed.output
    again = invoke(*base, "--out", str(tmp_path / "c"), "-l", "ce", "-l", "test-raises")  # the grid still has it
    assert again.exit_code == 4, again.output
    with_summary = invoke(*base[:-1], "--out", str(tmp_path / "c"), "-l", "ce", "-l", "test-raises")
    assert "Some trials failed (exit 4)" in with_summary.output and "--rerun failed" in with_summary.output


# -- the newcomer's path ----------------------------------------------------------------------------------------

@pytest.mark.slow
def test_piped_output_prints_steady_progress_lines(tmp_path: Path, tiny_suite_file: Path, plugin: Path) -> None:
    result = invoke("run", "--suite", str(tiny_suite_file), "--seeds", "1", "-d", BINARY, "--plugin", str(plugin),
                    "-l", "test-slow", "-l", "ce", "--out", str(tmp_path / "r"), "--progress-every", "1")
    assert result.exit_code == 0, result.output
    lines = [x for x in result.output.splitlines() if x.startswith("progress: ")]
    assert len(lines) >= 3, result.output  # a 2.5 s trial, a line a second, and the last one
    assert re.fullmatch(r"progress: 0/2 trials \(ok 0\), \ds elapsed, eta unknown", lines[0]), lines[0]
    assert re.fullmatch(r"progress: 2/2 trials \(ok 2\), \d+s elapsed, done", lines[-1]), lines[-1]
    header = next(i for i, x in enumerate(result.output.splitlines()) if "2 to run" in x)
    assert result.output.splitlines().index(lines[0]) > header


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.slow
def test_ctrl_c_says_what_was_saved_and_the_same_command_resumes(tmp_path: Path, tiny_suite_file: Path,
                                                                 plugin: Path) -> None:
    out, gate = tmp_path / "r", tmp_path / "gate"
    cmd = [sys.executable, "-m", "lossbench", "run", "--suite", str(tiny_suite_file), "--seeds", "1", "--plugin",
           str(plugin), "-l", "ce", "-l", "test-wait-gate", "--out", str(out),
           "--no-vectorize"]  # one trial at a time: ce is saved before test-wait-gate starts
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "LOSSBENCH_TEST_GATE": str(gate)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not list((out / "trials").glob("part-*")):
        time.sleep(0.05)  # ce is saved, test-wait-gate waits
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, output
    # the console wraps long lines (a long temporary path), so compare with whitespace collapsed
    assert f"Interrupted: 1 trials of this run were saved in {out} (3 not run). Rerun the same command to resume." \
        in " ".join(output.split())
    assert "Traceback" not in output
    gate.touch()
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "3 to run, 1 already done" in again.stdout
    assert len(ResultStore(out).read_trials()) == 4


@pytest.mark.parametrize("args", [
    ["--loss", "focl"],
    ["--dataset", "csv:nope.csv#target=y"],
    ["--suite", "nope"],
    ["--loss", "focal:gamma=-1"],
    ["--plugin", "no_such_module_xyz"],
    ["--device", "tpu"],
    ["--dataset", "synthetic:classification#n=abc"],
])
def test_a_refused_run_creates_no_folder(tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / "deep" / "out"
    result = runner.invoke(app, ["run", "--out", str(out), *args])
    assert result.exit_code == 2, result.output
    assert list(tmp_path.iterdir()) == []


def test_result_files_follow_the_umask(tmp_path: Path, tiny_suite_file: Path) -> None:
    """A team shares a results folder and serves its report: files are 0644 under umask 022, not 0600."""
    old = os.umask(0o022)
    try:
        out = tmp_path / "r"
        assert invoke("run", "--suite", str(tiny_suite_file), "--seeds", "1", "-l", "ce", "--out", str(out),
                      "-q").exit_code == 0
        files = [out / "manifest.json", *(out / "trials").iterdir(), *(out / "metrics").iterdir()]
        html = tmp_path / "report.html"
        from lossbench.store import atomic_write_bytes

        atomic_write_bytes(html, b"<html></html>")  # how the HTML report and the calibration file are written
        for path in [*files, html]:
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
        os.umask(0o002)
        atomic_write_bytes(html, b"<html></html>")
        assert stat.S_IMODE(html.stat().st_mode) == 0o664
    finally:
        os.umask(old)
    assert json.loads((out / "manifest.json").read_text())["runs"]
