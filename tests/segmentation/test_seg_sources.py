"""Procedural and folder image sources: determinism, shapes, raters, domain shift, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from lossbench.errors import DataError
from lossbench.sources import load_dataset
from lossbench.sources.segmentation import ImageDataset


@pytest.mark.parametrize("kind", ["vessels", "cracks", "blobs"])
def test_generator_is_deterministic_per_seed(kind: str) -> None:
    a = load_dataset(f"seg:{kind}#n=8&seed=3")
    b = load_dataset(f"seg:{kind}#n=8&seed=3")
    c = load_dataset(f"seg:{kind}#n=8&seed=4")
    assert isinstance(a, ImageDataset)
    assert a.X.shape == (8, 1, 64, 64) and a.y.shape == (8, 64, 64)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y)
    assert a.content_hash == b.content_hash != c.content_hash
    assert set(np.unique(a.y)) <= {0, 1} and a.y.any()


def test_image_i_does_not_depend_on_n() -> None:
    # growing a dataset keeps its first images: each image is seeded by its own index
    small, large = load_dataset("seg:vessels#n=6"), load_dataset("seg:vessels#n=9")
    assert np.array_equal(small.y, large.y[:6])


def test_thin_structures_are_thin_and_connected() -> None:
    cracks = load_dataset("seg:cracks#n=12&size=128")
    assert cracks.X.shape[-1] == 128
    assert cracks.y.mean() < 0.05
    # 4-connected, as the topology metrics count foreground: a diagonal step would split a 1-px line
    comps = [ndimage.label(m)[1] for m in cracks.y]
    assert max(comps) <= 2  # one crack per image (it may leave and re-enter the border)
    vessels = load_dataset("seg:vessels#n=20")
    assert 0.02 < vessels.y.mean() < 0.2
    assert max(ndimage.label(m)[1] for m in vessels.y) <= 4  # two trees, each may leave and re-enter
    # structures are darker than their surroundings
    assert all(x[0][m > 0].mean() < x[0][m == 0].mean() for x, m in zip(vessels.X, vessels.y, strict=True))


def test_raters_and_shift() -> None:
    d = load_dataset("seg:vessels#n=10&raters=3&shift=1")
    assert d.raters is not None and d.raters.shape == (10, 3, 64, 64)
    assert not all(np.array_equal(r, m) for rs, m in zip(d.raters, d.y, strict=True) for r in rs)
    assert d.target_X is not None and d.target_y is not None and d.target_X.shape == d.X.shape
    assert d.target_y.mean() > d.y.mean()  # thicker structures in the target domain
    assert d.content_hash != load_dataset("seg:vessels#n=10&raters=3").content_hash


@pytest.mark.parametrize("uri", ["seg:spirals", "seg:vessels#colour=1", "seg:vessels#raters=1", "seg:vessels#size=8"])
def test_bad_uris_name_the_fix(uri: str) -> None:
    with pytest.raises(DataError) as err:
        load_dataset(uri)
    assert err.value.hint or "Use" in str(err.value)


def test_folder_source(tmp_path: Path) -> None:
    from PIL import Image

    (tmp_path / "image").mkdir()
    (tmp_path / "label").mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray((rng.random((40, 40)) * 255).astype(np.uint8)).save(tmp_path / "image" / f"{i}.png")
        lab = np.zeros((40, 40), np.uint8)
        lab[10:12, :] = 255
        Image.fromarray(lab).save(tmp_path / "label" / f"{i}.png")
    d = load_dataset(f"folder:{tmp_path}#patch=32&n=6")
    assert d.X.shape == (6, 1, 32, 32) and d.y.dtype == np.uint8
    assert d.X.min() >= 0 and d.X.max() <= 1
    with pytest.raises(DataError):
        load_dataset(f"folder:{tmp_path / 'missing'}")


def test_isbi_membrane_patches(shared_dir: Path) -> None:
    root = shared_dir / "data" / "isbi2012_membrane" / "train"
    if not root.is_dir():
        pytest.skip("ISBI-2012 membrane data not present")
    d = load_dataset(f"folder:{root}#patch=64&n=8&fg=0")
    assert d.X.shape == (8, 1, 64, 64)
    assert 0.05 < d.y.mean() < 0.5  # membranes are about a fifth of the pixels
