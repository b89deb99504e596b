"""`lossbench status`: what is done, failed and pending, and why a trial would rerun."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lossbench.cli.console import console
from lossbench.cli.errors import handles_errors

KEY_PARTS = ("suite_version", "data_hash", "loss_version", "config_hash", "protocol")


def recorded_grids(runs: list[dict[str, Any]], suite: str | None) -> list[tuple[Any, dict[str, Any]]]:
    """(suite, plan arguments) of every distinct run recorded in a manifest, or of ``suite`` with its defaults.

    A run's suite is rebuilt from what the manifest recorded, not from its file, which may have changed since.
    """
    from lossbench.cli.run import seed_list
    from lossbench.suite import load_suite, parse_suite

    if suite is not None:
        return [(load_suite(suite), {})]
    grids: dict[str, tuple[Any, dict[str, Any]]] = {}
    for run in runs:
        recorded = {k: v for k, v in run.get("suite", {}).items() if k != "path"}
        the_suite = parse_suite(recorded, f"{run.get('suite', {}).get('path') or 'the manifest'} (as recorded)")
        opts = run.get("options", {})
        for dataset, loss, cell_seeds in opts.get("round_cells") or ():  # a round of `run --until-conclusive`
            args = {"losses": [loss], "datasets": [dataset], "seeds": cell_seeds}
            grids.setdefault(repr((recorded, args)), (the_suite, args))
        if opts.get("round_cells"):
            continue
        seeds = seed_list(the_suite.seeds, opts.get("seeds"), opts.get("seed_offset") or 0)
        args = {"losses": opts.get("losses"), "datasets": opts.get("datasets"), "seeds": seeds}
        grids.setdefault(repr((recorded, args)), (the_suite, args))
    return list(grids.values())


@handles_errors
def status_command(
    results: Annotated[Path, typer.Argument(help="A results directory written by `lossbench run`.")],
    suite: Annotated[str | None, typer.Option("--suite", "-s", help="Suite to check against, with its default "
                                              "losses, datasets and seeds. Default: every run recorded in the "
                                              "directory, as it was run.")] = None,
) -> None:
    """Show which trials are done, failed or pending, and why a trial would rerun.

    The grid is every trial of every `lossbench run` recorded in the directory's manifest.

    Example:

      lossbench status results/quickstart
    """
    from rich.markup import escape
    from rich.table import Table

    from lossbench.errors import ResultsError
    from lossbench.runner import expand
    from lossbench.store import ResultStore

    store = ResultStore(results)
    if not store.root.is_dir():
        raise ResultsError(f"{str(results)!r} is not a results directory.", "Pass the --out of a `lossbench run`.")
    runs = store.read_manifest().get("runs", [])
    if not runs and suite is None:
        raise ResultsError(f"{str(results)!r} has no recorded run.", "Pass --suite.")
    grid: dict[str, Any] = {}
    for the_suite, args in recorded_grids(runs, suite):
        for spec in expand(the_suite, **args)[0]:
            grid.setdefault(spec.trial_id, spec)
    names = sorted({f"{s.suite} v{s.suite_version}" for s in grid.values()})
    trials = store.read_trials()
    by_id = trials.set_index("trial_id") if len(trials) else trials
    by_cell = {(r.dataset, r.loss, int(r.seed)): r for r in trials.itertuples()} if len(trials) else {}
    counts = {"ok": 0, "diverged": 0, "skipped": 0, "failed": 0, "pending": 0}
    reasons = []
    for t in grid.values():
        if len(trials) and t.trial_id in by_id.index:
            status = str(by_id.loc[t.trial_id, "status"])
            counts[status if status in counts else "failed"] += 1
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
    runs_text = "" if suite is not None else f" ({len(runs)} run{'s' if len(runs) != 1 else ''})"
    console.print(f"[bold]{escape(', '.join(names))}[/bold] in {escape(str(results))}{runs_text}: {len(grid)} trials — "
                  + ", ".join(f"{k} {v}" for k, v in counts.items() if v or k in ("ok", "pending")))
    if reasons:
        table = Table(title="trials that the same `lossbench run` commands would run", title_justify="left")
        for c in ("trial_id", "dataset", "loss", "seed", "state", "why"):
            table.add_column(c, overflow="fold")
        for t, state, why in reasons[:50]:
            table.add_row(t.trial_id, escape(t.dataset), escape(t.loss), str(t.seed), state, escape(why))
        console.print(table)
        if len(reasons) > 50:
            console.print(f"… and {len(reasons) - 50} more.")
    history = store.read_manifest().get("decisions") or []
    if history:
        print_decisions(history)


def print_decisions(history: list[dict[str, Any]]) -> None:
    """The rounds of `run --until-conclusive` and where each cell stands after the last one."""
    from rich.markup import escape
    from rich.table import Table

    last = history[-1]
    design = last.get("design", {})
    console.print(f"[bold]Adaptive seeding[/bold] against {escape(str(last.get('baseline')))} "
                  f"(looks at {', '.join(map(str, design.get('looks', [])))} seeds, margin {design.get('margin')}, "
                  f"α {design.get('alpha')} over {design.get('cells')} cells):", highlight=False)
    for entry in history:
        counts = ", ".join(f"{v} {n}" for v, n in sorted(entry.get("counts", {}).items()))
        console.print(f"  look {entry.get('round')} ({entry.get('trials')} trials, {entry.get('at', '')[:19]}): "
                      f"{counts}", highlight=False)
    table = Table(title="verdicts at the last look", title_justify="left")
    for col in ("dataset", "loss", "verdict", "seeds", "difference", "interval", "next seeds"):
        table.add_column(col, overflow="fold")
    for c in last.get("cells", []):
        low, high, est = c.get("low"), c.get("high"), c.get("estimate")
        interval = f"[{low:+.4f}, {high:+.4f}]" if low is not None and high is not None else ""
        table.add_row(escape(str(c["dataset"])), escape(str(c["loss"])), str(c["verdict"]), str(c["n"]),
                      f"{est:+.4f}" if est is not None else "", interval,
                      ", ".join(map(str, c.get("next_seeds", []))))
    console.print(table)
