"""``images:<name>#...``: image data as flattened pixels, with the image shape in ``meta["shape"]``.

Offline without any download:

* ``images:digits``: scikit-learn's 8×8 digits (1797 images, 10 classes).
* ``images:mnist1d``: the procedural MNIST-1D signals (Greydanus & Kobak, 2020; package ``mnist1d``), built with
  ``make_dataset(get_dataset_args())`` (never ``get_dataset``, which downloads); official 4000/1000 train/test split.
* ``images:lfw_subset``: scikit-image's 200 × 25×25 faces (first 100) and non-faces (last 100); class 1 = face.

From a data root holding the official files (``root=<dir>`` or the ``LOSSBENCH_DATA_ROOT`` variable):

* ``images:mnist`` and ``images:fashion-mnist``: the four IDX files (``train-images-idx3-ubyte[.gz]`` …).
* ``images:cifar10`` and ``images:cifar100``: the "python version" batches (``cifar-10-batches-py/`` or the
  ``cifar-10-python.tar.gz`` archive itself; ``cifar-100-python/``), read from the tar without extracting it.
  Those batches are pickles: they are only read from the root the user names, and through an unpickler that
  accepts nothing but the containers and numpy arrays the format uses, so a crafted file cannot run code.

``download=true`` fetches the official files into the root first (only when the network is reachable) and checks
their published MD5 sums. Options shared by all: ``imbalance=<IF>`` (long-tailed training split, CIFAR-LT profile;
applied by the task, test stays balanced) and ``positive=<class>`` (a one-vs-rest binary view).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from lossbench.errors import DataError
from lossbench.sources.base import SOURCES, Dataset
from lossbench.specs import DatasetURI

OPTIONS = {"imbalance", "positive", "root", "download", "seed"}

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
#: Official URLs and MD5 sums (the same the torchvision datasets check).
DOWNLOADS: dict[str, tuple[str, dict[str, str]]] = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/", {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }),
    "cifar10": ("https://www.cs.toronto.edu/~kriz/", {"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"}),
    "cifar100": ("https://www.cs.toronto.edu/~kriz/", {"cifar-100-python.tar.gz": "eb9058c3a382ffc7106e4002c42a8d85"}),
}
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]


# -- readers of the official formats -------------------------------------------------------------------------------
IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip allowed): magic 0x0000, a type byte, the rank, big-endian int32 dimensions, the data."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise DataError(f"{str(path)!r} is not an IDX file (bad magic number).", "Use the official MNIST files.")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}i", raw[4 : 4 + 4 * ndim])
    dtype = np.dtype(IDX_TYPES[raw[2]])
    data = np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{str(path)!r} is truncated: {data.size} values for shape {dims}.")
    return data.reshape(dims)


class _CifarUnpickler(pickle.Unpickler):
    """Resolves only the globals numpy arrays need; anything else in the pickle is refused."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name} in a CIFAR batch")
        return super().find_class(module, name)


