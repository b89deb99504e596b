"""The HTML report is self-contained and renders in a headless browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lossbench.cli.report_html import write_html_report
from tests.resultgen import noisy, write_results

CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
)
PROBE = """<script>window.addEventListener("load", () => {
  const ok = [...document.images].filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.setAttribute("data-images-ok", ok);
  document.body.setAttribute("data-rows", document.querySelectorAll("table tr").length);
});</script></body>"""


def chromium_dom(page: Path, tmp_path: Path) -> tuple[int, int, str]:
    """Load ``page`` in headless Chromium: (decoded images, table rows, the rendered DOM)."""
    assert CHROMIUM is not None
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", PROBE))
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--virtual-time-budget=3000",
        "--dump-dom",
        probe.as_uri(),
    ]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    images = int(re.search(r'data-images-ok="(\d+)"', dom).group(1))
    rows = int(re.search(r'data-rows="(\d+)"', dom).group(1))
    return images, rows, dom


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
    assert page.count("data:image/png;base64,") == 4
    assert "<table" in page and "focal" in page
    assert "Example predictions" not in page  # classification results store no examples


def test_inline_svg_variant(report, tmp_path):
    out = write_html_report(report.parent / "res", tmp_path / "svg.html", inline_svg=True)
    page = out.read_text()
    assert page.count("<svg") >= 4 and "data:image/png" not in page


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary found (apt-get install -y chromium)")
def test_renders_in_headless_chromium(report, tmp_path):
    images, rows, dom = chromium_dom(report, tmp_path)
    assert images == 4  # every embedded PNG decoded
    assert rows > 20  # summary, per-dataset and pairwise tables rendered
    assert "<table" in dom and "Per dataset" in dom


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
