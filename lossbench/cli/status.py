"""`lossbench status`: what is done, failed and pending, and why a trial would rerun."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from lossbench.cli.console import console
from lossbench.cli.errors import handles_errors
from lossbench.errors import ResultsError
from lossbench.runner import plan
from lossbench.store import ResultStore
from lossbench.suite import load_suite

KEY_PARTS = ("suite_version", "data_hash", "loss_version", "config_hash", "protocol")


@handles_errors
def status_command(
    results: Annotated[Path, typer.Argument(help="A results directory written by `lossbench run`.")],
    suite: Annotated[str | None, typer.Option("--suite", "-s", help="Suite to check against. Default: the one "
                                              "of the directory's last run.")] = None,
) -> None:
    """Show which trials of a suite are done, failed or pending, and why a trial would rerun.

    Example:

      lossbench status results/quickstart
    """
    store = ResultStore(results)
    if not store.root.is_dir():
        raise ResultsError(f"{str(results)!r} is not a results directory.", "Pass the --out of a `lossbench run`.")
    manifest = store.read_manifest()
    runs = manifest.get("runs", [])
    last = runs[-1] if runs else {}
    suite_ref = suite or last.get("suite", {}).get("path") or last.get("suite", {}).get("name")
    if not suite_ref:
        raise ResultsError(f"{str(results)!r} has no recorded run.", "Pass --suite.")
    the_suite = load_suite(suite_ref)
    opts = last.get("options", {}) if suite is None else {}
    seeds = opts.get("seeds")
    the_plan = plan(store, the_suite, losses=opts.get("losses"), datasets=opts.get("datasets"),
                    seeds=range(seeds) if seeds else None)
    trials = store.read_trials()
    by_id = trials.set_index("trial_id") if len(trials) else trials
    by_cell = {(r.dataset, r.loss, int(r.seed)): r for r in trials.itertuples()} if len(trials) else {}
    counts = {"ok": 0, "skipped": 0, "failed": 0, "pending": 0}
    reasons = []
    for t in the_plan.trials:
        if len(trials) and t.trial_id in by_id.index:
            status = str(by_id.loc[t.trial_id, "status"])
            counts["ok" if status == "ok" else "skipped" if status == "skipped" else "failed"] += 1
            if status not in ("ok", "skipped"):
                reasons.append((t, status, "reruns with --rerun failed"))
            continue
        counts["pending"] += 1
        old = by_cell.get((t.dataset, t.loss, t.seed))
        if old is None:
            reasons.append((t, "pending", "never run"))
        else:
            changed = [k for k in KEY_PARTS if str(getattr(old, k)) != str(t.key[k])]
            reasons.append((t, "pending", "key changed: " + ", ".join(
                f"{k} {getattr(old, k)} → {t.key[k]}" for k in changed)))
    console.print(f"[bold]{the_suite.name}[/bold] v{the_suite.version} in {results}: {len(the_plan.trials)} trials — "
                  + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if reasons:
        table = Table(title="trials that the same `lossbench run` would run", title_justify="left")
        for c in ("trial_id", "dataset", "loss", "seed", "state", "why"):
            table.add_column(c, overflow="fold")
        for t, state, why in reasons[:50]:
            table.add_row(t.trial_id, t.dataset, t.loss, str(t.seed), state, why)
        console.print(table)
        if len(reasons) > 50:
            console.print(f"… and {len(reasons) - 50} more.")
