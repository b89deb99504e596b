"""Image/mask datasets for segmentation: ``seg:`` procedural thin structures and ``folder:`` image/mask pairs.

``seg:vessels#size=64&n=160&seed=0``   branching vessels, 1-3 px wide, on a smooth textured background
``seg:cracks#...``                     1-px cracks crossing a noisy surface
``seg:blobs#...``                      blob masks (``skimage.data.binary_blobs``-like, made with scipy here)

Options: ``size`` (side, 32-256, default 64), ``n`` (images, default 160), ``seed`` (default 0),
``raters`` (R >= 2 adds R seeded rater masks per image: dilated/eroded and with dropped thin
branches), ``shift=1`` (adds a target domain: lower contrast, more noise, thicker structures).

``folder:<path>#patch=64&n=64&seed=0&fg=255`` reads ``<path>/image/*.png`` and ``<path>/label/*.png``
(same file names) and cuts seeded random patches; ``fg`` is the label value of the foreground
(``fg=0`` for ISBI-2012 membranes, whose membrane pixels are black).

The data is fixed by the URI (its own ``seed``), never by the trial seed. Generator after the
procedural thin-structure recipe of the project's data notes (numpy + scipy; deterministic).
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from lossbench.errors import DataError
from lossbench.sources.base import SOURCES, Dataset
from lossbench.specs import DatasetURI

KINDS = ("vessels", "cracks", "blobs")
DEFAULTS: dict[str, Any] = {"size": 64, "n": 160, "seed": 0, "raters": 0, "shift": 0}
FOLDER_DEFAULTS: dict[str, Any] = {"patch": 64, "n": 64, "seed": 0, "fg": 255}


@dataclass
class ImageDataset(Dataset):
    """Images ``X`` (N, 1, H, W) float32 in about [0, 1] and binary masks ``y`` (N, H, W) uint8.

    A :class:`Dataset` so the runner, the trial cache and the store treat it like any other;
    ``raters`` (N, R, H, W) holds multi-rater masks and ``target_X``/``target_y`` a shifted
    target domain, when the URI asks for them.
    """

    X: Any = None  # type: ignore[assignment]  (an array here, a DataFrame for tables)
    y: Any = None
    classes: list[str] = field(default_factory=lambda: ["background", "foreground"])
    meta: dict[str, Any] = field(default_factory=dict)
    raters: np.ndarray | None = None
    target_X: np.ndarray | None = None
    target_y: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.X = np.ascontiguousarray(self.X, dtype=np.float32)
        self.y = np.ascontiguousarray(self.y, dtype=np.uint8)
        if self.X.ndim != 4 or self.X.shape[1] != 1 or self.y.shape != (self.X.shape[0], *self.X.shape[2:]):
            raise DataError(
                f"Dataset {self.uri!r}: images must be (N, 1, H, W) and masks (N, H, W); "
                f"got {self.X.shape} and {self.y.shape}."
            )
        if len(self.y) < 6:
            raise DataError(f"Dataset {self.uri!r} has {len(self.y)} images, too few to split.", "Use n >= 6.")
        if not self.y.any():
            raise DataError(f"Dataset {self.uri!r} has no foreground pixel.", "Check the masks and the fg= option.")

    @property
    def content_hash(self) -> str:
        """A hash of every array (images, masks, raters, target domain), stable across machines."""
        h = hashlib.sha256()
        for arr in (self.X, self.y, self.raters, self.target_X, self.target_y):
            if arr is None:
                h.update(b"-")
                continue
            h.update(str(arr.shape).encode() + str(arr.dtype).encode())
            h.update(np.ascontiguousarray(arr).tobytes())
        h.update("\x1f".join(self.classes).encode())
        return h.hexdigest()[:16]


# -- drawing helpers ---------------------------------------------------------------------------------------


def _disk(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    return (r[:, None] ** 2 + r[None, :] ** 2) <= radius * radius


def _line(mask: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> None:
    """Rasterise a segment as a 4-connected 1-px line.

    The topology metrics count foreground 4-connected (the V-construction of the Betti matching paper):
    a line with diagonal steps would be one structure to the eye and a chain of components to them. Each
    diagonal step gets the corner pixel that joins it edge to edge.
    """
    n = int(np.ceil(np.abs(p1 - p0).max())) + 1
    t = np.linspace(0.0, 1.0, n)[:, None]
    pts = np.rint(p0 + t * (p1 - p0)).astype(int)
    diagonal = (pts[1:, 0] != pts[:-1, 0]) & (pts[1:, 1] != pts[:-1, 1])
    corners = np.stack([pts[:-1][diagonal, 0], pts[1:][diagonal, 1]], axis=1)
    pts = np.concatenate([pts, corners])
    h, w = mask.shape
    ok = (pts[:, 0] >= 0) & (pts[:, 0] < h) & (pts[:, 1] >= 0) & (pts[:, 1] < w)
    mask[pts[ok, 0], pts[ok, 1]] = True


def _walk(rng: np.random.Generator, size: int, start: np.ndarray, heading: float, length: float, step: float,
          noise: float, clip: float | None = None) -> list[np.ndarray]:
    pts = [start]
    base = heading
    pos = start.astype(float)
    for _ in range(int(length / step)):
        heading += rng.normal(0.0, noise)
        if clip is not None:
            heading = float(np.clip(heading, base - clip, base + clip))
        pos = pos + step * np.array([np.sin(heading), np.cos(heading)])
        pts.append(pos)
        if not (-4 <= pos[0] <= size + 3 and -4 <= pos[1] <= size + 3):
            break
    return pts


def _branch(rng: np.random.Generator, size: int, layers: dict[int, np.ndarray], start: np.ndarray, heading: float,
            length: float, width: int, depth: int) -> None:
    pts = _walk(rng, size, start, heading, length, 2.0, 0.12)
    for a, b in itertools.pairwise(pts):
        _line(layers[width], a, b)
    for p in pts[1:-1]:
        if depth < 3 and rng.random() < 0.05:
            child = heading + rng.choice([-1, 1]) * rng.uniform(0.5, 1.1)
            _branch(rng, size, layers, p, child, length / 2, max(width - 1, 1), depth + 1)


def _vessel_mask(rng: np.random.Generator, size: int, thicker: int = 0) -> np.ndarray:
    layers = {w: np.zeros((size, size), bool) for w in (1, 2, 3)}
    for _ in range(2):
        side = rng.integers(4)
        s = rng.uniform(0.15, 0.85) * (size - 1)
        start, heading = {0: (np.array([0.0, s]), np.pi / 2), 1: (np.array([size - 1.0, s]), -np.pi / 2),
                          2: (np.array([s, 0.0]), 0.0), 3: (np.array([s, size - 1.0]), np.pi)}[int(side)]
        heading += rng.normal(0.0, 0.3)
        width = int(rng.integers(1, 4))
        _branch(rng, size, layers, start, heading, rng.uniform(0.8, 1.3) * size, width, 0)
    # width w: a 1-px centre line thickened to w px (w = 2 adds the right/down neighbours)
    out = layers[1].copy()
    out |= ndimage.binary_dilation(layers[2], np.array([[0, 0, 0], [0, 1, 1], [0, 1, 0]], bool))
    out |= ndimage.binary_dilation(layers[3], np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool))
    if thicker:
        out = ndimage.binary_dilation(out, np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool), iterations=thicker)
    return out


def _crack_mask(rng: np.random.Generator, size: int, thicker: int = 0) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    start = np.array([rng.uniform(0.2, 0.8) * (size - 1), 0.0])
    pts = _walk(rng, size, start, rng.normal(0.0, 0.3), 2.0 * size, 3.0, 0.35, clip=1.2)
    for a, b in itertools.pairwise(pts):
        _line(mask, a, b)
    if thicker:
        mask = ndimage.binary_dilation(mask, iterations=thicker)
    return mask


def _blob_mask(rng: np.random.Generator, size: int, thicker: int = 0) -> np.ndarray:
    # binary_blobs recipe: threshold Gaussian-filtered sparse points at the volume quantile
    field_ = np.zeros((size, size))
    n_pts = int(rng.integers(3, 7))
    field_[rng.integers(0, size, n_pts), rng.integers(0, size, n_pts)] = 1.0
    field_ = ndimage.gaussian_filter(field_, sigma=size * 0.07)
    mask = field_ > np.quantile(field_, 1 - rng.uniform(0.08, 0.2))
    if thicker:
        mask = ndimage.binary_dilation(mask, iterations=thicker)
    return mask


MASKERS = {"vessels": _vessel_mask, "cracks": _crack_mask, "blobs": _blob_mask}


def _render(rng: np.random.Generator, mask: np.ndarray, kind: str, shifted: bool) -> np.ndarray:
    """A textured, noisy greyscale image in which the structure is darker than its surroundings."""
    size = mask.shape[0]
    bg = ndimage.gaussian_filter(rng.normal(size=mask.shape), sigma=size / 8)
    bg = (bg - bg.min()) / max(float(np.ptp(bg)), 1e-8)
    fine = ndimage.gaussian_filter(rng.normal(size=mask.shape), sigma=2)
    fine = fine / max(float(fine.std()), 1e-8)
    contrast = rng.uniform(0.15, 0.35) * (0.5 if shifted else 1.0)
    noise = rng.uniform(0.02, 0.06) * (2.0 if shifted else 1.0)
    texture = 0.04 if kind == "cracks" else 0.02
    img = 0.6 + 0.2 * bg + texture * fine - contrast * ndimage.gaussian_filter(mask.astype(float), 0.7)
    img = img + rng.normal(0.0, noise, size=mask.shape)
    if shifted:
        img = 1.0 - 0.6 * img  # inverted, compressed intensity: a different scanner
    return img.astype(np.float32)


def _raters(rng: np.random.Generator, mask: np.ndarray, r: int) -> np.ndarray:
    """R seeded annotations of one mask: one-pixel dilation or erosion (thin parts kept), dropped branch pieces."""
    out = np.empty((r, *mask.shape), np.uint8)
    cross = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)
    for i in range(r):
        m = mask.copy()
        op = rng.integers(3)
        if op == 1:
            m = ndimage.binary_dilation(m, cross)
        elif op == 2:
            eroded = ndimage.binary_erosion(m, cross)
            # keep 1-px parts an erosion would erase: only thick parts get thinner
            thin = m & ~ndimage.binary_dilation(eroded, cross)
            m = eroded | thin
        ys, xs = np.nonzero(m)
        for _ in range(int(rng.integers(0, 3))):  # a rater misses a short stretch of a thin branch
            if len(ys) == 0:
                break
            j = rng.integers(len(ys))
            d = _disk(3)
            y0, x0 = ys[j] - 3, xs[j] - 3
            sl = (slice(max(y0, 0), y0 + 7), slice(max(x0, 0), x0 + 7))
            sub = d[max(-y0, 0): max(-y0, 0) + m[sl].shape[0], max(-x0, 0): max(-x0, 0) + m[sl].shape[1]]
            m[sl] &= ~sub
        out[i] = m
    return out


def make_images(kind: str, n: int, size: int, seed: int, shifted: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images (n, 1, size, size) and masks (n, size, size); image i depends only on (kind, size, seed, i)."""
    X = np.empty((n, 1, size, size), np.float32)
    Y = np.empty((n, size, size), np.uint8)
    for i in range(n):
        rng = np.random.default_rng([seed, i, KINDS.index(kind), int(shifted)])
        mask = MASKERS[kind](rng, size, 1 if shifted and kind != "blobs" else 0)
        X[i, 0] = _render(rng, mask, kind, shifted)
        Y[i] = mask
    return X, Y


