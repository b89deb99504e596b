"""The unlearning task's model cache: pre-trained weights, oracles and datamodels, computed once per key.

Every method of a seed starts from the same pre-trained model and is measured against the same oracles; a worker
that runs several methods of one seed (or a later run) reads them from disk instead of training them again.
An entry is one ``torch.save`` file named by the hash of everything that determines it, written to a temporary
name and renamed, so a concurrent worker never reads half a file; an unreadable entry is a miss, never an error.
The cache lives in ``$LOSSBENCH_CACHE_DIR/unlearning`` (``~/.cache/lossbench/unlearning`` by default).
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch

from lossbench.sources.cache import cache_root
from lossbench.specs import short_hash

T = TypeVar("T")

#: ``"<kind>:computed"`` and ``"<kind>:hit"`` counts of this process (the cost benchmark reads them).
COUNTS: Counter[str] = Counter()


def cache_dir() -> Path:
    return cache_root() / "unlearning"


def entry_path(kind: str, key: Mapping[str, Any]) -> Path:
    return cache_dir() / f"{kind}-{short_hash(dict(key), 24)}.pt"


def cached(kind: str, key: Mapping[str, Any], compute: Callable[[], T]) -> T:
    """The stored value of (``kind``, ``key``), or ``compute()`` stored; values are what ``torch.save`` writes
    with ``weights_only`` loading: dicts, lists, tensors, numbers and strings."""
    path = entry_path(kind, key)
    if path.is_file():
        try:
            value = torch.load(path, map_location="cpu", weights_only=True)
            COUNTS[f"{kind}:hit"] += 1
            return value  # type: ignore[no-any-return]
        except Exception:  # a damaged or foreign file: compute again and replace it
            pass
    value = compute()
    COUNTS[f"{kind}:computed"] += 1
    tmp_name = ""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as tmp:
            tmp_name = tmp.name
            torch.save(value, tmp)
        os.replace(tmp_name, path)
    except OSError:  # a read-only or full disk costs time, never the trial
        if tmp_name:
            Path(tmp_name).unlink(missing_ok=True)
    return value
