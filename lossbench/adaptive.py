"""Adaptive seeding: run rounds of seeds, adding them only to the cells whose verdict is still open.

A cell is one (dataset, loss) against the baseline loss on the same dataset. Its verdict comes from
:mod:`lossbench.sequential` on the paired primary-metric differences, looked at only at the design's
planned seed counts. Everything is recomputed from the rows in the results folder, so a rerun of the
same command after a kill continues where the rows end: the rows are the state, the manifest a record.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from lossbench import sequential
from lossbench.errors import UserError
from lossbench.runner import Plan, expand
from lossbench.specs import TrialSpec
from lossbench.store import ResultStore
from lossbench.suite import Suite

#: The default margin for a metric bounded in [0, 1], as the gate's (`lossbench gate` without a calibration).
DEFAULT_MARGIN = 0.01


@dataclass(frozen=True)
class CellDecision:
    """Where one (dataset, loss) cell stands against the baseline, and which seeds it runs next."""

    dataset: str
    loss: str
    verdict: str
    n: int  # paired seeds behind the verdict (those of the deciding or last look)
    estimate: float  # mean paired difference, oriented so that positive is better
    low: float
    high: float
    next_seeds: tuple[int, ...]

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["next_seeds"] = list(self.next_seeds)
        for key in ("estimate", "low", "high"):  # JSON has no NaN or inf
            value = float(out[key])  # type: ignore[arg-type]
            out[key] = value if math.isfinite(value) else None
        return out


def seed_sequence(start: Sequence[int], max_seeds: int) -> list[int]:
    """The starting seeds, then the integers after the largest of them: ``max_seeds`` seeds in all."""
    seeds = list(dict.fromkeys(start))[:max_seeds]
    nxt = max(seeds) + 1
    while len(seeds) < max_seeds:
        seeds.append(nxt)
        nxt += 1
    return seeds


def check_baseline(baseline: str | None, losses: Sequence[str]) -> str:
    """The baseline's canonical spec; refused when missing or not one of the run's losses."""
    from lossbench.objectives import parse_objective

    if not baseline:
        raise UserError(
            "--until-conclusive needs a baseline to compare each loss with.",
            "Name one of the run's losses with --baseline, e.g. --baseline ce.",
        )
    spec = str(parse_objective(baseline))
    if spec not in losses:
        raise UserError(
            f"--baseline {baseline} is not one of the run's losses ({', '.join(losses)}).",
            f"Add it with --loss {baseline}, or name one of those losses with --baseline.",
        )
    if len(losses) < 2:
        raise UserError(
            "--until-conclusive needs at least one loss besides the baseline.",
            "Add the losses to compare with --loss.",
        )
    return spec


def primary_direction(metric: str, margin: float | None) -> tuple[bool, float]:
    """Whether higher is better for the suite's primary metric, and the margin (default for bounded metrics)."""
    from lossbench.metrics import METRICS

    registered = METRICS.get(metric)
    if margin is not None:
        return bool(registered.greater_is_better), margin
    if not registered.bounded:
        raise UserError(
            f"The primary metric {metric!r} is unbounded, so no default margin fits it.",
            "Give --margin as the smallest difference that matters, in the metric's units.",
        )
    return bool(registered.greater_is_better), DEFAULT_MARGIN


class Grid:
    """Every trial the adaptive run may reach: the datasets × losses × ``max_seeds`` seeds, expanded once."""

    def __init__(self, suite: Suite, losses: Sequence[str] | None, datasets: Sequence[str] | None,
                 seeds: Sequence[int], **spec_options: object) -> None:
        sizes: dict[str, int] = {}
        trials, self.hashes = expand(suite, losses=losses, datasets=datasets, seeds=seeds, sizes=sizes,
                                     **spec_options)  # type: ignore[arg-type]
        self.suite, self.seeds, self.sizes = suite, list(seeds), sizes
        self.specs: dict[tuple[str, str, int], TrialSpec] = {(t.dataset, t.loss, t.seed): t for t in trials}
        self.datasets = list(self.hashes)
        self.losses = list(dict.fromkeys(t.loss for t in trials))

    def round_plan(self, decisions: Sequence[CellDecision], baseline: str, done: set[str]) -> Plan:
        """The trials of the next round: each open cell's next seeds, with the baseline's on the same seeds."""
        wanted: dict[str, TrialSpec] = {}
        for c in decisions:
            for seed in c.next_seeds:
                for loss in (c.loss, baseline):
                    spec = self.specs[(c.dataset, loss, seed)]
                    wanted[spec.trial_id] = spec
        trials = sorted(wanted.values(), key=lambda t: (self.datasets.index(t.dataset), self.seeds.index(t.seed),
                                                        self.losses.index(t.loss)))
        pending = [t for t in trials if t.trial_id not in done]
        return Plan(self.suite, trials, pending, len(trials) - len(pending), self.hashes, self.sizes)