def read_cifar_batch(raw: bytes, where: str) -> dict[str, Any]:
    """One CIFAR python batch: a dict with ``data`` (N×3072 uint8) and ``labels`` or ``fine_labels``."""
    try:
        obj = _CifarUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(f"{where} is not a CIFAR python batch ({exc}).", "Use the official 'python version'.") from None
    if not isinstance(obj, dict):
        raise DataError(f"{where} is not a CIFAR python batch (not a dict).")
    return {(k.decode() if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}


def _cifar_members(root: Path, folder: str, archive: str, names: list[str]) -> dict[str, bytes]:
    """The named batch files from ``root/folder`` or, failing that, from inside ``root/archive``."""
    if all((root / folder / n).is_file() for n in names):
        return {n: (root / folder / n).read_bytes() for n in names}
    if (root / archive).is_file():
        out = {}
        with tarfile.open(root / archive, "r:gz") as tar:
            for n in names:
                member = tar.extractfile(f"{folder}/{n}")  # read in memory: nothing is written to disk
                if member is None:
                    raise DataError(f"{archive} has no file {folder}/{n}.")
                out[n] = member.read()
        return out
    raise DataError(f"Cannot find {folder}/ or {archive} in {str(root)!r}.",
                    "Put the official CIFAR python files there, or add download=true.")


def load_cifar(root: Path, fine: bool) -> tuple[np.ndarray, np.ndarray, int, list[str]]:
    """(images N×3×32×32 uint8, labels, number of training rows, class names)."""
    if fine:
        folder, archive, names, key, meta_name, meta_key = ("cifar-100-python", "cifar-100-python.tar.gz",
                                                            ["train", "test", "meta"], "fine_labels", "meta",
                                                            "fine_label_names")
    else:
        folder, archive, key, meta_name, meta_key = ("cifar-10-batches-py", "cifar-10-python.tar.gz", "labels",
                                                     "batches.meta", "label_names")
        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
    files = _cifar_members(root, folder, archive, names)
    batches = [read_cifar_batch(files[n], f"{folder}/{n}") for n in names if n != meta_name]
    meta = read_cifar_batch(files[meta_name], f"{folder}/{meta_name}")
    X = np.concatenate([np.asarray(b["data"], dtype=np.uint8).reshape(-1, 3, 32, 32) for b in batches])
    y = np.concatenate([np.asarray(b[key], dtype=np.int64) for b in batches])
    n_train = sum(len(b[key]) for b in batches[:-1])
    classes = [c.decode() if isinstance(c, bytes) else str(c) for c in meta[meta_key]]
    return X, y, n_train, classes


def find_idx(root: Path, stem: str) -> Path:
    for folder in (root, root / "raw", root / "MNIST" / "raw", root / "FashionMNIST" / "raw"):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    raise DataError(f"Cannot find {stem}[.gz] in {str(root)!r}.", "Put the four official IDX files there, "
                    "or add download=true.")


def load_idx_set(root: Path) -> tuple[np.ndarray, np.ndarray, int]:
    xtr, ytr, xte, yte = (read_idx(find_idx(root, s)) for s in MNIST_FILES)
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise DataError(f"The IDX files in {str(root)!r} disagree on the number of images and labels.")
    return np.concatenate([xtr, xte])[:, None], np.concatenate([ytr, yte]).astype(np.int64), len(xtr)


def md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)  # the published sums are MD5: integrity, not security
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(name: str, root: Path) -> None:
    """Fetch the official files of ``name`` into ``root`` unless present; each is checked against its MD5."""
    base, files = DOWNLOADS[name]
    root.mkdir(parents=True, exist_ok=True)
    for fname, want in files.items():
        target = root / fname
        if target.is_file() and md5(target) == want:
            continue
        part = target.with_suffix(target.suffix + ".part")
        try:
            urllib.request.urlretrieve(base + fname, part)  # the fixed official URLs above
        except OSError as exc:
            raise DataError(f"Cannot download {base + fname}: {exc}.", "Check the network, or copy the file "
                            f"into {str(root)!r} by hand.") from None
        got = md5(part)
        if got != want:
            part.unlink(missing_ok=True)
            raise DataError(f"{fname}: MD5 {got} does not match the published {want}.", "Download it again.")
        part.replace(target)


# -- the datasets ---------------------------------------------------------------------------------------------------
def _digits(opts: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, Any]]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images[:, None].astype(np.float32), bunch.target, [str(c) for c in range(10)], {"hflip": False}


def _mnist1d(opts: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, Any]]:
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise DataError("images:mnist1d needs the mnist1d package.", "pip install mnist1d") from None
    args = get_dataset_args()
    if "seed" in opts:
        args.seed = int(opts["seed"])
    d = make_dataset(args)  # procedural: no download (get_dataset would fetch a pickle)
    X = np.concatenate([d["x"], d["x_test"]]).astype(np.float32)
    y = np.concatenate([d["y"], d["y_test"]]).astype(np.int64)
    return X, y, [str(c) for c in range(10)], {"n_train": len(d["y"]), "hflip": False}


def _lfw(opts: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, Any]]:
    try:
        from skimage.data import lfw_subset
    except ImportError:
        raise DataError("images:lfw_subset needs scikit-image.", "pip install scikit-image") from None
    images = lfw_subset().astype(np.float32)
    y = np.r_[np.ones(100), np.zeros(len(images) - 100)].astype(np.int64)  # the first 100 are faces
    return images[:, None], y, ["non-face", "face"], {"hflip": True}


