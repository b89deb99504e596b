"""Render compare and gate results: Rich tables for the terminal, JSON / Markdown / CSV for files and CI."""

from __future__ import annotations

import io
import json
import math
from typing import Any

import pandas as pd
from rich.markup import escape
from rich.table import Table

from lossbench import stats
from lossbench.compare import CompareResult
from lossbench.gate import GateResult

FORMATS = ("rich", "json", "markdown", "csv")
_VERDICT_STYLE = {
    "PASS": "green",
    "REGRESSION": "bold red",
    "INCONCLUSIVE": "yellow",
    "CHANGED": "bold red",
    "FAILED": "bold red",
    "MISSING": "yellow",
    "NO BASELINE": "yellow",
}


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        return f"{value:.{digits}f}"
    return str(value)


def _ci(lo: float, hi: float, digits: int = 4) -> str:
    if lo is None or hi is None or (isinstance(lo, float) and math.isnan(lo)):
        return "–"
    return f"[{fmt(lo, digits)}, {fmt(hi, digits)}]"


def _finite(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and not math.isfinite(value))


def estimate(mean: float, lo: float, hi: float, n: int, digits: int = 4) -> str:
    """"0.8123 [0.8011, 0.8235]"; without an interval, why: no usable trial, or too few seeds."""
    if n == 0:
        return "no usable trial"
    if not _finite(mean):
        return "–"
    if n < stats.MIN_CI_N or not _finite(lo):
        return f"{fmt(mean, digits)} (n={n}, no CI)"
    return f"{fmt(mean, digits)} {_ci(lo, hi, digits)}"


def _interval(lo: float, hi: float, n: int, digits: int = 4) -> str:
    if n == 0:
        return "–"
    if n < stats.MIN_CI_N or not _finite(lo):
        return f"none (n={n} < {stats.MIN_CI_N})"
    return _ci(lo, hi, digits)


def _pvalue(p: float) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _missing_line(result: CompareResult) -> str:
    policy = {
        "drop": f"{result.n_dropped} trials dropped",
        "impute-worst": f"{result.n_imputed} cells imputed (worst)",
        "error": "no missing cells",
    }[result.on_missing]
    return (
        f"--on-missing {result.on_missing}: {policy}; "
        f"{len(result.missing)} cells missing or failed before the policy"
    )


# -- compare ------------------------------------------------------------------------------------------


def compare_summary_rows(result: CompareResult) -> pd.DataFrame:
    """The per-loss summary as display strings (shared by the Rich, Markdown and HTML renderers)."""
    rows = []
    for r in result.summary.to_dict(orient="records"):
        wtl = (
            "–"
            if r["loss"] == result.baseline or pd.isna(r.get("wins"))
            else f"{int(r['wins'])}/{int(r['ties'])}/{int(r['losses'])}"
        )
        row = {
            "loss": r["loss"] + (" (baseline)" if r["loss"] == result.baseline else ""),
            "avg rank": fmt(r["avg_rank"], 2),
            f"mean {result.metric.name}": fmt(r["mean"]),
            "W/T/L vs baseline": wtl,
            "Wilcoxon p": _pvalue(r.get("wilcoxon_p")),
            "datasets": str(r["n_datasets"]),
            "trials": str(r["n_trials"]),
            "not ok": str(r["n_not_ok"]),
            "imputed": str(r["n_imputed"]),
            "dropped": str(r["n_dropped"]),
        }
        if "p_bayes_better" in r:
            row["P(better/equiv/worse)"] = "/".join(
                fmt(r.get(k), 2) for k in ("p_bayes_better", "p_bayes_equiv", "p_bayes_worse")
            )
        rows.append(row)
    return pd.DataFrame(rows)


def ci_label(result: CompareResult) -> str:
    """"95% CI" at the default ``--confidence``; what was computed otherwise."""
    return f"{100 * result.confidence:g}% CI"


def compare_dataset_rows(result: CompareResult) -> pd.DataFrame:
    rows = []
    for r in result.per_dataset.to_dict(orient="records"):
        base = r["loss"] == result.baseline
        n = int(r["n"])
        paired = not base and n > 0
        rows.append(
            {
                "dataset": r["dataset"],
                "loss": r["loss"],
                "n": str(n),
                "mean": fmt(r["mean"]) if n else "no usable trial",
                ci_label(result): _interval(r["ci_low"], r["ci_high"], n),
                "Δ vs baseline": fmt(r["diff"]) if paired else "–",
                "Δ CI": _interval(r["diff_low"], r["diff_high"], n) if paired else "–",
                "P(better)": f"{fmt(r['p_better'], 2)} {_ci(r['p_better_low'], r['p_better_high'], 2)}"
                if paired
                else "–",
                "Cliff's δ": fmt(r["cliffs_delta"], 2) if paired else "–",
                "not ok": str(r["n_not_ok"]),
                "imputed": str(r["n_imputed"]),
                "dropped": str(r["n_dropped"]),
            }
        )
    return pd.DataFrame(rows)