def paired_values(trials: pd.DataFrame, grid: Grid, higher_is_better: bool) -> pd.DataFrame:
    """The grid's rows as a table indexed by (dataset, seed), one column per loss: the oriented primary value.

    A trial that is not ``ok`` or has no finite value is NaN; a trial never run is absent (NaN too) and
    listed by :func:`tried`.
    """
    ids = {spec.trial_id: key for key, spec in grid.specs.items()}
    rows = trials[trials["trial_id"].isin(ids)] if len(trials) else trials
    sign = 1.0 if higher_is_better else -1.0
    records = []
    for r in rows.itertuples():
        dataset, loss, seed = ids[r.trial_id]
        value = float(r.value) if r.status == "ok" and r.value is not None else math.nan
        records.append((dataset, seed, loss, sign * value if math.isfinite(value) else math.nan))
    frame = pd.DataFrame(records, columns=["dataset", "seed", "loss", "value"])
    return frame.pivot_table(index=["dataset", "seed"], columns="loss", values="value", dropna=False,
                             aggfunc="last")


def judge(dataset: str, loss: str, d: np.ndarray, untried: Sequence[int], design: sequential.Design
          ) -> CellDecision:
    """One cell's verdict from its paired differences ``d`` (seed order) at the planned looks it has reached, and
    the untried seeds it runs next; an open cell with no seed left to run is inconclusive."""
    looks = tuple(k for k in design.plan() if k <= len(d))
    if looks:
        dec = sequential.decide(d[:looks[-1]], looks, design)
        verdict, n, est, low, high = dec.verdict, dec.n, dec.estimate, dec.low, dec.high
        need = design.next_look(looks[-1]) - len(d) if verdict == sequential.OPEN else 0
    else:
        verdict, n, est, low, high = sequential.OPEN, len(d), math.nan, -math.inf, math.inf
        need = design.start - len(d)
    nxt = tuple(untried[:need])
    if verdict == sequential.OPEN and not nxt:  # failed trials used up the seeds: nothing left to run
        verdict = sequential.INCONCLUSIVE
    return CellDecision(dataset, loss, str(verdict), n, float(est), float(low), float(high), nxt)


def decide_cells(trials: pd.DataFrame, grid: Grid, baseline: str, design: sequential.Design,
                 higher_is_better: bool) -> list[CellDecision]:
    """Every cell's verdict from the rows written so far, and the seeds each open cell runs next.

    A cell's paired differences are taken in seed order over the seeds where both trials are ok; it is
    judged at the planned looks it has reached (the largest planned count at most its paired seeds), so
    a round cut short by a kill, or a failed trial, delays its look and never moves it.
    """
    table = paired_values(trials, grid, higher_is_better)
    present = set(zip(trials["dataset"], trials["loss"], trials["seed"].astype(int), strict=True)) if len(trials) else set()
    out = []
    for dataset in grid.datasets:
        for loss in grid.losses:
            if loss == baseline:
                continue
            d = np.array([
                table.at[(dataset, s), loss] - table.at[(dataset, s), baseline]
                if (dataset, s) in table.index and loss in table and baseline in table else math.nan
                for s in grid.seeds
            ])
            untried = [s for s in grid.seeds
                       if (dataset, loss, s) not in present or (dataset, baseline, s) not in present]
            out.append(judge(dataset, loss, d[np.isfinite(d)], untried, design))
    return out


def summary(decisions: Sequence[CellDecision]) -> dict[str, int]:
    return dict(Counter(c.verdict for c in decisions))


def record(store: ResultStore, design: sequential.Design, baseline: str, decisions: Sequence[CellDecision],
           trials_done: int) -> None:
    """Append this look's decisions to the manifest (skipped when the last record says the same)."""
    cells = [c.to_dict() for c in decisions]
    manifest = store.read_manifest()
    history = manifest.get("decisions", [])
    if history and history[-1].get("cells") == cells and history[-1].get("baseline") == baseline:
        return
    history.append({
        "at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "round": len(history) + 1,
        "baseline": baseline,
        "design": design_record(design),
        "trials": trials_done,
        "counts": summary(decisions),
        "cells": cells,
    })
    with store.lock():  # between rounds: no other run writes the manifest meanwhile
        store.record_decisions(history)


def design_record(design: sequential.Design) -> dict[str, object]:
    return {**asdict(design), "looks": list(design.plan()), "cell_alpha": design.cell_alpha}


#: What a rerun may not change once a look has been judged: each changes a boundary or what a look compares.
DESIGN_FIELDS = ("start", "max_seeds", "margin", "alpha", "cells", "question", "spending", "looks")


