"""The headline table of a segmentation run (markdown), as in docs/results/segmentation.md.

    python benchmarks/segmentation_table.py results/segmentation
"""

from __future__ import annotations

import sys

import pandas as pd

COLUMNS = {"m_dice": "Dice ↑", "m_iou": "IoU ↑", "m_cldice": "clDice ↑", "m_betti0_error": "β0 err ↓",
           "m_betti1_error": "β1 err ↓", "m_betti_matching_error": "BM err ↓", "m_hd95": "HD95 px ↓"}
DIGITS = {"m_betti0_error": 2, "m_betti1_error": 2, "m_betti_matching_error": 1, "m_hd95": 1}


def short(uri: str) -> str:
    return uri.split(":", 1)[1].split("#", 1)[0]


def main(path: str) -> None:
    df = pd.read_parquet(f"{path}/trials")
    ok = df[df.status == "ok"]
    losses = list(dict.fromkeys(ok.loss))
    print("| data | loss | " + " | ".join(COLUMNS.values()) + " | kept epoch |")
    print("|---|---|" + "---:|" * (len(COLUMNS) + 1))
    for dataset in dict.fromkeys(ok.dataset):
        for loss in losses:
            cell = ok[(ok.dataset == dataset) & (ok.loss == loss)]
            if cell.empty:
                continue
            values = [f"{cell[c].mean():.{DIGITS.get(c, 3)}f} ± {cell[c].std(ddof=1):.{DIGITS.get(c, 3)}f}"
                      for c in COLUMNS]
            epochs = ", ".join(str(int(e)) for e in cell.sort_values("seed").best_epoch)
            print(f"| {short(dataset)} | `{loss}` | " + " | ".join(values) + f" | {epochs} |")
    status = df.groupby("status").size()
    train_s = ok.groupby("loss").train_s.mean()
    print("\nTrials: " + ", ".join(f"{k} {v}" for k, v in status.items())
          + "; mean training time per trial: " + ", ".join(f"`{k}` {v:.0f} s" for k, v in train_s.items()))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/segmentation")
