"""Shared fixtures: a tiny fast suite on generated data, an isolated dataset cache per test,
and copies of the shared reference data beside the checkout (skipped when it is absent)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lossbench.suite import Suite, parse_suite

#: The read-only shared data folder beside the checkout (``../shared``); optional.
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
OPENML_CACHE = SHARED / "data" / "openml_cache"
KEEL_MULTICLASS = SHARED / "data" / "keel_multiclass"

TINY = {
    "name": "tiny",
    "version": "1",
    "task": "classification",
    "datasets": ["synthetic:classification#n=300&minority=0.3"],
    "losses": ["ce", "focal"],
    "seeds": 2,
    "primary_metric": "balanced_accuracy",
    "metrics": ["accuracy", "auroc"],
    "model": {"family": "mlp", "hidden": [16]},
    "training": {"epochs": 3, "batch_size": 32, "patience": 0},
}

TINY_TOML = """
name = "tiny"
version = "1"
task = "classification"
datasets = ["synthetic:classification#n=300&minority=0.3", "synthetic:classification#n=200&classes=3&minority=0.3"]
losses = ["ce", "focal"]
seeds = 2
primary_metric = "balanced_accuracy"
metrics = ["accuracy", "auroc"]

[model]
family = "mlp"
hidden = [16]

[training]
epochs = 3
batch_size = 32
patience = 0
"""


#: At most this many pytest-xdist workers for ``-n auto`` (the default, see pyproject.toml): each imports torch,
#: and past a few the subprocess tests only wait longer for a core.
MAX_AUTO_WORKERS = 4


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_AUTO_WORKERS))


@pytest.fixture
def tiny_suite() -> Suite:
    return parse_suite(dict(TINY), "tiny.toml")


@pytest.fixture
def tiny_suite_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_TOML)
    return path


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent: the shared reference data only exists on development machines")
    return SHARED


def require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"needs the shared data folder {path} (absent: the shared data is not beside this checkout)")
    return path


@pytest.fixture(autouse=True)
def no_leftover_plugins() -> Iterator[None]:
    """Losses a test registers (directly or through a --plugin file) do not outlive it in this process."""
    import sys

    from lossbench.losses import LOSSES

    names, modules = set(LOSSES.names()), {m for m in sys.modules if m.startswith("lossbench_plugin_")}
    yield
    for name in set(LOSSES.names()) - names:
        LOSSES.unregister(name)
    for module in {m for m in sys.modules if m.startswith("lossbench_plugin_")} - modules:
        del sys.modules[module]  # so the next test that passes the file imports (and registers) it again


@pytest.fixture(autouse=True)
def isolated_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Never touch the user's ~/.cache/lossbench or OpenML cache from a test."""
    monkeypatch.setenv("LOSSBENCH_CACHE_DIR", str(tmp_path / "lossbench-cache"))
    monkeypatch.setenv("OPENML_CACHE_DIR", str(tmp_path / "no-openml-cache"))
    yield


@pytest.fixture
def openml_cache(tmp_path: Path) -> Path:
    """A writable copy of a few datasets of the shared OpenML cache (the original is read-only)."""
    source = require(OPENML_CACHE) / "org" / "openml" / "www" / "datasets"
    root = tmp_path / "openml"
    for did in ("1068", "1050"):
        shutil.copytree(source / did, root / "org" / "openml" / "www" / "datasets" / did)
    for p in root.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return root


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def snapshot() -> Callable[[Path], dict[str, bytes]]:
    """Every file under a folder with its bytes: to prove a folder was left exactly as it was."""
    return _snapshot


@pytest.fixture
def keel_multiclass() -> Path:
    return require(KEEL_MULTICLASS)
