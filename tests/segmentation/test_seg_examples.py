"""Example predictions: a segmentation run stores a few per ok trial; compare --plots and the HTML report draw them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from lossbench.errors import SuiteError
from lossbench.runner import expand, plan, run
from lossbench.sources import load_dataset
from lossbench.store import ResultStore, read_examples
from lossbench.suite import parse_suite
from lossbench.tasks import TASK_TYPES
from tests.browser import WIDTHS, render, require_browser
from tests.conftest import TINY

from .helpers import tiny_suite as seg_suite

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DATASET = "seg:vessels#size=32&n=16"


def _suite(**overrides: object) -> dict:
    # pulaski needs a prob-unet: on this U-Net it fails, which gives the run one failed trial per seed
    base = {"losses": ["dice", "bce", "pulaski"], "seeds": 2, "metrics": ["iou"],
            "model": {"family": "unet", "channels": [2, 4]}}
    return seg_suite(**{**base, **overrides})


@pytest.fixture(scope="module")
def seg_results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("seg-examples") / "res"
    with pytest.MonkeyPatch.context() as mp:  # the autouse cache isolation is per test; this run is per module
        mp.setenv("LOSSBENCH_CACHE_DIR", str(root.parent / "cache"))
        store = ResultStore(root)
        run(store, plan(store, parse_suite(_suite(), "tiny.toml")))
    yield root


def test_ok_trials_store_the_same_first_test_images_for_every_loss(seg_results: Path) -> None:
    store = ResultStore(seg_results)
    trials = store.read_trials()
    ok, failed = trials[trials["status"] == "ok"], trials[trials["status"] != "ok"]
    assert sorted(ok["loss"]) == ["bce", "bce", "dice", "dice"] and set(failed["loss"]) == {"pulaski"}
    stored = {p.stem for p in store.examples_dir.glob("*.npz")}
    assert stored == set(ok["trial_id"])  # a failed trial has none
    data = load_dataset(DATASET)
    for _, group in ok.groupby("seed"):
        arrays = [read_examples(store.examples_dir / f"{t}.npz") for t in group["trial_id"]]
        n_test = int(group["n_test"].iloc[0])
        for a in arrays:
            assert a["image"].dtype == np.float16 and a["proba"].dtype == np.float16 and a["mask"].dtype == np.uint8
            assert a["image"].shape == (n_test, 1, 32, 32) and a["proba"].shape == a["mask"].shape == (n_test, 32, 32)
            assert a["proba"].min() >= 0 and a["proba"].max() <= 1
            # the stored pixels are the dataset's images and masks at the recorded indices
            np.testing.assert_allclose(a["image"], data.X[a["index"]], atol=1e-2)
            np.testing.assert_array_equal(a["mask"], data.y[a["index"]])
        # pairing: every loss of one (dataset, seed) shows the same test images
        assert all(np.array_equal(a["index"], arrays[0]["index"]) for a in arrays)
        assert all(np.array_equal(a["mask"], arrays[0]["mask"]) for a in arrays)
    assert not list(seg_results.rglob("*.tmp"))


def test_examples_option_sets_the_count_and_is_checked() -> None:
    trials, _ = expand(parse_suite(_suite(losses=["dice"], seeds=1, options={"examples": 1}), "tiny.toml"))
    spec = trials[0]
    task = TASK_TYPES.get("segmentation")
    prepared = task.prepare(load_dataset(spec.dataset), spec)
    model = task.build_model(prepared, spec)
    kept = task.examples(model, prepared, spec)
    assert kept is not None and len(kept["index"]) == 1
    none = parse_suite(_suite(options={"examples": 0}), "tiny.toml")
    assert task.examples(model, prepared, expand(none)[0][0]) is None
    for bad in (-1, 2.5, "4", 99):
        with pytest.raises(SuiteError, match="examples"):
            parse_suite(_suite(options={"examples": bad}), "tiny.toml")
    with pytest.raises(SuiteError, match="unknown option"):
        parse_suite(_suite(options={"exemples": 2}), "tiny.toml")


def test_compare_plots_write_one_example_grid_per_dataset(seg_results: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import typer
    from typer.testing import CliRunner

    from lossbench.cli.compare import compare_command
    from lossbench.report import segmentation_plots

    titles: list[list[str]] = []
    real_save = segmentation_plots.save

    def spy(fig: object, stem: Path, formats: tuple[str, ...] = segmentation_plots.FORMATS) -> list[Path]:
        titles.append([ax.get_title() for ax in fig.axes if ax.get_title()])  # type: ignore[attr-defined]
        return real_save(fig, stem, formats)

    monkeypatch.setattr(segmentation_plots, "save", spy)
    app = typer.Typer()
    app.command("compare")(compare_command)
    app.command("noop")(lambda: None)
    # impute-worst keeps pulaski (failed everywhere) among the compared losses: it must get no column
    r = CliRunner().invoke(app, ["compare", str(seg_results), "--baseline", "dice", "--on-missing", "impute-worst",
                                 "--format", "csv",
                                 "--out", str(tmp_path / "c.csv"), "--plots", str(tmp_path / "plots"),
                                 "--resamples", "200"])
    assert r.exit_code == 0, r.output
    grids = sorted((tmp_path / "plots").glob("examples-*"))
    assert [p.name for p in grids] == ["examples-seg-vessels-n-16-size-32.png", "examples-seg-vessels-n-16-size-32.svg"]
    assert grids[0].read_bytes().startswith(PNG_MAGIC) and grids[1].read_text().lstrip().startswith("<?xml")
    # columns: image, mask, then every compared loss (baseline first), no failed loss
    assert titles == [["image", "mask", "dice", "bce"]]


def test_pick_seed_prefers_the_lowest_seed_every_loss_has() -> None:
    from lossbench.report.segmentation_plots import pick_seed

    assert pick_seed({0: {"a", "b"}, 1: {"a", "b"}}, ["a", "b"]) == 0
    assert pick_seed({0: {"a"}, 1: {"a", "b"}, 2: {"a", "b"}}, ["a", "b"]) == 1
    assert pick_seed({0: {"a"}, 1: {"b", "c"}, 2: {"a", "c"}}, ["a", "b", "c"]) == 1


def test_html_report_embeds_the_example_grid(seg_results: Path, tmp_path: Path) -> None:
    from lossbench.cli.report_html import write_html_report

    page = write_html_report(seg_results, tmp_path / "r.html", baseline="dice", on_missing="impute-worst").read_text()
    assert "<h2>Example predictions</h2>" in page
    figure = re.search(r'<figure id="examples-seg-vessels-n-16-size-32"><img [^>]*src="data:image/png;base64,([^"]+)"',
                       page)
    assert figure is not None and len(figure.group(1)) > 1000
    for ref in re.findall(r'(?:src|href)="([^"]*)"', page):  # still self-contained
        assert ref.startswith(("data:", "#")), ref


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.slow
def test_html_report_with_examples_renders_in_headless_chromium(seg_results: Path, tmp_path: Path, width: int) -> None:
    from lossbench.cli.report_html import write_html_report

    require_browser()
    page = write_html_report(seg_results, tmp_path / "r.html", baseline="dice", on_missing="impute-worst")
    seen = render(page, width)
    assert seen.errors == []
    assert seen.images == seen.images_loaded == page.read_text().count("data:image/png;base64,") == 6  # 5 + 1 grid
    assert "Example predictions" in seen.headings and seen.tables >= 3
    assert seen.viewport == width and not seen.overflows and seen.image_scale >= 0.5


def test_classification_run_stores_no_examples(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "res")
    rows = run(store, plan(store, parse_suite(dict(TINY, losses=["ce"], seeds=1), "tiny.toml")))
    assert [r["status"] for r in rows] == ["ok"]
    assert not store.examples_dir.exists()