def summary_matrix(result: CompareResult) -> pd.DataFrame:
    """Datasets × losses, each cell "mean [CI]" (the end-of-run and ``report`` table)."""
    frame = result.per_dataset
    cols: dict[str, list[str]] = {"dataset": []}
    for loss in result.losses:
        cols[loss] = []
    for dataset, group in frame.groupby("dataset", sort=True):
        by_loss = group.set_index("loss")
        cols["dataset"].append(str(dataset))
        for loss in result.losses:
            if loss not in by_loss.index:
                cols[loss].append("–")
                continue
            c = by_loss.loc[loss]
            text = estimate(c["mean"], c["ci_low"], c["ci_high"], int(c["n"]))
            if int(c["n_not_ok"]):
                text += f" ({int(c['n_not_ok'])} not ok)"
            cols[loss].append(text)
    return pd.DataFrame(cols)


def _rich(
    frame: pd.DataFrame, title: str, caption: str | None = None, right: set[str] | None = None
) -> Table:
    table = Table(title=title, caption=caption, show_lines=False, header_style="bold")
    for col in frame.columns:
        table.add_column(
            str(col),
            justify="left" if col in ("loss", "dataset", "verdict") else "right",
            no_wrap=col in ("loss", "dataset"),
        )
    for row in frame.itertuples(index=False):
        table.add_row(*[escape(str(v)) for v in row])  # dataset names and loss specs are text, not markup
    return table


P_BETTER_CAPTION = (
    "P(better) = probability that the loss beats the baseline on a new seed: Beta posterior mean with its "
    "credible interval (uniform prior; ties count ½), n = paired seeds"
)


def omnibus_text(f: stats.FriedmanResult, eq: str = "=") -> str:
    """Friedman's χ² (with its exact p on small designs) and Iman–Davenport's F, ``eq`` between name and value."""
    text = f"Friedman χ²{eq}{fmt(f.chi2, 2)} p{eq}{_pvalue(f.p_chi2)}"
    if f.p_exact is not None:
        text += f" (exact p{eq}{_pvalue(f.p_exact)})"
    if math.isinf(f.iman_davenport_f):  # its denominator vanishes: no F distribution to read a p from
        return text + "; Iman–Davenport F undefined: every dataset ranks the losses alike"
    return text + f"; Iman–Davenport F{eq}{fmt(f.iman_davenport_f, 2)} p{eq}{_pvalue(f.p_iman_davenport)}"


def omnibus_line(result: CompareResult) -> str:
    f = result.friedman
    if f is None:
        return "Friedman: needs ≥ 3 losses and ≥ 2 datasets"
    return f"{omnibus_text(f)} (N={f.n_datasets}, k={f.n_losses})"


def compare_tables(result: CompareResult) -> list[Table]:
    """Rich tables: per-loss summary, then per dataset, then the pairwise tests."""
    direction = "higher" if result.metric.higher_is_better else "lower"
    omnibus = omnibus_line(result)
    tables = [
        _rich(
            compare_summary_rows(result),
            f"{result.metric.name} ({direction} is better) — baseline {result.baseline}",
            caption=f"{omnibus}\n{_missing_line(result)}",
        ),
        _rich(
            compare_dataset_rows(result),
            f"Per dataset: mean and {ci_label(result)} over seeds, paired Δ = loss − baseline",
            caption=P_BETTER_CAPTION,
        ),
    ]
    if len(result.pairwise):
        pw = result.pairwise.assign(
            p=result.pairwise["p"].map(_pvalue),
            p_holm=result.pairwise["p_holm"].map(_pvalue),
            median_diff=result.pairwise["median_diff"].map(fmt),
        )
        tables.append(_rich(pw, "Pairwise Wilcoxon signed-rank over dataset means (Holm-adjusted)"))
    return tables


def compare_to_json(result: CompareResult) -> str:
    return json.dumps(result.to_dict(), indent=2)


def compare_to_markdown(result: CompareResult) -> str:
    direction = "higher" if result.metric.higher_is_better else "lower"
    parts = [
        f"## {result.metric.name} ({direction} is better), baseline `{result.baseline}`",
        "",
        _markdown(compare_summary_rows(result)),
        "",
        f"_{_missing_line(result)}_",
        "",
        "### Per dataset",
        "",
        _markdown(compare_dataset_rows(result)),
    ]
    if result.friedman is not None:
        f = result.friedman
        parts += [
            "",
            f"{omnibus_text(f, ' = ')}.",
        ]
    parts += [f"> {n}" for n in result.notes]
    return "\n".join(parts) + "\n"


def compare_to_csv(result: CompareResult) -> str:
    """The per-dataset table (raw numbers) as CSV."""
    buf = io.StringIO()
    result.per_dataset.assign(metric=result.metric.name, baseline=result.baseline).to_csv(buf, index=False)
    return buf.getvalue()


