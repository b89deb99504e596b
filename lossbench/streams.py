"""Named random streams: every random draw of a trial comes from (trial seed, purpose), never from an offset.

A stream is ``numpy.random.SeedSequence(entropy=seed, spawn_key=(purpose, *keys))``: the seed is the trial seed, the
purpose one of :data:`PURPOSES` and ``keys`` say which draw of that purpose (an epoch, which split, what a method
initialises). Distinct (seed, purpose, keys) give independent streams, so no two purposes and no two seeds can share
draws (before, seed s drew its dropout masks from the stream seed s + 1 drew its initial weights from); the same
(seed, purpose, keys) give every loss the same draws (pairing).

The data a source generates (``synthetic:``, ``seg:`` with their own ``seed=``) is part of the dataset's identity
and content hash, so it is keyed by the URI, not by these streams.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

#: Every purpose a trial draws randomness for, with what draws from it. Append only: a purpose's position is its key.
PURPOSES: dict[str, str] = {
    "split": "train/validation/test splits (key: which split)",
    "init": "the model's initial weights (the global torch RNG while the model is built)",
    "loss": "a loss's own draws: proxies, EnsLoss's random derivatives (key: what)",
    "dropout": "the global torch RNG while training: dropout masks, and any draw without a generator",
    "batch_order": "the order of the training rows (key: epoch)",
    "noise": "training-label noise",
    "long_tail": "the long-tailed subsample of the training split",
    "augment": "data augmentation (key: epoch)",
    "method": "a method's draws during training (StepState.generator): mixup, partners, noise",
    "method_setup": "what a method builds or draws outside the steps (key: what): auxiliary networks, clusters",
    "subsample": "an evaluation subsample (the retrieval gallery)",
    "forget": "the unlearning task's forget set (a random fraction of the training rows)",
    "unlearn_order": "the forget and retain batches of the unlearning steps (key: which set)",
    "attribution": "DMM's datamodel designs: which rows or classes each fit leaves out (key: design)",
    "attack": "the random start of the PGD attack on the forget rows",
}
_KEYS = {name: i for i, name in enumerate(PURPOSES)}


def _key(part: int | str) -> int:
    return part if isinstance(part, int) else zlib.crc32(part.encode())


def sequence(seed: int, purpose: str, *keys: int | str) -> np.random.SeedSequence:
    """The stream of ``purpose`` (one of :data:`PURPOSES`) for trial seed ``seed``."""
    if purpose not in _KEYS:
        raise ValueError(f"unknown random stream {purpose!r}; add it to lossbench.streams.PURPOSES")
    return np.random.SeedSequence(entropy=int(seed), spawn_key=(_KEYS[purpose], *map(_key, keys)))


def rng(seed: int, purpose: str, *keys: int | str) -> np.random.Generator:
    """A numpy generator on the stream."""
    return np.random.default_rng(sequence(seed, purpose, *keys))


def seed_of(seed: int, purpose: str, *keys: int | str, bits: int = 63) -> int:
    """An integer seed drawn from the stream, for APIs that take one (``random_state=``: ``bits=32``)."""
    words = sequence(seed, purpose, *keys).generate_state(2, np.uint32)
    return int((int(words[0]) << 32 | int(words[1])) >> (64 - bits))


def generator(seed: int, purpose: str, *keys: int | str, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator on the stream."""
    return torch.Generator(device=device).manual_seed(seed_of(seed, purpose, *keys))


def seed_torch(seed: int, purpose: str, *keys: int | str) -> None:
    """Seed torch's global RNG from the stream (for draws that take no generator: layer initialisation, dropout)."""
    torch.manual_seed(seed_of(seed, purpose, *keys))