def _options(uri: DatasetURI, defaults: dict[str, Any]) -> dict[str, Any]:
    opts = {**defaults, **uri.option_dict}
    unknown = set(opts) - set(defaults)
    if unknown:
        raise DataError(f"Unknown option {sorted(unknown)[0]!r} in {str(uri)!r}.", f"Use {', '.join(defaults)}.")
    for k, v in opts.items():
        if not isinstance(v, int) or isinstance(v, bool):
            raise DataError(f"Option {k!r} of {str(uri)!r} must be an integer; got {v!r}.")
    return opts


def load_seg(uri: DatasetURI) -> ImageDataset:
    if uri.location not in KINDS:
        raise DataError(f"Unknown segmentation generator {uri.location!r}.", f"Use seg:{' or seg:'.join(KINDS)}.")
    opts = _options(uri, DEFAULTS)
    size, n, seed, r = opts["size"], opts["n"], opts["seed"], opts["raters"]
    if not 32 <= size <= 256:
        raise DataError(f"size={size} in {str(uri)!r} is out of range.", "Use 32 <= size <= 256 (64 or 128).")
    if r == 1 or r < 0 or r > 16:
        raise DataError(f"raters={r} in {str(uri)!r}: multi-rater data needs 2 to 16 raters.", "Use raters=3.")
    X, Y = make_images(uri.location, n, size, seed)
    raters = None
    if r:
        rng = np.random.default_rng([seed, 7, size])
        raters = np.stack([_raters(rng, m, r) for m in Y])
    tX = tY = None
    if opts["shift"]:
        tX, tY = make_images(uri.location, n, size, seed + 10_000, shifted=True)
    meta = {"source": "seg", "kind": uri.location, "size": size, "n_images": n, "foreground": float(Y.mean())}
    return ImageDataset(f"seg-{uri.location}", str(uri), X, Y, meta=meta, raters=raters, target_X=tX, target_y=tY)


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image  # lazy: only the folder source needs an image reader

    with Image.open(path) as im:
        return np.asarray(im.convert("L"))


