"""Shared fixtures: an isolated dataset cache per test, and copies of the vendored data beside the checkout.

Helpers are fixtures, not imports: another checkout's ``tests`` package may shadow ``tests.conftest``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

#: The read-only shared data folder beside the checkout (``../shared``); optional.
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
OPENML_CACHE = SHARED / "data" / "openml_cache"
KEEL_MULTICLASS = SHARED / "data" / "keel_multiclass"


def require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"needs the shared data folder {path} (absent: the shared data is not beside this checkout)")
    return path


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
