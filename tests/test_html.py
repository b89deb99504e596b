"""The HTML report is self-contained and renders in a headless browser."""

from __future__ import annotations

import re

import pytest

from lossbench.cli.report_html import write_html_report
from tests.browser import WIDTHS, render, require_browser
from tests.resultgen import noisy, write_results


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    pytest.importorskip("matplotlib")
    tmp = tmp_path_factory.mktemp("html")
    values = noisy((6, 3, 6), shift=[0.0, 0.02, -0.02])
    write_results(tmp / "res", values, losses=["ce", "focal", "poly"], curves=True)
    return write_html_report(tmp / "res", tmp / "report.html")


def test_self_contained(report):
    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>")
    # no external assets: every src/href is a data URI or an in-page anchor
    for ref in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert ref.startswith(("data:", "#")), ref
    assert "<link" not in page and "http://" not in page.replace("http://www.w3.org", "")
    assert page.count("data:image/png;base64,") == 5
    assert "<table" in page and "focal" in page
    assert "Example predictions" not in page  # classification results store no examples


@pytest.mark.slow
def test_inline_svg_variant(report, tmp_path):
    out = write_html_report(report.parent / "res", tmp_path / "svg.html", inline_svg=True)
    page = out.read_text()
    assert page.count("<svg") >= 5 and "data:image/png" not in page


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.slow
def test_renders_in_headless_chromium(report, tmp_path, width):
    require_browser()
    shot = tmp_path / "shot.png"
    seen = render(report, width, screenshot=shot)
    assert seen.errors == []
    assert seen.images == seen.images_loaded == 5  # every embedded PNG decoded
    assert seen.tables == 3 and seen.rows > 20  # summary, per-dataset and pairwise tables
    assert seen.headings == ["Summary", "Per dataset", "Pairwise tests"]
    # readable: the page fits the viewport (wide tables scroll in their own box) at a legible size
    assert seen.viewport == width and not seen.overflows
    assert seen.font_px >= 12 and seen.image_scale >= 0.5  # plots are not shrunk past legibility
    assert shot.read_bytes()[16:20] == width.to_bytes(4, "big")  # the PNG is as wide as the viewport


@pytest.mark.slow
def test_compare_cli_writes_html_and_plots(report, tmp_path):
    import typer
    from typer.testing import CliRunner

    from lossbench.cli.compare import compare_command

    app = typer.Typer()
    app.command("compare")(compare_command)
    app.command("noop")(lambda: None)
    args = [
        "compare",
        str(report.parent / "res"),
        "--format",
        "csv",
        "--out",
        str(tmp_path / "c.csv"),
        "--html",
        str(tmp_path / "r.html"),
        "--plots",
        str(tmp_path / "plots"),
        "--resamples",
        "200",
    ]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    assert (tmp_path / "plots" / "critical_difference.svg").is_file()
    assert not list((tmp_path / "plots").glob("examples-*"))  # no segmentation examples, no grid, no error
    assert (tmp_path / "c.csv").read_text().startswith("dataset,loss")
