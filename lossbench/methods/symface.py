"""SymFace-style symmetry auxiliary loss on face images.

Source: Prakash et al., "SymFace: Additional Facial Symmetry Loss for Deep Face Recognition", 2024,
arXiv 2409.11816 (abstract; no reference code found). The paper adds to the recognition loss a term that
penalises the disparity between embeddings of the left and right vertical halves of the same face, for faces
judged frontal. Adaptation here (the distance, mirroring and the frontality gate are not specified):

* each half is mirrored into a full symmetric image (left half | its mirror, mirror of right half | right half),
  so the model's feature extractor sees inputs of the usual size;
* L = base loss + λ·mean ‖ê_L − ê_R‖² over L2-normalised penultimate embeddings;
* ``on_class`` restricts the term to rows of one class (for example the face class of ``lfw_subset``);
  there is no landmark-based frontality gate (lfw_subset faces are aligned and mostly frontal).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lossbench.errors import UserError
from lossbench.losses.base import Param
from lossbench.methods.base import Batch, Method, MethodInfo, StepState, register_method
from lossbench.methods.common import BOTH
from lossbench.models.cnn import require_features

CITATION = "Prakash et al., SymFace: Additional Facial Symmetry Loss for Deep Face Recognition, 2024 (arXiv 2409.11816)"


def mirrored_halves(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(left half ⊕ its mirror, mirror of the right half ⊕ right half) of images (B, C, H, W)."""
    w2 = x.shape[-1] // 2
    left, right = x[..., :w2], x[..., x.shape[-1] - w2 :]
    return torch.cat([left, left.flip(-1)], dim=-1), torch.cat([right.flip(-1), right], dim=-1)


def symmetry_loss(extractor: nn.Module, x: torch.Tensor) -> torch.Tensor:
    left, right = mirrored_halves(x)
    e = F.normalize(extractor(torch.cat([left, right])), dim=1)
    e_left, e_right = e[: len(x)], e[len(x) :]
    return ((e_left - e_right) ** 2).sum(dim=1).mean()


@register_method
class SymFace(Method):
    info = MethodInfo(
        name="symface",
        family="symmetry",
        tasks=BOTH,
        params={
            "weight": Param(0.1, "λ, weight of the symmetry term", low=0),
            "on_class": Param(-1, "apply the term to rows of this class only (-1: all rows)", low=-1),
        },
        citation=CITATION,
        summary="Base loss + λ·distance between embeddings of the mirrored left and right image halves.",
    )

    def setup(self, model: nn.Module, prepared: object, loss: nn.Module, state: StepState, context: object = None
              ) -> None:
        self.extractor = require_features(model, "symface", "the cnn family")[0]

    def step(self, model: nn.Module, batch: Batch, loss: nn.Module, state: StepState) -> torch.Tensor:
        if batch.x.ndim != 4:
            raise UserError("symface needs image inputs (batch, channels, height, width).")
        value = loss(model(batch.x), batch.y, **self.loss_kwargs(loss, batch, state))
        rows = batch.x if self.on_class < 0 else batch.x[batch.y == self.on_class]
        if len(rows) >= 2 and self.weight > 0:
            value = value + self.weight * symmetry_loss(self.extractor, rows)
        return value