def check_same_design(store: ResultStore, design: sequential.Design, baseline: str) -> None:
    """Refuse to continue an adaptive run under another design than the one its looks were judged under.

    The sequential error guarantee holds for a design fixed before the first look; a rerun that changes
    ``--max-seeds``, ``--looks``, ``--margin``, ``--alpha``, the baseline or the losses (the cells share α)
    after looks were taken would judge the same seeds against boundaries it chose having seen them.
    A folder whose recorded rounds ran no trial yet may still change its design.
    """
    if not store.root.is_dir():
        return
    judged = [h for h in store.read_manifest().get("decisions", []) if h.get("trials")]
    if not judged:
        return
    before = judged[-1]
    recorded = before.get("design", {})
    now = json.loads(json.dumps(design_record(design)))  # as the manifest holds it (lists, not tuples)
    changed = [f"{k} {recorded.get(k)} → {now[k]}" for k in DESIGN_FIELDS if recorded.get(k) != now[k]]
    if before.get("baseline") != baseline:
        changed.append(f"baseline {before.get('baseline')} → {baseline}")
    if changed:
        looks = ",".join(str(k) for k in recorded.get("looks", []))
        raise UserError(
            f"{str(store.root)!r} holds an adaptive run whose looks were judged under another design "
            f"({'; '.join(changed)}). Its error guarantee holds only for the design fixed before the first look.",
            f"Continue it with the recorded design (--baseline {before.get('baseline')} "
            f"--max-seeds {recorded.get('max_seeds')} --looks {looks} --margin {recorded.get('margin')} "
            f"--alpha {recorded.get('alpha')}, the same losses), or write the new design to another --out folder.",
        )


def until_conclusive(
    store: ResultStore,
    grid: Grid,
    baseline: str,
    design: sequential.Design,
    higher_is_better: bool,
    run_round: Callable[[Plan, Mapping[str, object]], int],
    on_round: Callable[[int, Sequence[CellDecision]], None] | None = None,
) -> tuple[list[CellDecision], int]:
    """Run rounds until every cell is decided or out of seeds; returns the decisions and the worst exit code.

    ``run_round(plan, extra_options)`` runs one round's trials and returns its exit code; 130
    (interrupted) stops at once, with every finished trial kept.
    """
    code = 0
    round_no = 0
    while True:
        trials = store.read_trials() if store.root.is_dir() else pd.DataFrame()
        decisions = decide_cells(trials, grid, baseline, design, higher_is_better)
        ids = {s.trial_id for s in grid.specs.values()}
        done_ids = set(trials["trial_id"]) & ids if len(trials) else set()
        if store.root.is_dir():
            record(store, design, baseline, decisions, len(done_ids))
        if on_round is not None:
            on_round(round_no, decisions)
        open_cells = [c for c in decisions if c.next_seeds]
        if not open_cells:
            return decisions, code
        the_plan = grid.round_plan(open_cells, baseline, store.completed() if store.root.is_dir() else set())
        cells = sorted({(t.dataset, t.loss) for t in the_plan.trials})
        extra = {"until_conclusive": {"baseline": baseline, **design_record(design)},
                 "round_cells": [[ds, loss, sorted(t.seed for t in the_plan.trials
                                                   if (t.dataset, t.loss) == (ds, loss))] for ds, loss in cells]}
        round_code = run_round(the_plan, extra)
        round_no += 1
        if round_code == 130:
            return decisions, round_code
        code = max(code, round_code) if round_code != 6 else code
        if not the_plan.pending:  # nothing ran and nothing changes: stop rather than loop
            return decide_cells(store.read_trials(), grid, baseline, design, higher_is_better), code


# -- the gate: grow a CI candidate's open cells ------------------------------------------------------


def candidate_suite(store: ResultStore) -> tuple[Suite, int, dict[str, object]]:
    """The suite a candidate folder was run with, its starting seed count and the first run's options."""
    from lossbench.cli.run import seed_list
    from lossbench.suite import parse_suite

    runs = store.read_manifest().get("runs", [])
    if not runs:
        raise UserError(f"{str(store.root)!r} records no `lossbench run`, so the gate cannot run more seeds.",
                        "Pass the --out folder of the candidate's `lossbench run` as --candidate.")
    first = runs[0]
    recorded = {k: v for k, v in first.get("suite", {}).items() if k != "path"}
    suite = parse_suite(recorded, "the candidate's manifest (as recorded)")
    opts = first.get("options", {})
    seeds = seed_list(suite.seeds, opts.get("seeds"), opts.get("seed_offset") or 0)  # type: ignore[arg-type]
    return suite, len(seeds if seeds is not None else suite.seeds), opts


