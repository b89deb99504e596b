"""One self-contained HTML page for a comparison: tables plus plots embedded in the file.

No external assets (no CDN scripts, fonts or stylesheets): the page must open from a CI artifact or
an e-mail attachment. PNG plots are embedded as base64 data URIs; ``inline_svg=True`` inlines the SVG
files instead (sharper, larger).
"""

from __future__ import annotations

import base64
import html
import re
import tempfile
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from lossbench import stats
from lossbench.compare import CompareResult
from lossbench.errors import UserError
from lossbench.report import tables

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#222;max-width:1200px}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:right}
th{background:#f4f4f4}td:first-child,td:nth-child(2){text-align:left}
figure{margin:1rem 0}figcaption{font-size:.85rem;color:#555}
img,svg{max-width:100%;height:auto}.note{color:#555;font-size:.85rem}
.scroll{overflow-x:auto;max-width:100%}
/* a phone shows plots at their own size, scrolling sideways in the figure: shrunk to 390 px their text is ~4 px */
@media (max-width:600px){body{margin:.75rem}figure{overflow-x:auto}figure img{max-width:none}}
"""

_CAPTIONS = {
    "critical_difference": "Critical-difference diagram: average rank per loss (1 = best); "
    "red bars join losses that pairwise Wilcoxon signed-rank tests with Holm correction do not separate.",
    "per_dataset": "Each loss's mean with its confidence interval over seeds, per dataset; colour: the paired "
    "difference to the baseline (dashed line) is better, worse, or undecided (its interval holds 0).",
    "seeds": "Every seed per loss and dataset (box: quartiles).",
    "cost_quality": "Quality against mean wall time per trial; red points form the Pareto front.",
    "curves": "Validation metric per epoch for every loss, mean ± sd over seeds.",
}
EXAMPLES_CAPTION = (
    "Example test predictions stored by the run: image, ground-truth mask, then each loss's foreground "
    "probability thresholded at 0.5. Every column shows the same test images (same dataset and seed)."
)


def is_examples(name: str) -> bool:
    return name.startswith("examples-")


def _table(frame: pd.DataFrame, caption: str | None = None) -> str:
    body = frame.to_html(index=False, escape=True, border=0, na_rep="–")
    if caption is not None:
        body = body.replace("<table", f'<table title="{html.escape(caption)}"', 1)
    return f'<div class="scroll">{body}</div>'  # a wide table scrolls in its box; the page keeps the screen width


def _figure(name: str, paths: list[Path], inline_svg: bool) -> str:
    caption = html.escape(EXAMPLES_CAPTION if is_examples(name) else _CAPTIONS.get(name, name))
    svg = next((p for p in paths if p.suffix == ".svg"), None)
    png = next((p for p in paths if p.suffix == ".png"), None)
    if inline_svg and svg is not None:
        text = svg.read_text(encoding="utf-8")
        text = re.sub(r"^<\?xml[^>]*>\s*", "", text)
        text = re.sub(r"<!DOCTYPE[^>]*>\s*", "", text)
        content = text
    elif png is not None:
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        content = f'<img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'
    else:
        return ""
    return f'<figure id="{html.escape(name)}">{content}<figcaption>{caption}</figcaption></figure>'


def render_html(
    result: CompareResult,
    plots: dict[str, list[Path]] | None = None,
    title: str = "lossbench report",
    inline_svg: bool = False,
    notes: list[str] | None = None,
) -> str:
    """The page as a string."""
    direction = "higher" if result.metric.higher_is_better else "lower"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="note">Metric <b>{html.escape(result.metric.name)}</b> ({direction} is better); baseline '
        f"<b>{html.escape(result.baseline)}</b>; {len(result.losses)} losses on "
        f"{len(result.datasets)} datasets. "
        f"{html.escape(tables._missing_line(result))}. Generated "
        f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.</p>",
        "<h2>Summary</h2>",
        _table(tables.compare_summary_rows(result)),
    ]
    if len(result.sets) > 1:
        parts += ["<h2>Comparable sets</h2>", _table(result.sets)]
    f = result.friedman
    if f is not None:
        parts.append(f'<p class="note">{html.escape(tables.omnibus_text(f, " = "))}.</p>')
    for name, paths in (plots or {}).items():
        if not is_examples(name):
            parts.append(_figure(name, paths, inline_svg))
    example_figures = [_figure(name, paths, inline_svg) for name, paths in (plots or {}).items() if is_examples(name)]
    if example_figures:
        parts += ["<h2>Example predictions</h2>", *example_figures]
    parts += [
        "<h2>Per dataset</h2>",
        f'<p class="note">Mean and {tables.ci_label(result)} over seeds (none below {stats.MIN_CI_N} seeds; kept '
        "inside the metric's range); Δ = loss − baseline over paired seeds with its CI; "
        f"{html.escape(tables.P_BETTER_CAPTION)}.</p>",
        _table(tables.compare_dataset_rows(result)),
    ]
    if len(result.pairwise):
        pw = result.pairwise.assign(
            p=result.pairwise["p"].map(tables._pvalue),
            p_holm=result.pairwise["p_holm"].map(tables._pvalue),
            median_diff=result.pairwise["median_diff"].map(tables.fmt),
        )
        parts += ["<h2>Pairwise tests</h2>", _table(pw)]
    if len(result.missing):
        parts += ["<h2>Missing or failed cells</h2>", _table(result.missing.head(200))]
    for note in [*result.notes, *(notes or [])]:
        parts.append(f'<p class="note">{html.escape(note)}</p>')
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(
    result: CompareResult,
    trials: pd.DataFrame,
    curves: pd.DataFrame,
    out_path: str | Path,
    title: str = "lossbench report",
    inline_svg: bool = False,
    examples: Mapping[str, Path] | None = None,
) -> Path:
    """Draw the plots into a temporary folder and write the page; tables only if matplotlib is missing.

    ``examples`` (trial_id → stored examples file) adds the example-prediction grids.
    """
    from lossbench.report import plots as plotting
    from lossbench.store import atomic_write_bytes

    out = Path(out_path)
    notes = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            # the page embeds one format: drawing the other would be thrown away
            drawn = plotting.all_plots(
                result, trials, curves, Path(tmp), examples=examples, formats=("svg",) if inline_svg else ("png",)
            )
        except UserError as exc:  # matplotlib missing: the tables still make a useful page
            drawn = {}
            notes.append(f"Plots omitted: {exc}")
        page = render_html(result, drawn, title=title, inline_svg=inline_svg, notes=notes)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, page.encode("utf-8"))
    return out
