"""Multi-label training pieces: sigmoid losses, pos_weight from prevalence, rarest-label sampling,
soft-target checks and per-class decision thresholds (ChestX-ray14 style, DESIGN §10).

A multi-label model has K independent sigmoid outputs. Labels are (N, K) 0/1 indicators; soft targets are
per-class marginals P(class present) in [0, 1] from consensus (rows do NOT sum to 1). Torch and numpy only.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from labeling_assets.core.training.multilabel_metrics import macro_auc_and_map, macro_f1_multilabel
from labeling_assets.core.training.types import AnyArray, FloatArray, UInt8Array

if TYPE_CHECKING:  # torch is imported where it runs: a run process that never trains skips its seconds of import
    import torch

MULTI_LABEL_LOSSES = ("bce", "focal", "asl", "bce_focal")
POS_WEIGHT_KINDS = ("inverse_frequency", "effective_number", "none")
# The combined loss ChestX-ray14 users run: 0.7 * BCE (with pos_weight) + 0.3 * focal.
COMBINED_BCE_SHARE = 0.7
DEFAULT_THRESHOLD = 0.5  # a class without a positive in val keeps this threshold


def check_indicator(labels: AnyArray, num_classes: int) -> UInt8Array:
    """Hard multi-label labels as a (n, num_classes) uint8 0/1 matrix; anything else is a clear error."""
    array = np.asarray(labels)
    if array.ndim != 2 or array.shape[1] != num_classes:
        raise ValueError(
            f"multi-label labels must be an (n, {num_classes}) 0/1 indicator matrix, got shape {array.shape}"
        )
    if array.size and not np.isin(array, (0, 1)).all():
        raise ValueError("multi-label labels must hold only 0 and 1 (soft marginals go in train_targets)")
    indicator: UInt8Array = array.astype(np.uint8)
    return indicator


def check_marginal_targets(targets: AnyArray, n: int, num_classes: int) -> FloatArray:
    """Soft multi-label targets as float32 (n, num_classes) per-class probabilities in [0, 1].

    Unlike single-label soft targets, rows need not sum to 1: each entry is P(class present).
    """
    array = np.asarray(targets, dtype=np.float32)
    if array.shape != (n, num_classes):
        raise ValueError(
            f"multi-label soft targets must be ({n}, {num_classes}) per-class marginals, got {array.shape}"
        )
    if not np.isfinite(array).all():
        bad = int(np.argwhere(~np.isfinite(array))[0][0])
        raise ValueError(f"multi-label soft targets must be finite (row {bad} is not)")
    outside = (array < -1e-6) | (array > 1 + 1e-6)
    if outside.any():
        row, col = (int(v) for v in np.argwhere(outside)[0])
        raise ValueError(
            f"multi-label soft targets are probabilities in [0, 1]: row {row}, class {col} is {array[row, col]:.4f}"
        )
    clipped: FloatArray = np.clip(array, 0.0, 1.0)
    return clipped


def pos_weights(targets: AnyArray, kind: str = "inverse_frequency", beta: float = 0.999) -> list[float]:
    """BCE's ``pos_weight`` per class from the training prevalence (hard indicators or soft marginals).

    - ``inverse_frequency``: negatives / positives (ChestX-ray14 users see 4.7 to 509 over 14 findings);
    - ``effective_number``: Cui et al. 2019's effective number E(m) = (1 - beta**m) / (1 - beta) of the
      negatives over that of the positives: the same ratio for small counts, bounded for rare classes
      (E(m) saturates at 1 / (1 - beta)) so a handful of positives cannot dominate;
    - ``none``: 1 everywhere.
    A class without positives gets 1.0 (there is nothing to up-weight).
    """
    array = np.asarray(targets, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"targets must be (n, K), got shape {array.shape}")
    n, k = array.shape
    if kind == "none":
        return [1.0] * k
    positives = array.sum(axis=0)
    negatives = n - positives
    weights = np.ones(k)
    present = positives > 0
    if kind == "inverse_frequency":
        weights[present] = negatives[present] / positives[present]
    elif kind == "effective_number":
        if not 0.0 < beta < 1.0:
            raise ValueError(f"effective_number_beta must be in (0, 1), got {beta}")

        def effective(m: AnyArray) -> AnyArray:
            return (1.0 - beta**m) / (1.0 - beta)

        weights[present] = effective(negatives[present]) / effective(positives[present])
    else:
        raise ValueError(f"unknown pos_weight {kind!r}; choose one of {', '.join(POS_WEIGHT_KINDS)}")
    # A class present in every item has no negatives: weight 0 would silence it, keep 1.
    weights[present & (negatives <= 0)] = 1.0
    return weights.tolist()


def rarest_label_weights(labels: torch.Tensor, class_counts: torch.Tensor, n_empty: float) -> torch.Tensor:
    """Per-item sampling weight: 1 / (training count of the item's rarest label).

    Items with no label (the empty set) weigh 1 / (number of empty items), so "no finding" is one more
    group. Soft rows count a class as present from 0.5. Drawing by these weights over-samples the items
    that carry the rare findings (the weighted sampler of ChestX-ray14 pipelines).
    """
    import torch
    present = labels >= 0.5
    inverse = torch.where(
        class_counts > 0, 1.0 / class_counts.clamp_min(1e-12), torch.zeros_like(class_counts)
    )
    per_class = present.to(inverse.dtype) * inverse
    rarest = per_class.max(dim=1).values
    empty_weight = 1.0 / max(n_empty, 1.0)
    return torch.where(present.any(dim=1), rarest, torch.full_like(rarest, empty_weight))


def multilabel_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    kind: str = "bce",
    pos_weight: torch.Tensor | None = None,
    focal_alpha: float = 0.25,
    focal_gamma: float = 2.0,
    asl_gamma_neg: float = 4.0,
    asl_gamma_pos: float = 0.0,
    asl_clip: float = 0.05,
) -> torch.Tensor:
    """Mean over items and classes of a per-class binary loss on (N, K) targets in [0, 1].

    - ``bce``: binary cross-entropy with logits, positives scaled by ``pos_weight``;
    - ``focal``: sigmoid focal loss (Lin et al. 2017), ``alpha`` on positives and ``1 - alpha`` on
      negatives, each term scaled by how wrong it is to the power ``gamma``;
    - ``asl``: asymmetric loss (Ridnik et al. 2021): negatives focused harder (``gamma_neg``) and their
      probability shifted down by ``clip``, so the many easy negatives of a sparse label set cost nothing;
    - ``bce_focal``: 0.7 * bce + 0.3 * focal.
    Soft targets weigh the positive and the negative term of each class (with 0/1 targets every loss is
    its usual hard form).
    """
    import torch.nn.functional as F
    if logits.shape != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ in shape")
    targets = targets.to(logits.dtype)
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight)
    if kind == "focal":
        return _focal(logits, targets, focal_alpha, focal_gamma)
    if kind == "asl":
        return _asymmetric(logits, targets, asl_gamma_neg, asl_gamma_pos, asl_clip)
    if kind == "bce_focal":
        bce = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight)
        return COMBINED_BCE_SHARE * bce + (1 - COMBINED_BCE_SHARE) * _focal(
            logits, targets, focal_alpha, focal_gamma
        )
    raise ValueError(f"unknown multi-label loss {kind!r}; choose one of {', '.join(MULTI_LABEL_LOSSES)}")


def _focal(logits: torch.Tensor, targets: torch.Tensor, alpha: float, gamma: float) -> torch.Tensor:
    import torch
    import torch.nn.functional as F
    p = torch.sigmoid(logits)
    positive = alpha * targets * (1 - p).pow(gamma) * -F.logsigmoid(logits)
    negative = (1 - alpha) * (1 - targets) * p.pow(gamma) * -F.logsigmoid(-logits)
    return (positive + negative).mean()


def _asymmetric(
    logits: torch.Tensor, targets: torch.Tensor, gamma_neg: float, gamma_pos: float, clip: float
) -> torch.Tensor:
    import torch
    import torch.nn.functional as F
    p = torch.sigmoid(logits)
    shifted = (p - clip).clamp_min(0.0) if clip > 0 else p
    positive = targets * (1 - p).pow(gamma_pos) * -F.logsigmoid(logits)
    negative = (1 - targets) * shifted.pow(gamma_neg) * -torch.log((1 - shifted).clamp_min(1e-8))
    return (positive + negative).mean()


def choose_thresholds(y_true: AnyArray, probs: AnyArray, fallback: float = DEFAULT_THRESHOLD) -> FloatArray:
    """Per-class decision thresholds that maximise each class's F1 on (validation) ``y_true``.

    The threshold sits halfway between the lowest probability still called positive and the next lower
    one (a margin on both sides rather than on the last positive itself). A class without a positive in
    ``y_true`` keeps ``fallback``: F1 is undefined there and no threshold is better supported than 0.5.
    """
    truth = np.asarray(y_true) > 0
    scores = np.asarray(probs, dtype=np.float64)
    if truth.shape != scores.shape or truth.ndim != 2:
        raise ValueError(f"y_true {truth.shape} and probs {scores.shape} must both be (n, K)")
    thresholds = np.full(scores.shape[1], fallback, dtype=np.float64)
    for k in range(scores.shape[1]):
        positives = int(truth[:, k].sum())
        if positives == 0:
            continue
        order = np.argsort(-scores[:, k], kind="mergesort")
        sorted_scores = scores[order, k]
        tp = np.cumsum(truth[order, k])
        # Only the last index of each run of equal scores is a reachable cut (ties go together).
        last_of_run = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
        cut = np.flatnonzero(last_of_run)
        f1 = 2 * tp[cut] / (cut + 1 + positives)
        best = int(cut[int(np.argmax(f1))])
        lowest_positive = sorted_scores[best]
        below = sorted_scores[best + 1] if best + 1 < len(sorted_scores) else 0.0
        thresholds[k] = (lowest_positive + below) / 2.0
    return thresholds


def apply_thresholds(probs: AnyArray, thresholds: AnyArray | list[float] | None) -> AnyArray:
    """The predicted (n, K) 0/1 sets: a class is present when its probability reaches its threshold."""
    scores = np.asarray(probs, dtype=np.float64)
    cut = np.full(scores.shape[1], DEFAULT_THRESHOLD) if thresholds is None else np.asarray(thresholds)
    if cut.shape != (scores.shape[1],):
        raise ValueError(f"{cut.shape[0] if cut.ndim else 0} thresholds for {scores.shape[1]} classes")
    return (scores >= cut[None, :]).astype(np.uint8)


def validation_scores(
    logits: torch.Tensor, labels: torch.Tensor
) -> tuple[float, float, float | None, float | None]:
    """A multi-label epoch's validation: loss (plain mean BCE), macro-F1 at 0.5, macro-AUC and mAP
    (None when no class has what they need in val)."""
    import torch
    import torch.nn.functional as F
    loss = float(F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype)).item())
    probs = torch.sigmoid(logits).cpu().numpy()
    truth = labels.cpu().numpy()
    macro_auc, mean_ap = macro_auc_and_map(truth, probs)
    macro_f1 = macro_f1_multilabel(truth, (probs >= DEFAULT_THRESHOLD).astype(np.uint8))
    return (
        loss,
        macro_f1,
        None if math.isnan(macro_auc) else macro_auc,
        None if math.isnan(mean_ap) else mean_ap,
    )


def early_stopping_score(val_macro_auc: float | None, val_loss: float | None) -> float | None:
    """What a multi-label run keeps its best epoch by: val macro-AUC (threshold-free; the thresholds are
    chosen after training), or minus the val loss when no class has a positive and a negative in val."""
    if val_macro_auc is not None:
        return val_macro_auc
    return -val_loss if val_loss is not None else None


def val_thresholds(
    labels: AnyArray | None, probs: AnyArray | None, num_classes: int
) -> tuple[list[float], float | None]:
    """Per-class thresholds that maximise F1 on val, and the val macro-F1 at them; without val 0.5
    everywhere and no F1."""
    if labels is None or probs is None:
        return [DEFAULT_THRESHOLD] * num_classes, None
    thresholds = choose_thresholds(labels, probs)
    return [float(t) for t in thresholds], macro_f1_multilabel(labels, apply_thresholds(probs, thresholds))