def load_folder(uri: DatasetURI) -> ImageDataset:
    opts = _options(uri, FOLDER_DEFAULTS)
    root = Path(uri.location).expanduser()
    img_dir, lab_dir = root / "image", root / "label"
    if not img_dir.is_dir() or not lab_dir.is_dir():
        raise DataError(f"{str(uri)!r}: expected {img_dir} and {lab_dir}.",
                        "Put images in image/ and masks with the same file names in label/.")
    names = sorted(p.name for p in img_dir.iterdir() if p.suffix.lower() in (".png", ".tif", ".tiff", ".jpg"))
    pairs = [(img_dir / nm, lab_dir / nm) for nm in names if (lab_dir / nm).is_file()]
    if not pairs:
        raise DataError(f"{str(uri)!r}: no image with a mask of the same name.", "Check the file names.")
    patch, n = opts["patch"], opts["n"]
    rng = np.random.default_rng(opts["seed"])
    imgs = [(_read_png(a), _read_png(b)) for a, b in pairs]
    X = np.empty((n, 1, patch, patch), np.float32)
    Y = np.empty((n, patch, patch), np.uint8)
    for i in range(n):
        img, lab = imgs[i % len(imgs)]
        if min(img.shape) < patch:
            raise DataError(f"{str(uri)!r}: image smaller than patch={patch}.", "Use a smaller patch.")
        y0, x0 = rng.integers(0, img.shape[0] - patch + 1), rng.integers(0, img.shape[1] - patch + 1)
        X[i, 0] = img[y0: y0 + patch, x0: x0 + patch] / 255.0
        Y[i] = lab[y0: y0 + patch, x0: x0 + patch] == opts["fg"]
    meta = {"source": "folder", "path": str(root), "n_files": len(pairs), "foreground": float(Y.mean())}
    return ImageDataset(f"folder-{root.name}", str(uri), X, Y, meta=meta)


SOURCES.register("seg", load_seg, description="Procedural thin-structure segmentation images",
                 example="seg:vessels#size=64&n=160")
SOURCES.register("folder", load_folder, description="Image/mask PNG pairs in image/ and label/",
                 example="folder:data/membrane#patch=64&fg=0")