def _markdown(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (pipes escaped); pandas' to_markdown would need tabulate."""

    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    cols = [cell(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


# -- gate ---------------------------------------------------------------------------------------------


def _seeds(r: dict[str, Any]) -> str:
    """Judged seeds, "7 of 10" when fewer than the baseline's usable seeds."""
    n, base = int(r["n"]), int(r.get("n_baseline", r["n"]) or 0)
    return str(n) if n >= base else f"{n} of {base}"


def gate_cell_rows(result: GateResult) -> pd.DataFrame:
    rows = []
    for r in result.cells.to_dict(orient="records"):
        judged = int(r["n"]) > 0
        row = {
            "verdict": r["verdict"],
            "dataset": r["dataset"],
            "loss": r["loss"],
            "seeds": _seeds(r),
            "baseline": fmt(r.get("baseline")),
            "candidate": fmt(r.get("candidate")),
            "Δ": fmt(r.get("diff")),
        }
        if result.mode == "stat":
            row.update(
                {
                    "one-sided CI (oriented)": _ci(r.get("lower"), r.get("upper")),
                    "δ": fmt(r.get("delta")),
                    "P(better)": f"{fmt(r['p_better'], 2)} {_ci(r['p_better_low'], r['p_better_high'], 2)}"
                    if judged
                    else "–",
                    "p regr (Holm)": _pvalue(r.get("p_regression_holm")),
                    "p non-inf (Holm)": _pvalue(r.get("p_noninferior_holm")),
                }
            )
        else:
            row.update(
                {
                    "max |Δ|": f"{r['max_abs_diff']:.3g}" if judged else "–",
                    "changed seeds": str(int(r["n_changed"])) if judged else "–",
                }
            )
        row["failed"] = str(int(r.get("n_failed") or 0))
        row["missing"] = str(int(r.get("n_missing") or 0))
        rows.append(row)
    return pd.DataFrame(rows)


def gate_suite_rows(result: GateResult) -> pd.DataFrame:
    if result.suite.empty:
        return pd.DataFrame()
    return pd.DataFrame(
        [
            {
                "verdict": r["verdict"],
                "loss": r["loss"],
                "datasets": str(r["n_datasets"]),
                "median Δ (oriented)": fmt(r.get("median_diff")),
                "median Δ/δ": fmt(r.get("median_norm_diff"), 2),
                "Wilcoxon p (Holm)": _pvalue(r.get("p_holm")),
            }
            for r in result.suite.to_dict(orient="records")
        ]
    )


def _headline(result: GateResult) -> str:
    counts = ", ".join(f"{n} {k}" for k, n in sorted(result.counts().items()))
    failed = (
        f"; {result.n_candidate_failed} of {result.n_candidate_trials} candidate trials failed "
        f"(--max-failed {result.max_failed})"
        if result.n_candidate_failed
        else ""
    )
    return (
        f"{result.outcome} (exit {result.exit_code}) — {result.mode} mode, metric {result.metric.name}, "
        f"margin from {result.margin_source}; cells: {counts or 'none'}{failed}"
    )


def gate_tables(result: GateResult) -> list[Table]:
    cells = _rich(
        gate_cell_rows(result), "Gate: candidate vs baseline per (dataset, loss)", caption=_headline(result)
    )
    for i, verdict in enumerate(result.cells["verdict"]):
        cells.rows[i].style = _VERDICT_STYLE.get(verdict)
    tables = [cells]
    suite = gate_suite_rows(result)
    if len(suite):
        tables.append(
            _rich(suite, "Suite level per loss: one-sided Wilcoxon on dataset mean Δ and median Δ/δ < −½")
        )
    return tables


def gate_to_json(result: GateResult) -> str:
    return json.dumps(result.to_dict(), indent=2)


def gate_to_markdown(result: GateResult) -> str:
    """The GitHub job-summary Markdown: headline, non-passing cells first, the suite checks, notes."""
    icon = {"PASS": "✅", "INCONCLUSIVE": "⚠️"}.get(result.outcome, "❌")
    rows = gate_cell_rows(result)
    order = {"REGRESSION": 0, "CHANGED": 0, "FAILED": 1, "MISSING": 1, "NO BASELINE": 1, "INCONCLUSIVE": 2, "PASS": 3}
    if len(rows):
        rows = rows.sort_values("verdict", key=lambda s: s.map(order), kind="stable")
    parts = [f"## {icon} lossbench gate: {result.outcome}", "", _headline(result), "", _markdown(rows)]
    suite = gate_suite_rows(result)
    if len(suite):
        parts += ["", "### Suite level", "", _markdown(suite)]
    parts += ["", *[f"> {n}" for n in result.notes]]
    return "\n".join(parts).rstrip() + "\n"


def gate_to_csv(result: GateResult) -> str:
    buf = io.StringIO()
    result.cells.to_csv(buf, index=False)
    return buf.getvalue()
