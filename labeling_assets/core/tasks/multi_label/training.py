"""The multi-label training head: K independent sigmoids, BCE / focal / asymmetric losses with pos_weight, the
rarest-label sampler, validation macro-AUC (early stopping) and per-class thresholds chosen on val.

Imports only torch and numpy: it runs on a bare GPU machine with ``core/training``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from labeling_assets.core.tasks.kind import Sampling
from labeling_assets.core.training.config import TrainConfig
from labeling_assets.core.training.device_data import DeviceData
from labeling_assets.core.training.distributed import Distributed
from labeling_assets.core.training.multilabel import (
    check_indicator,
    check_marginal_targets,
    early_stopping_score,
    multilabel_loss,
    pos_weights,
    rarest_label_weights,
    val_thresholds,
    validation_scores,
)
from labeling_assets.core.training.types import AnyArray


class SigmoidHead:
    """Labels are (N, K) 0/1 indicators; soft targets are per-class marginals in [0, 1]."""

    # The TrainConfig fields only this head reads (a run of another kind does not log them).
    own_settings: tuple[str, ...] = (
        "multi_label_loss",
        "pos_weight",
        "multi_label_sampler",
        "effective_number_beta",
        "focal_alpha",
        "asl_gamma_neg",
        "asl_gamma_pos",
        "asl_clip",
    )

    def check_labels(
        self, labels: AnyArray, targets: AnyArray | None, num_classes: int
    ) -> tuple[AnyArray, AnyArray | None]:
        labels = check_indicator(labels, num_classes)
        if targets is not None:
            targets = check_marginal_targets(targets, len(labels), num_classes)
        return labels, targets

    def class_weights(self, labels: AnyArray, targets: AnyArray | None, config: TrainConfig) -> list[float]:
        """pos_weight per class from the prevalence of what is trained on (soft marginals count their
        expected positives)."""
        prevalence = labels if targets is None else targets
        return pos_weights(prevalence, config.pos_weight, config.effective_number_beta)

    def loss(
        self, logits: torch.Tensor, y: torch.Tensor, config: TrainConfig, weight: torch.Tensor | None
    ) -> torch.Tensor:
        return multilabel_loss(
            logits, y, kind=config.multi_label_loss, pos_weight=weight, focal_alpha=config.focal_alpha,
            focal_gamma=config.focal_gamma, asl_gamma_neg=config.asl_gamma_neg, asl_gamma_pos=config.asl_gamma_pos,
            asl_clip=config.asl_clip,
        )

    def sampling(
        self, data: DeviceData, labels: AnyArray, targets: AnyArray | None, weights: torch.Tensor, config: TrainConfig
    ) -> Sampling:
        """``weighted``: each item drawn by its rarest label (counts over the whole training set: the same on every
        rank); the sampler replaces pos_weight, as the single-label sampler replaces class weights."""
        sampler = config.multi_label_sampler
        if sampler == "weighted":
            present = np.asarray(labels if targets is None else targets) >= 0.5
            counts = torch.as_tensor(present.sum(axis=0), dtype=torch.float32, device=weights.device)
            n_empty = float((~present.any(axis=1)).sum())

            def weigh(rows: torch.Tensor) -> torch.Tensor:
                return rarest_label_weights(rows, counts, n_empty)

            return Sampling(sample_weights=weigh(data.labels) if data.resident else None, weigh=weigh)
        if sampler != "shuffle":
            raise ValueError(f"unknown sampler {sampler!r}; choose shuffle or weighted")
        return Sampling(loss_weight=weights)  # pos_weight (all ones with pos_weight="none")

    def select_val(self, labels: AnyArray, num_classes: int, distributed: Distributed) -> tuple[slice, AnyArray]:
        """Every rank scores the whole val set: AUC and thresholds need all rows at once, and the same rows on
        every rank give every rank the same early-stopping decision."""
        checked = check_indicator(labels, num_classes)
        return slice(0, len(checked)), checked

    def val_tensor(self, labels: AnyArray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(labels, dtype=np.float32))

    def validate(self, logits: torch.Tensor, y: torch.Tensor, distributed: Distributed) -> dict[str, float]:
        loss, macro_f1, macro_auc, mean_ap = validation_scores(logits, y)
        scores = {"val_loss": loss, "val_macro_f1": macro_f1, "val_macro_auc": macro_auc, "val_map": mean_ap}
        return {k: v for k, v in scores.items() if v is not None}

    def early_stopping_score(self, scores: Mapping[str, Any]) -> float | None:
        return early_stopping_score(scores.get("val_macro_auc"), scores.get("val_loss"))

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits)

    def thresholds(
        self, val_labels: AnyArray | None, val_probs: Callable[[], AnyArray] | None, num_classes: int,
        best: float | None,
    ) -> tuple[list[float] | None, float | None]:
        """Per-class thresholds that maximise F1 on val with the kept weights, and the val macro-F1 at them
        (which replaces the early-stopping score); 0.5 everywhere and no F1 without val."""
        return val_thresholds(val_labels, None if val_probs is None else val_probs(), num_classes)


HEAD = SigmoidHead()
