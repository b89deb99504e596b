"""Pixel-wise and overlap losses for segmentation: logits (B, 1, H, W) or (B, C, H, W), masks (B, H, W).

One logit map is binary (sigmoid); C >= 2 maps are softmax classes with background at 0.
Every loss here is computed per image and averaged over the batch (image-wise reduction,
declared because batch-wise Dice gives different results), so none depends on batch-mates.
Overlap losses on C >= 2 maps average the foreground classes 1..C-1 (background excluded).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossbench.errors import LossInputError
from lossbench.losses.base import LossBase, LossInfo, Param, outside
from lossbench.losses.baselines import focal_factor
from lossbench.losses.registry import register_loss

SEG = frozenset({"segmentation"})
SMOOTH = 1.0


class MaskLoss(LossBase):
    """Base of the mask losses: checks the (B, C, H, W) logits / (B, H, W) integer mask contract."""

    def check_inputs(self, input: torch.Tensor, target: torch.Tensor) -> None:
        name = self.info.name
        if not torch.is_tensor(input) or not torch.is_tensor(target):
            raise LossInputError(
                f"Loss {name!r} takes tensors; got {type(input).__name__} and {type(target).__name__}."
            )
        if input.ndim != 4:
            raise LossInputError(
                f"Loss {name!r} expects logits of shape (batch, channels, H, W); got shape {tuple(input.shape)}.",
                "Add the channel axis with logits.unsqueeze(1) for one binary logit map.",
            )
        if target.shape != (input.shape[0], *input.shape[2:]):
            raise LossInputError(
                f"Loss {name!r} expects masks of shape {(input.shape[0], *input.shape[2:])} (batch, H, W); "
                f"got {tuple(target.shape)}.",
                "Pass integer class masks without a channel axis (mask.squeeze(1)).",
            )
        if target.dtype.is_floating_point:
            raise LossInputError(f"Loss {name!r} expects integer or bool masks; got dtype {target.dtype}.",
                                 "Convert with (mask > 0.5).long().")
        if input.shape[0] == 0:
            raise LossInputError(f"Loss {name!r} got an empty batch.")
        top = max(input.shape[1], 2) - 1
        if target.dtype != torch.bool and outside(target, 0, top):
            raise LossInputError(
                f"Loss {name!r} got mask values outside [0, {top}]: min {int(target.min())}, max {int(target.max())}.",
                "Binary masks hold 0/1; with C logit maps, classes 0..C-1.",
            )


def foreground_prob(input: torch.Tensor) -> torch.Tensor:
    """(B, H, W) foreground probability: sigmoid of one map, or softmax channel 1 of two."""
    if input.shape[1] == 1:
        return torch.sigmoid(input[:, 0])
    return torch.softmax(input, dim=1)[:, 1]


def probs_and_onehot(input: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Foreground probabilities and targets as (B, K, H, W): K = 1 for binary, C - 1 foreground classes otherwise."""
    if input.shape[1] == 1:
        return torch.sigmoid(input), (target > 0).to(input.dtype)[:, None]
    p = torch.softmax(input, dim=1)
    onehot = F.one_hot(target.long(), input.shape[1]).permute(0, 3, 1, 2).to(input.dtype)
    return p[:, 1:], onehot[:, 1:]


