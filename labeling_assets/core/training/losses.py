"""Losses, class weights and class-balanced sampling, with hard labels or soft targets."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from labeling_assets.core.training.types import AnyArray, FloatArray


def class_weights_from_labels(labels: AnyArray, num_classes: int) -> list[float]:
    """``total / (n_classes * count)`` per class (DESIGN §6); classes without examples get 1.0."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.ones(num_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.tolist()


def classification_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    kind: str = "ce",
    weight: torch.Tensor | None = None,
    gamma: float = 2.0,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Class-weighted cross-entropy or focal loss, a weighted mean over the batch.

    Focal loss scales each item's cross-entropy by ``(1 - p_true) ** gamma`` so well-classified items
    (usually of the big classes) stop dominating; with ``gamma = 0`` it equals cross-entropy.

    ``targets`` are class indices (N,) or class probabilities (N, K), e.g. a consensus posterior: soft
    targets keep the crowd's doubt instead of betting on the argmax. With one-hot rows the soft path
    gives exactly the hard loss (same class weighting, smoothing and focal term).
    """
    if targets.dim() == 2:
        return _soft_target_loss(logits, targets, kind, weight, gamma, label_smoothing)
    if kind == "ce":
        return F.cross_entropy(logits, targets, weight=weight, label_smoothing=label_smoothing)
    if kind != "focal":
        raise ValueError(f"unknown loss {kind!r}; choose ce or focal")
    log_probs = F.log_softmax(logits, dim=1)
    log_p_true = log_probs.gather(1, targets[:, None]).squeeze(1)
    focal = (1.0 - log_p_true.exp()).clamp_min(0.0) ** gamma
    if label_smoothing:
        ce = (1 - label_smoothing) * -log_p_true - label_smoothing * log_probs.mean(dim=1)
    else:
        ce = -log_p_true
    per_item = focal * ce
    if weight is None:
        return per_item.mean()
    item_weight = weight[targets]
    return (per_item * item_weight).sum() / item_weight.sum()


def _soft_target_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    kind: str,
    weight: torch.Tensor | None,
    gamma: float,
    label_smoothing: float,
) -> torch.Tensor:
    if kind not in ("ce", "focal"):
        raise ValueError(f"unknown loss {kind!r}; choose ce or focal")
    log_probs = F.log_softmax(logits, dim=1)
    smoothed = targets
    if label_smoothing:
        smoothed = (1 - label_smoothing) * targets + label_smoothing / targets.shape[1]
    class_weight = torch.ones_like(log_probs[0]) if weight is None else weight
    item_weight = targets @ class_weight  # the expected weight of the item's class, before smoothing
    if kind == "ce":
        # As F.cross_entropy: class weights scale each class's term (smoothing terms included).
        per_item = -(smoothed * class_weight * log_probs).sum(dim=1)
    else:
        # As the hard focal loss above: the item's weight scales its whole focal term.
        p_true = (targets * log_probs.exp()).sum(dim=1)
        focal = (1.0 - p_true).clamp_min(0.0) ** gamma
        per_item = focal * -(smoothed * log_probs).sum(dim=1) * item_weight
    return per_item.sum() / item_weight.sum()


def weighted_indices(
    sample_weights: torch.Tensor, n: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``n`` indices drawn with replacement proportionally to ``sample_weights``, on their device.

    The GPU-side equivalent of ``WeightedRandomSampler``: inverse-CDF search instead of
    ``torch.multinomial``, which caps the number of categories at 2**24.
    """
    cdf = torch.cumsum(sample_weights.double(), dim=0)
    draws = torch.rand(n, device=sample_weights.device, dtype=torch.float64, generator=generator) * cdf[-1]
    return torch.searchsorted(cdf, draws).clamp_(max=len(sample_weights) - 1)


def check_soft_targets(targets: AnyArray, n: int, num_classes: int) -> FloatArray:
    """Soft targets as float32 (n, num_classes) probability rows; anything else is a clear error."""
    targets = np.asarray(targets, dtype=np.float32)
    if targets.shape != (n, num_classes):
        raise ValueError(
            f"soft targets must be ({n}, {num_classes}) class probabilities, got {targets.shape}"
        )
    if not np.isfinite(targets).all() or (targets < 0).any():
        raise ValueError("soft targets must be finite and non-negative")
    sums = targets.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-3):
        bad = int(np.flatnonzero(~np.isclose(sums, 1.0, atol=1e-3))[0])
        raise ValueError(f"soft target rows must sum to 1 (row {bad} sums to {sums[bad]:.4f})")
    normalized: FloatArray = targets / sums[:, None]
    return normalized
