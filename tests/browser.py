"""Load a page in headless Chromium (driven by Playwright) and report what a reader would see.

Playwright drives the system's Chromium (``apt-get install chromium``); it downloads no browser. Tests
skip with the reason when either is missing.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
#: the widths a report must read well at: a laptop and a phone
WIDTHS = (1280, 390)

_STATE = """() => {
  const images = [...document.images];
  return {
    images: images.length,
    images_loaded: images.filter(i => i.complete && i.naturalWidth > 0).length,
    tables: document.querySelectorAll("table").length,
    rows: document.querySelectorAll("table tr").length,
    headings: [...document.querySelectorAll("h2")].map(h => h.textContent),
    viewport: window.innerWidth,
    page_width: document.documentElement.scrollWidth,
    font_px: parseFloat(getComputedStyle(document.querySelector("table") || document.body).fontSize),
    image_scale: Math.min(1, ...images.map(i => i.getBoundingClientRect().width / (i.naturalWidth || 1))),
  };
}"""


@dataclass
class Rendered:
    """What the browser saw: counts from the DOM, console errors, and whether the body overflows."""

    images: int
    images_loaded: int
    tables: int
    rows: int
    headings: list[str]
    viewport: int
    page_width: int
    font_px: float
    image_scale: float  # the smallest ratio of an image's shown width to its own: text in a plot shrinks with it
    errors: list[str] = field(default_factory=list)

    @property
    def overflows(self) -> bool:
        return self.page_width > self.viewport


def require_browser() -> None:
    """Skip the calling test, saying what to install, when Chromium or Playwright is missing."""
    if CHROMIUM is None:
        pytest.skip("no chromium binary found (apt-get install -y chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")


def render(page: Path, width: int, screenshot: Path | None = None, height: int = 900) -> Rendered:
    """Open ``page`` in a ``width``-pixel-wide viewport; optionally save a full-page screenshot."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM is not None
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            tab = browser.new_page(viewport={"width": width, "height": height})
            tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            tab.on("pageerror", lambda e: errors.append(str(e)))
            tab.goto(page.resolve().as_uri(), wait_until="load")
            state = tab.evaluate(_STATE)
            if screenshot is not None:
                tab.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return Rendered(**state, errors=errors)


if __name__ == "__main__":  # python -m tests.browser report.html shot.png [width]: the screenshots in docs/img
    import sys

    shot = render(Path(sys.argv[1]), int(sys.argv[3]) if len(sys.argv) > 3 else WIDTHS[0], Path(sys.argv[2]))
    print(shot)