def soft_dice_per_image(p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """1 - (2 sum p g + 1)/(sum p + sum g + 1) per image and class, averaged over classes; p, g (B, [K,] H, W)."""
    if p.ndim == 3:
        p, g = p[:, None], g[:, None]
    g = g.to(p.dtype)
    inter = (p * g).sum((2, 3))
    dice = (2 * inter + SMOOTH) / (p.sum((2, 3)) + g.sum((2, 3)) + SMOOTH)
    return (1 - dice).mean(1)


def soft_erode(x: torch.Tensor) -> torch.Tensor:
    # min of a 3×1 and a 1×3 min-pool (the reference soft skeleton's erosion)
    return torch.min(-F.max_pool2d(-x, (3, 1), 1, (1, 0)), -F.max_pool2d(-x, (1, 3), 1, (0, 1)))


def soft_dilate(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 3, 1, 1)


def soft_skeleton(x: torch.Tensor, iters: int = 3) -> torch.Tensor:
    """Soft skeleton of probability maps (B, K, H, W) by iterated min/max-pool opening.

    After Shit et al. (2021), clDice, CVPR; reference ``jocpae/clDice`` ``cldice_loss/pytorch/soft_skeleton.py``.
    """
    skel = F.relu(x - soft_dilate(soft_erode(x)))
    for _ in range(iters):
        x = soft_erode(x)
        delta = F.relu(x - soft_dilate(soft_erode(x)))
        skel = skel + F.relu(delta - skel * delta)
    return skel


@register_loss
class SegBCELoss(MaskLoss):
    info = LossInfo(
        name="bce", family="segmentation", tasks=SEG, input="masks", params={},
        citation="Standard pixel-wise binary cross-entropy (softmax cross-entropy for C >= 2 maps).",
        summary="Pixel-wise (binary) cross-entropy, mean per image.",
        formula="-mean_px [g log p + (1-g) log(1-p)]",
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        if input.shape[1] == 1:
            px = F.binary_cross_entropy_with_logits(input[:, 0], (target > 0).to(input.dtype), reduction="none")
        else:
            px = F.cross_entropy(input, target.long(), reduction="none")
        return px.mean((1, 2))


@register_loss
class DiceLoss(MaskLoss):
    info = LossInfo(
        name="dice", family="segmentation", tasks=SEG, input="masks", params={},
        citation="Milletari, Navab & Ahmadi (2016), V-Net, 3DV; soft Dice with smooth = 1.",
        summary="Soft Dice per image (smooth 1), foreground classes only.",
        formula="1 - (2 sum pg + 1)/(sum p + sum g + 1)",
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        return soft_dice_per_image(*probs_and_onehot(input, target))


@register_loss
class DiceBCELoss(MaskLoss):
    info = LossInfo(
        name="dice-bce", family="segmentation", tasks=SEG, input="masks",
        params={"weight": Param(1.0, "weight of the BCE term", low=0.0)},
        citation="Soft Dice plus pixel-wise cross-entropy (the common compound loss, e.g. nnU-Net).",
        summary="Soft Dice + weight * BCE.",
        formula="Dice + w * BCE",
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        dice = soft_dice_per_image(*probs_and_onehot(input, target))
        return dice + self.weight * SegBCELoss.per_sample(self, input, target)


@register_loss
class SegFocalLoss(MaskLoss):
    info = LossInfo(
        name="seg-focal", family="segmentation", tasks=SEG, input="masks",
        params={
            "gamma": Param(2.0, "focusing parameter", low=0.0),
            "alpha": Param(0.25, "foreground weight for one map (negative: none)", high=1.0),
        },
        citation="Lin, Goyal, Girshick, He & Dollar (2017), Focal Loss for Dense Object Detection, ICCV "
                 "(torchvision sigmoid_focal_loss defaults).",
        summary="Pixel-wise focal loss, mean per image.",
        formula="-mean_px alpha_t (1-p_t)^gamma log p_t",
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        if input.shape[1] == 1:
            g = (target > 0).to(input.dtype)
            z = input[:, 0]
            ce = F.binary_cross_entropy_with_logits(z, g, reduction="none")
            p_t = torch.exp(-ce)
            px = focal_factor(1 - p_t, self.gamma) * ce
            if self.alpha >= 0:
                px = (self.alpha * g + (1 - self.alpha) * (1 - g)) * px
        else:
            logp = torch.log_softmax(input, 1).gather(1, target.long()[:, None])[:, 0]
            px = -focal_factor(-torch.expm1(logp), self.gamma) * logp
        return px.mean((1, 2))


@register_loss
class TverskyLoss(MaskLoss):
    info = LossInfo(
        name="tversky", family="segmentation", tasks=SEG, input="masks",
        params={
            "alpha": Param(0.3, "weight of false positives", low=0.0),
            "beta": Param(0.7, "weight of false negatives", low=0.0),
        },
        citation="Salehi, Erdogmus & Gholipour (2017), Tversky loss function for image segmentation using 3D "
                 "fully convolutional deep networks, MLMI.",
        summary="1 - Tversky index per image; alpha = beta = 1 is soft Jaccard.",
        formula="1 - (TP + 1)/(TP + a FP + b FN + 1)",
        caveats="alpha = beta = 0.5 is soft Dice with smoothing 2, 1 - (2 TP + 2)/(sum p + sum g + 2), not the "
        "`dice` loss (smoothing 1); the two agree only as the sums grow.",
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        p, g = probs_and_onehot(input, target)
        tp = (p * g).sum((2, 3))
        fp = (p * (1 - g)).sum((2, 3))
        fn = ((1 - p) * g).sum((2, 3))
        ti = (tp + SMOOTH) / (tp + self.alpha * fp + self.beta * fn + SMOOTH)
        return (1 - ti).mean(1)


@register_loss
class SoftClDiceLoss(MaskLoss):
    info = LossInfo(
        name="soft-cldice", family="topology", tasks=SEG, input="masks",
        params={
            "alpha": Param(0.5, "weight of clDice against soft Dice", low=0.0, high=1.0),
            "iters": Param(3, "soft-skeleton iterations", low=1, high=50),
        },
        citation="Shit, Paetzold, Sekuboyina, Ezhov, Unger, Zhylka, Pluim, Bauer & Menze (2021), clDice - a Novel "
                 "Topology-Preserving Loss Function for Tubular Structure Segmentation, CVPR.",
        summary="(1 - alpha) soft Dice + alpha soft clDice (as jocpae/clDice soft_dice_cldice).",
        formula="(1-a) Dice + a (1 - 2 Tprec Tsens/(Tprec + Tsens)), Tprec = (S(P).G+1)/(S(P)+1)",
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        p, g = probs_and_onehot(input, target)
        dice = soft_dice_per_image(p, g)
        sp, sg = soft_skeleton(p, self.iters), soft_skeleton(g, self.iters)
        tprec = ((sp * g).sum((2, 3)) + SMOOTH) / (sp.sum((2, 3)) + SMOOTH)
        tsens = ((sg * p).sum((2, 3)) + SMOOTH) / (sg.sum((2, 3)) + SMOOTH)
        cl = (1 - 2 * tprec * tsens / (tprec + tsens)).mean(1)
        return (1 - self.alpha) * dice + self.alpha * cl