def paired_gate_values(base: pd.DataFrame, cand: pd.DataFrame, metric: str | None
                       ) -> tuple[dict[tuple[str, str], list[tuple[int, float]]], dict[tuple[str, str], list[int]]]:
    """Per (dataset, loss): the oriented candidate − baseline differences by seed, and the baseline's ok seeds."""
    from lossbench.results import metric_values

    choice, bvals = metric_values(base, metric)
    _, cvals = metric_values(cand, choice.name)
    sign = 1.0 if choice.higher_is_better else -1.0
    b = base.assign(v=bvals)[lambda f: (f["status"] == "ok") & np.isfinite(f["v"])]
    c = cand.assign(v=cvals)[lambda f: (f["status"] == "ok") & np.isfinite(f["v"])]
    base_seeds = {key: sorted(int(s) for s in g["seed"]) for key, g in b.groupby(["dataset", "loss"])}
    joined = b[["dataset", "loss", "seed", "v"]].merge(c[["dataset", "loss", "seed", "v"]],
                                                       on=["dataset", "loss", "seed"], suffixes=("_b", "_c"))
    diffs = {key: sorted((int(r.seed), sign * (r.v_c - r.v_b)) for r in g.itertuples())
             for key, g in joined.groupby(["dataset", "loss"])}
    return diffs, base_seeds


def gate_decisions(diffs: Mapping[tuple[str, str], list[tuple[int, float]]],
                   base_seeds: Mapping[tuple[str, str], list[int]], tried: set[tuple[str, str, int]],
                   margins: Mapping[tuple[str, str], float], start: int, max_seeds: int, alpha: float
                   ) -> list[CellDecision]:
    """Non-inferiority verdicts (pass / regression) of the sequential rule, and the seeds each open cell needs.

    More seeds come from the baseline's ok seeds in order that the candidate has not tried.
    """
    out = []
    for key in sorted(margins):
        design = sequential.Design(start=start, max_seeds=max_seeds, margin=margins[key], alpha=alpha,
                                   cells=len(margins), question="non-inferiority")
        d = np.array([v for _, v in diffs.get(key, [])])
        untried = [s for s in base_seeds.get(key, []) if (key[0], key[1], s) not in tried]
        out.append(judge(key[0], key[1], d, untried, design))
    return out


def grow_candidate(baseline: Sequence[str], store: ResultStore, margins: Mapping[tuple[str, str], float],
                   metric: str | None, max_seeds: int, alpha: float, n_jobs: int = 1,
                   on_round: Callable[[int, Sequence[CellDecision]], None] | None = None) -> list[CellDecision]:
    """Run the candidate's open cells on more of the baseline's seeds until each passes, regresses or runs out.

    The candidate's suite and trial settings are those its folder's manifest recorded; the new trials are
    ordinary rows of that folder. Returns the final non-inferiority decisions.
    """
    from lossbench.backends import BackendConfig
    from lossbench.provenance import resolve_device
    from lossbench.results import load_trials
    from lossbench.runner import run

    suite, start, opts = candidate_suite(store)
    if max_seeds < start:
        raise UserError(f"--max-seeds {max_seeds} is below the candidate's {start} starting seeds.",
                        f"Give --max-seeds {start} or more.")
    device = resolve_device(str(opts.get("device") or "auto"))
    spec_options = {"trial_timeout": opts.get("trial_timeout"), "device": device,
                    "threads": int(opts.get("threads") or 1)}  # type: ignore[call-overload]
    base = load_trials(baseline)
    round_no = 0
    while True:
        cand = store.read_trials()
        diffs, base_seeds = paired_gate_values(base, cand, metric)
        tried = set(zip(cand["dataset"], cand["loss"], cand["seed"].astype(int), strict=True))
        decisions = gate_decisions(diffs, base_seeds, tried, margins, start, max_seeds, alpha)
        if on_round is not None:
            on_round(round_no, decisions)
        grow = [c for c in decisions if c.next_seeds]
        if not grow:
            return decisions
        trials, hashes, sizes = [], {}, {}
        for c in grow:
            specs, h = expand(suite, losses=[c.loss], datasets=[c.dataset], seeds=list(c.next_seeds),
                              sizes=sizes, **spec_options)
            trials += specs
            hashes.update(h)
        the_plan = Plan(suite, trials, trials, 0, hashes, sizes)
        run(store, the_plan, backend=BackendConfig("loky", n_jobs, threads=spec_options["threads"]),
            options={**opts, "gate_until_conclusive": {"round": round_no + 1, "max_seeds": max_seeds},
                     "round_cells": [[c.dataset, c.loss, list(c.next_seeds)] for c in grow]})
        round_no += 1
