"""Fuzzing the boundaries: random suite files and random command lines never end in a traceback.

Every outcome must be success (0) or a clean error with exit code 2 or 3. ``run`` always gets
``--dry-run`` and a temporary ``--out``, so nothing trains and nothing is written outside the test folder.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from lossbench.cli.app import app
from lossbench.suite import TOP_LEVEL, TRAINING_DEFAULTS

pytestmark = pytest.mark.slow  # hundreds of generated inputs per test
runner = CliRunner()
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
TINY_DATA = "synthetic:classification#n=60&features=4&informative=2"

scalars = st.one_of(
    st.text(max_size=12), st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.sampled_from(["ce", "focal", "focal:gamma=2", "anyloss-f1", "accuracy", "mlp", "adam",
                                    "classification", TINY_DATA, "sklearn:iris", "csv:x.csv#target=y"]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from([*TRAINING_DEFAULTS, "hidden", "dropout", "family", "test", "val", "noise", "x"]), inner,
    max_size=4), max_leaves=8)
keys = st.sampled_from([*TOP_LEVEL, "epochs", "loss", "dataset"]) | st.text(min_size=1, max_size=8)


def valid_base() -> dict[str, Any]:
    return {"name": "fuzz", "version": "1", "task": "classification", "datasets": [TINY_DATA],
            "losses": ["ce"], "primary_metric": "accuracy", "seeds": 1}


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")) if not math.isfinite(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_value(x)}" for k, x in v.items()) + "}"


def to_toml(data: dict[str, Any]) -> str:
    return "".join(f"{json.dumps(str(k))} = {toml_value(v)}\n" for k, v in data.items())


def check(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, repr(result.exception))
    assert result.exit_code in (0, 2, 3), (args, result.exit_code, result.output[-1000:])
    assert "Traceback" not in result.output, (args, result.output[-1000:])


def run_suite_text(text: str | bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "suite.toml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
        check(["run", "--suite", str(path), "--dry-run", "--out", str(Path(tmp) / "out")])


@SETTINGS
@given(changes=st.dictionaries(keys, values, max_size=5), drop=st.sets(st.sampled_from(list(valid_base()))))
def test_random_suite_dicts(changes: dict[str, Any], drop: set[str]) -> None:
    data = {k: v for k, v in valid_base().items() if k not in drop}
    data.update(changes)
    for v in data.values():  # no network: OpenML ids would try a download
        assume("openml" not in json.dumps(v, default=str).lower())
    run_suite_text(to_toml(data))


@SETTINGS
@given(text=st.text(max_size=200) | st.binary(max_size=200))
def test_random_suite_text(text: str | bytes) -> None:
    assume(b"openml" not in (text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")).lower())
    run_suite_text(text)


RUN_OPTIONS = {
    "--seeds": st.integers(-5, 10**9).map(str) | st.text(max_size=5),
    "--n-jobs": st.integers(-2, 4).map(str) | st.text(max_size=3),
    "--threads": st.integers(-2, 4).map(str),
    "--trial-timeout": st.floats(allow_nan=True).map(str) | st.text(max_size=4),
    "--rerun": st.sampled_from(["none", "failed", "all", "x", ""]),
    "--device": st.sampled_from(["auto", "cpu", "cuda", "tpu", ""]),
    "--backend": st.sampled_from(["loky", "dask", "spark"]),
    "--loss": st.sampled_from(["ce", "focal:gamma=1", "focal:gamma=", "focl", ":", "ce:x=1", "dro-kl:base=nope"])
    | st.text(max_size=12),
    "--dataset": st.sampled_from([TINY_DATA, "synthetic:classification#n=5", "sklearn:iris", "csv:nope.csv",
                                  "synthetic:classification#classes=x", "nosuch:x", "csv:/dev/null#target=y"])
    | st.text(max_size=15),
    "--suite": st.sampled_from(["quickstart", "nope", "/dev/null", "x.toml"]) | st.text(max_size=10),
}
OTHER_COMMANDS = st.sampled_from([
    ["compare"], ["gate", "-b", "x", "-c", "y"], ["status"], ["report"], ["list"], ["calibrate", "a"],
])
OTHER_VALUES = st.lists(st.sampled_from(["--metric", "auroc", "--format", "json", "yaml", "--confidence", "7",
                                         "--resamples", "-1", "--on-missing", "bogus", "losses", "suites", "/dev/null",
                                         "nope", "*.parquet", "--mode", "exact", "--alpha", "0"]) | st.text(max_size=8),
                        max_size=5)


@SETTINGS
@given(options=st.lists(st.sampled_from(list(RUN_OPTIONS)).flatmap(
    lambda name: RUN_OPTIONS[name].map(lambda value: [name, value])), max_size=4))
def test_random_run_command_lines(options: list[list[str]]) -> None:
    args = [x for pair in options for x in pair]
    assume(not any("openml" in a.lower() for a in args))
    with tempfile.TemporaryDirectory() as tmp:
        check(["run", *args, "--dataset", TINY_DATA, "--dry-run", "--out", str(Path(tmp) / "out")]
              if "--dataset" not in args and "--suite" not in args else
              ["run", *args, "--dry-run", "--out", str(Path(tmp) / "out")])


@SETTINGS
@given(command=OTHER_COMMANDS, rest=OTHER_VALUES)
def test_random_other_command_lines(command: list[str], rest: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        # relative paths land in an empty folder; --out/--html/--plots are not offered, so nothing is written
        check([*command, *[r if not r.startswith("/") or r == "/dev/null" else tmp + r for r in rest]])
