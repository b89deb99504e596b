"""The readers of the official MNIST (IDX) and CIFAR (python pickle batches) formats, on tiny files."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest

from lossbench.errors import DataError
from lossbench.sources import load_dataset
from lossbench.sources.images import read_cifar_batch, read_idx


def write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def make_mnist(root: Path, gz: bool = True, n_train: int = 12, n_test: int = 6) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    xtr = rng.integers(0, 256, (n_train, 28, 28))
    xte = rng.integers(0, 256, (n_test, 28, 28))
    ytr, yte = np.arange(n_train) % 10, np.arange(n_test) % 10
    suffix = ".gz" if gz else ""
    for stem, arr in (("train-images-idx3-ubyte", xtr), ("train-labels-idx1-ubyte", ytr),
                      ("t10k-images-idx3-ubyte", xte), ("t10k-labels-idx1-ubyte", yte)):
        write_idx(root / (stem + suffix), arr, gz)
    return xtr, ytr, xte, yte


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path: Path, gz: bool) -> None:
    xtr, ytr, xte, yte = make_mnist(tmp_path, gz)
    d = load_dataset(f"images:mnist#root={tmp_path}")
    assert d.meta["shape"] == [1, 28, 28] and d.meta["n_train"] == len(ytr)
    pixels = d.X.to_numpy().reshape(-1, 28, 28)
    np.testing.assert_array_equal(pixels[: len(ytr)], xtr)
    np.testing.assert_array_equal(pixels[len(ytr) :], xte)
    np.testing.assert_array_equal(d.y, np.r_[ytr, yte])
    assert load_dataset(f"images:fashion-mnist#root={tmp_path}").classes[0] == "T-shirt/top"


def test_idx_rejects_bad_magic_and_truncation(tmp_path: Path) -> None:
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01" + struct.pack(">i", 3) + b"abc")
    with pytest.raises(DataError, match="magic"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(b"\x00\x00\x08\x01" + struct.pack(">i", 5) + b"ab")
    with pytest.raises(DataError, match="truncated"):
        read_idx(tmp_path / "short")


def test_missing_root_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOSSBENCH_DATA_ROOT", raising=False)
    with pytest.raises(DataError) as err:
        load_dataset("images:mnist")
    assert "root=" in (err.value.hint or "")
    with pytest.raises(DataError, match="Cannot find"):
        load_dataset(f"images:mnist#root={tmp_path}")


def cifar_batch(n: int, key: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    obj = {b"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8), key.encode(): list(range(n)),
           b"batch_label": b"x"}
    return pickle.dumps(obj, protocol=2)


def make_cifar10(root: Path, as_tar: bool) -> dict[str, bytes]:
    files = {f"data_batch_{i}": cifar_batch(4, "labels", i) for i in range(1, 6)}
    files["test_batch"] = cifar_batch(3, "labels", 9)
    files["batches.meta"] = pickle.dumps({b"label_names": [f"c{i}".encode() for i in range(10)]}, protocol=2)
    if as_tar:
        with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    else:
        (root / "cifar-10-batches-py").mkdir()
        for name, data in files.items():
            (root / "cifar-10-batches-py" / name).write_bytes(data)
    return files


@pytest.mark.parametrize("as_tar", [False, True])
def test_cifar10_batches(tmp_path: Path, as_tar: bool) -> None:
    files = make_cifar10(tmp_path, as_tar)
    d = load_dataset(f"images:cifar10#root={tmp_path}")
    assert d.meta["shape"] == [3, 32, 32] and d.meta["n_train"] == 20 and len(d.y) == 23
    assert d.classes == [f"c{i}" for i in range(10)] and d.meta["hflip"] is True
    first = pickle.loads(files["data_batch_1"])[b"data"]
    np.testing.assert_array_equal(d.X.to_numpy()[:4], first)  # row-major (3, 32, 32) = the batch's 3072 layout


def test_cifar100_fine_labels(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    (folder / "train").write_bytes(cifar_batch(5, "fine_labels", 1))
    (folder / "test").write_bytes(cifar_batch(2, "fine_labels", 2))
    (folder / "meta").write_bytes(pickle.dumps({b"fine_label_names": [b"apple", b"bee", b"cat", b"dog", b"eel"]}))
    d = load_dataset(f"images:cifar100#root={tmp_path}")
    assert d.meta["n_train"] == 5 and d.classes[:2] == ["apple", "bee"]


class Boom:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (print, ("this must never run",))


def test_cifar_reader_refuses_arbitrary_globals() -> None:
    with pytest.raises(DataError, match="not a CIFAR python batch"):
        read_cifar_batch(pickle.dumps({b"data": Boom()}), "evil")


def test_offline_sets_load() -> None:
    d = load_dataset("images:digits")
    assert d.meta["shape"] == [1, 8, 8] and d.n_classes == 10 and len(d.y) == 1797
    assert load_dataset("images:digits#positive=3").classes == ["not 3", "3"]
    with pytest.raises(DataError, match="imbalance"):
        load_dataset("images:digits#imbalance=0.5")


@pytest.mark.slow
def test_mnist1d_and_lfw() -> None:
    pytest.importorskip("mnist1d")
    d = load_dataset("images:mnist1d")
    assert d.meta["shape"] == [40] and d.meta["n_train"] == 4000 and len(d.y) == 5000
    pytest.importorskip("skimage")
    faces = load_dataset("images:lfw_subset")
    assert faces.meta["shape"] == [1, 25, 25] and faces.classes == ["non-face", "face"] and faces.y.sum() == 100


def test_download_checks_the_published_md5(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    from lossbench.sources import images

    payload = b"official bytes"
    good = hashlib.md5(payload, usedforsecurity=False).hexdigest()
    monkeypatch.setitem(images.DOWNLOADS, "toy", ("https://example.invalid/", {"toy.bin": good}))

    def fake_fetch(url: str, target: Path) -> None:  # stands in for the network
        Path(target).write_bytes(served["bytes"])

    monkeypatch.setattr(images.urllib.request, "urlretrieve", fake_fetch)
    served = {"bytes": b"tampered"}
    with pytest.raises(DataError, match="does not match"):
        images.download("toy", tmp_path)
    assert not any(tmp_path.iterdir())  # nothing half-downloaded is left behind
    served["bytes"] = payload
    images.download("toy", tmp_path)
    assert (tmp_path / "toy.bin").read_bytes() == payload
