"""Where a result came from: versions, code revision, hardware, threads."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import lossbench


@functools.cache
def git_sha() -> tuple[str, bool]:
    """The lossbench source revision and whether the tree had local changes ('' when not a checkout)."""
    root = Path(lossbench.__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return "", False
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha, bool(dirty)
    except (OSError, subprocess.SubprocessError):
        return "", False


@functools.cache
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def versions() -> dict[str, str]:
    import joblib
    import numpy
    import pandas
    import pyarrow
    import sklearn
    import torch

    return {
        "lossbench": lossbench.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "sklearn": sklearn.__version__,
        "pandas": pandas.__version__,
        "pyarrow": pyarrow.__version__,
        "joblib": joblib.__version__,
    }


def environment() -> dict[str, Any]:
    """Columns every result row carries."""
    v = versions()
    sha, dirty = git_sha()
    return {
        "lossbench_version": v["lossbench"],
        "git_sha": sha,
        "git_dirty": dirty,
        "python": v["python"],
        "torch_version": v["torch"],
        "numpy_version": v["numpy"],
        "sklearn_version": v["sklearn"],
        "platform": f"{sys.platform}-{platform.machine()}",
        "cpu_model": cpu_model(),
        "n_cpus": os.cpu_count() or 1,
    }


def resolve_device(requested: str) -> str:
    """'auto' picks CUDA when present, else CPU; an explicit 'cuda' without a GPU is an error."""
    import torch

    from lossbench.errors import UserError

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for, but no CUDA device is available.", "Use --device auto or cpu.")
    if requested not in ("cpu",) and not requested.startswith("cuda"):
        raise UserError(f"Unknown device {requested!r}.", "Use auto, cpu or cuda.")
    return requested


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return cpu_model()