def _root(opts: dict[str, Any], name: str) -> Path:
    text = opts.get("root") or os.environ.get("LOSSBENCH_DATA_ROOT")
    if not text:
        raise DataError(f"images:{name} reads the official files from a data root.",
                        f"Add root=<dir> to the URI (images:{name}#root=~/data) or set LOSSBENCH_DATA_ROOT.")
    root = Path(str(text)).expanduser()
    if opts.get("download") is True:
        download(name, root)
    if not root.is_dir():
        raise DataError(f"The data root {str(root)!r} does not exist.", "Check the path, or add download=true.")
    return root


def _mnist(opts: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, Any]]:
    X, y, n_train = load_idx_set(_root(opts, "mnist"))
    return X, y, [str(c) for c in range(10)], {"n_train": n_train, "hflip": False}


def _fashion(opts: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, Any]]:
    X, y, n_train = load_idx_set(_root(opts, "fashion-mnist"))
    return X, y, list(FASHION_CLASSES), {"n_train": n_train, "hflip": True}


def _cifar(fine: bool) -> Callable[[dict[str, Any]], tuple[np.ndarray, np.ndarray, list[str], dict[str, Any]]]:
    def load(opts: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, Any]]:
        X, y, n_train, classes = load_cifar(_root(opts, "cifar100" if fine else "cifar10"), fine)
        return X, y, classes, {"n_train": n_train, "hflip": True}

    return load


LOADERS: dict[str, Callable[[dict[str, Any]], tuple[np.ndarray, np.ndarray, list[str], dict[str, Any]]]] = {
    "digits": _digits,
    "mnist1d": _mnist1d,
    "lfw_subset": _lfw,
    "mnist": _mnist,
    "fashion-mnist": _fashion,
    "cifar10": _cifar(False),
    "cifar100": _cifar(True),
}


def images_dataset(name: str, uri: str, images: np.ndarray, y: np.ndarray, classes: list[str],
                   meta: dict[str, Any]) -> Dataset:
    """Flatten (N, *shape) images into a pixel table; the shape travels in ``meta`` (and so the hash covers it
    through the column names, which encode the shape)."""
    shape = list(images.shape[1:])
    flat = images.reshape(len(images), -1)
    tag = "x".join(map(str, shape))
    X = pd.DataFrame(flat, columns=[f"px{i}_{tag}" for i in range(flat.shape[1])])
    return Dataset(name, uri, X, y, classes, {"source": "images", "n_rows": len(y), "shape": shape, **meta})


def load_images(uri: DatasetURI) -> Dataset:
    opts = uri.option_dict
    unknown = set(opts) - OPTIONS
    if unknown:
        raise DataError(f"Unknown option {sorted(unknown)[0]!r} in {str(uri)!r}.",
                        f"images: URIs accept {', '.join(sorted(OPTIONS))}.")
    if uri.location not in LOADERS:
        raise DataError(f"No image dataset {uri.location!r}.", f"Choose one of: {', '.join(LOADERS)}.")
    images, y, classes, meta = LOADERS[uri.location](opts)
    y = np.asarray(y, dtype=np.int64)
    if "imbalance" in opts:
        imbalance = opts["imbalance"]
        if isinstance(imbalance, bool) or not isinstance(imbalance, (int, float)) or imbalance < 1:
            raise DataError(f"imbalance= in {str(uri)!r} must be a number >= 1 (n_head / n_tail).")
        meta["imbalance"] = float(imbalance)
    if "positive" in opts:
        pos = str(opts["positive"])
        if pos not in classes:
            raise DataError(f"{str(uri)!r} has no class {pos!r} for positive=.", f"Its classes: {', '.join(classes)}.")
        y = (y == classes.index(pos)).astype(np.int64)
        classes = [f"not {pos}", pos]
    name = uri.location + (f"-lt{format(meta['imbalance'], 'g')}" if "imbalance" in meta else "")
    return images_dataset(name, str(uri), images, y, classes, meta)


SOURCES.register("images", load_images, description="Image data: digits, mnist1d, lfw_subset offline; MNIST, "
                 "Fashion-MNIST, CIFAR from a data root", example="images:digits#imbalance=100")
