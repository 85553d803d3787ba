"""The single-label training head: softmax over the classes, (focal) cross-entropy, class-balanced sampling,
validation loss / accuracy / macro-F1 summed over ranks, no thresholds (argmax decides).

Imports only torch and numpy: it runs on a bare GPU machine with ``core/training``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from labeling_assets.core.tasks.kind import Sampling
from labeling_assets.core.training.config import TrainConfig
from labeling_assets.core.training.device_data import DeviceData
from labeling_assets.core.training.distributed import Distributed
from labeling_assets.core.training.losses import (
    check_soft_targets,
    class_weights_from_labels,
    classification_loss,
)
from labeling_assets.core.training.types import AnyArray


def confusion(y_true: torch.Tensor, y_pred: torch.Tensor, num_classes: int) -> torch.Tensor:
    return torch.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes).view(
        num_classes, num_classes
    )


def macro_f1_from_confusion(cm: torch.Tensor) -> float:
    # Same definition as core.training.metrics.macro_f1, computed on the device with one transfer.
    tp = cm.diag().double()
    support, predicted = cm.sum(1).double(), cm.sum(0).double()
    precision = torch.where(predicted > 0, tp / predicted.clamp_min(1), torch.zeros_like(tp))
    recall = torch.where(support > 0, tp / support.clamp_min(1), torch.zeros_like(tp))
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp_min(1e-12), torch.zeros_like(tp))
    present = (support > 0) | (predicted > 0)
    return float(f1[present].mean().item()) if bool(present.any()) else 0.0


class SoftmaxHead:
    """Labels are class indices (N,); soft targets are (N, K) class probabilities (e.g. a Dawid-Skene posterior)."""

    # The TrainConfig fields only this head reads (a multi-label run has always logged loss and sampler too).
    own_settings: tuple[str, ...] = ()

    def check_labels(
        self, labels: AnyArray, targets: AnyArray | None, num_classes: int
    ) -> tuple[AnyArray, AnyArray | None]:
        labels = np.asarray(labels, dtype=np.int64)
        if labels.min() < 0 or labels.max() >= num_classes:
            raise ValueError(f"labels must be class indices in 0..{num_classes - 1}")
        if targets is not None:
            targets = check_soft_targets(targets, len(labels), num_classes)
        return labels, targets

    def class_weights(self, labels: AnyArray, targets: AnyArray | None, config: TrainConfig) -> list[float]:
        """total / (K * count) from the hard labels (soft targets too: their argmax is the stored label)."""
        return class_weights_from_labels(labels, config.num_classes)

    def loss(
        self, logits: torch.Tensor, y: torch.Tensor, config: TrainConfig, weight: torch.Tensor | None
    ) -> torch.Tensor:
        return classification_loss(
            logits, y, kind=config.loss, weight=weight, gamma=config.focal_gamma,
            label_smoothing=config.label_smoothing,
        )

    def sampling(
        self, data: DeviceData, labels: AnyArray, targets: AnyArray | None, weights: torch.Tensor, config: TrainConfig
    ) -> Sampling:
        """``weighted``: class-balanced draws (the sampler already balances: the loss is not weighted too)."""
        if config.sampler == "weighted":
            if not data.resident:  # streaming: balanced within each chunk by these class weights
                return Sampling(sample_weights=weights)
            soft = targets is not None
            return Sampling(sample_weights=data.labels @ weights if soft else weights[data.labels])
        if config.sampler != "shuffle":
            raise ValueError(f"unknown sampler {config.sampler!r}; choose shuffle or weighted")
        return Sampling(loss_weight=weights if config.class_weighted_loss else None)

    def select_val(self, labels: AnyArray, num_classes: int, distributed: Distributed) -> tuple[slice, AnyArray]:
        """Each rank scores its shard; the sums are added over ranks in :meth:`validate`."""
        return distributed.val_shard(len(labels)), labels

    def val_tensor(self, labels: AnyArray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(labels, dtype=np.int64))

    def validate(self, logits: torch.Tensor, y: torch.Tensor, distributed: Distributed) -> dict[str, float]:
        """Validation loss, accuracy and macro-F1; under DDP the sums (loss, confusion matrix) are added over
        ranks, so every rank sees the same figures."""
        k = logits.shape[1]
        loss_sum = F.cross_entropy(logits, y, reduction="sum").double().reshape(1)
        cm = confusion(y, logits.argmax(dim=1), k).double().reshape(-1)
        totals = distributed.all_reduce_sum(torch.cat([loss_sum, cm]))
        cm = totals[1:].view(k, k)
        n = max(1.0, float(cm.sum().item()))
        return {"val_loss": float(totals[0].item()) / n, "val_accuracy": float(cm.diag().sum().item()) / n,
                "val_macro_f1": macro_f1_from_confusion(cm)}

    def early_stopping_score(self, scores: Mapping[str, Any]) -> float | None:
        value = scores.get("val_macro_f1")
        return None if value is None else float(value)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits, dim=1)

    def thresholds(
        self, val_labels: AnyArray | None, val_probs: Callable[[], AnyArray] | None, num_classes: int,
        best: float | None,
    ) -> tuple[list[float] | None, float | None]:
        """None: the most probable class is the answer."""
        return None, best


HEAD = SoftmaxHead()
