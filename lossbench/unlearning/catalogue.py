"""Render the unlearning objectives as Markdown: the "unlearning" section of ``docs/losses.md``."""

from __future__ import annotations

from lossbench.unlearning import OBJECTIVES
from lossbench.unlearning.objectives import ObjectiveInfo

USES = {
    "forget_labels": "forget labels",
    "retain": "retain rows",
    "retain_labels": "retain labels",
    "reference": "the pre-trained model (frozen)",
    "attribution": "predicted oracle logits (datamodels)",
}

INTRO = """\
## unlearning

Objectives of the `unlearning` task family (module `lossbench.unlearning`; design in
[unlearning.md](unlearning.md)). They are not losses of a classification trial: each starts from the pre-trained
model of its seed and runs a bounded budget of steps, one forget batch and one retain batch per step, with the model
in eval mode. Each is a method of the `unlearning` task (`lossbench list methods`, `--loss npo:beta=0.5`, suites
`unlearning` and `unlearning-half`) and of no other; the oracle row, method `retrain` (training from scratch on the
retain rows), is not an objective. Every objective reads the forget inputs; what else it reads is listed under
**Uses**.

What was scaled down from the papers, and why: the models are lossbench's small MLPs and CNNs, not LLMs, ResNets or
diffusion models; the step budget is a suite setting of about a hundred steps, so LAF's learning rates are 10× its
reference's; AdvUnlearn's attack is 5 PGD steps on standardised inputs instead of 30 steps on prompt embeddings; DMM's
datamodels come from about ten retrains instead of thousands (see `lossbench.unlearning.attribution`); KLoM uses a
Gaussian fit over five oracle retrains instead of histograms over a hundred models
(`lossbench.metrics.unlearning.klom_gaussian`).
"""


def objective_markdown(info: ObjectiveInfo) -> str:
    uses = ", ".join(USES[u] for u in sorted(info.uses)) or "forget inputs only"
    lines = [
        f"### `{info.name}`",
        "",
        info.summary,
        "",
        f"* **Formula:** `{info.formula}`",
        f"* **Uses:** {uses}" + (" (label-free)" if info.label_free else ""),
        f"* **Version:** {info.version}",
        f"* **Citation:** {info.citation}",
    ]
    if info.notes:
        lines.append(f"* **Notes:** {info.notes}")
    lines += ["", "| parameter | default | accepts | meaning |", "|---|---|---|---|"]
    lines += [f"| `{k}` | `{p.default}` | {p.describe()} | {p.doc.replace('|', chr(92) + '|')} |"
              for k, p in info.params.items()]
    lines.append("")
    return "\n".join(lines)


def objectives_markdown() -> str:
    return "\n".join([INTRO, *(objective_markdown(e.obj.info) for e in OBJECTIVES)])
