"""Headline tables of a retrieval run (markdown), as in docs/results/retrieval.md.

    python benchmarks/retrieval_table.py results/retrieval
"""

from __future__ import annotations

import sys

import pandas as pd

CLASS_DATA = {"mnist1d:default": "mnist1d", "bundled:letter": "letter", "sklearn:digits": "digits (5-9)"}
PAIR_METRICS = {"m_recall_at_1": "R@1", "m_recall_at_10": "R@10", "m_mrr_at_10": "MRR@10", "m_ndcg_at_10": "nDCG@10",
                "m_global_auroc": "global AUROC"}


def markdown(frame: pd.DataFrame) -> str:
    head = [frame.index.name or "", *map(str, frame.columns)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join([str(i), *map(str, row)]) + " |" for i, row in zip(frame.index, frame.values, strict=True)]
    return "\n".join(lines)


def mean_sd(s: pd.Series) -> str:
    return f"{s.mean():.3f} ± {s.std(ddof=1):.3f}" if len(s) > 1 else f"{s.mean():.3f}"


def main(path: str) -> None:
    df = pd.read_parquet(f"{path}/trials")
    ok = df[df.status == "ok"]
    cls = ok[ok.dataset.isin(CLASS_DATA)]
    if len(cls):
        r1 = cls.groupby(["loss", "dataset"]).m_recall_at_1.agg(mean_sd).unstack().rename(columns=CLASS_DATA)
        mapr = cls.groupby(["loss", "dataset"]).m_map_at_r.mean().unstack().rename(columns=CLASS_DATA).round(3)
        table = r1.join(mapr.add_suffix(" MAP@R"))
        table["mean R@1"] = cls.groupby("loss").m_recall_at_1.mean().round(3)
        table = table.sort_values("mean R@1", ascending=False)
        table.index.name = "loss"
        print("Class-as-relevance retrieval, Recall@1 (mean ± sd over seeds) and MAP@R (mean)\n")
        print(markdown(table))
        diag = cls.groupby("loss")[["m_rankme", "m_uniformity", "m_tolerance"]].mean().round(2)
        diag.columns = ["RankMe", "uniformity", "tolerance"]
        print("\nRepresentation diagnostics (mean over datasets and seeds)\n")
        print(markdown(diag.loc[table.index]))
    qd = ok[~ok.dataset.isin(CLASS_DATA) & ok.m_global_auroc.notna()]
    if len(qd) and "m_mrr_at_10" in qd:
        table = qd.groupby("loss")[list(PAIR_METRICS)].agg(mean_sd).rename(columns=PAIR_METRICS)
        table.index.name = "loss"
        print("\nQuery–document retrieval (" + ", ".join(sorted(qd.dataset.unique())) + "), mean ± sd over seeds\n")
        print(markdown(table))
        per_seed = qd.pivot_table(index="seed", columns="loss", values="m_global_auroc").round(4)
        per_seed.index.name = "seed"
        print("\nGlobal AUROC per seed\n")
        print(markdown(per_seed))
    status = df.groupby("status").size()
    print("\nTrials: " + ", ".join(f"{k} {v}" for k, v in status.items()))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/retrieval")
