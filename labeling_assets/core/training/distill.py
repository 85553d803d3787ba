"""Knowledge distillation (Hinton et al. 2015): a student trained on a teacher's softened outputs and on the labels.

loss = alpha * T^2 * KD_T(student, teacher) + (1 - alpha) * the kind's own loss on the hard labels or soft
consensus targets. ``T^2`` keeps the gradient of the soft term on the scale of the hard one as T grows.

- single-label (softmax): KD_T = KL(softmax(teacher / T) || softmax(student / T)), summed over classes, mean over
  items;
- multi-label (K sigmoids): KD_T = mean over items and classes of KL(Bernoulli(sigmoid(teacher / T)) ||
  Bernoulli(sigmoid(student / T))): each class's presence is its own two-way softmax.

The teacher's logits are computed once, on the un-augmented training images, and ride with the targets through
the training loop (``fit`` with a :class:`DistillHead`): the loop, its sampler, validation and early stopping are
the plain run's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from labeling_assets.core.tasks.kind import Sampling, TrainingHead
from labeling_assets.core.tasks.registry import training_head
from labeling_assets.core.training.config import TrainConfig, resolve_device
from labeling_assets.core.training.device_data import DeviceData
from labeling_assets.core.training.distributed import Distributed
from labeling_assets.core.training.loop import EpochStats, FitResult, fit
from labeling_assets.core.training.models import Classifier
from labeling_assets.core.training.predict import predict_logits
from labeling_assets.core.training.types import AnyArray, FloatArray, UInt8Array

MULTI_LABEL = "multi_label"


@dataclass(frozen=True)
class DistillSettings:
    """The Hinton loss's two knobs: the softening temperature and the weight of the teacher's term."""

    temperature: float = 4.0
    alpha: float = 0.7

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"distillation temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"distillation alpha must be in [0, 1], got {self.alpha}")


def kd_softmax(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(softmax(teacher/T) || softmax(student/T)), summed over classes, mean over items."""
    log_p_student = F.log_softmax(student / temperature, dim=1)
    log_p_teacher = F.log_softmax(teacher / temperature, dim=1)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=1)
    return kl.mean() * temperature**2


def kd_sigmoid(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * the mean over items and classes of KL(Bernoulli(sigmoid(teacher/T)) || Bernoulli(sigmoid(student/T)))."""
    s, t = student / temperature, teacher / temperature
    p_teacher = torch.sigmoid(t)
    kl = p_teacher * (F.logsigmoid(t) - F.logsigmoid(s)) + (1 - p_teacher) * (F.logsigmoid(-t) - F.logsigmoid(-s))
    return kl.mean() * temperature**2


def hinton_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    plain_loss: torch.Tensor,
    settings: DistillSettings,
    *,
    multi_label: bool = False,
) -> torch.Tensor:
    """alpha * T^2 * KD_T + (1 - alpha) * ``plain_loss`` (the kind's loss on labels or consensus targets)."""
    if settings.alpha == 0.0:
        return plain_loss  # exactly the plain run (no 0 * inf from a degenerate teacher)
    kd = (kd_sigmoid if multi_label else kd_softmax)(student, teacher, settings.temperature)
    return settings.alpha * kd + (1.0 - settings.alpha) * plain_loss


class _FirstColumns:
    """The training data as the kind's head sees it: the targets without the teacher's columns."""

    def __init__(self, data: DeviceData, k: int) -> None:
        self.resident = data.resident
        self.labels = data.labels[:, :k]


class DistillHead:
    """A kind's training head with the Hinton loss: the targets it trains on are (N, 2K) rows of [the kind's
    targets | the teacher's logits]; everything but the loss (sampler, validation, thresholds) is the kind's."""

    def __init__(self, base: TrainingHead, num_classes: int, settings: DistillSettings, multi_label: bool) -> None:
        self.base = base
        self.k = num_classes
        self.settings = settings
        self.multi_label = multi_label
        self.own_settings = base.own_settings

    def check_labels(
        self, labels: AnyArray, targets: AnyArray | None, num_classes: int
    ) -> tuple[AnyArray, AnyArray | None]:
        if targets is None or np.asarray(targets).shape[1:] != (2 * num_classes,):
            raise ValueError(f"distillation trains on (n, {2 * num_classes}) rows: targets then teacher logits")
        rows = np.asarray(targets, dtype=np.float32)
        labels, own = self.base.check_labels(labels, rows[:, :num_classes], num_classes)
        return labels, np.concatenate([np.asarray(own, dtype=np.float32), rows[:, num_classes:]], axis=1)

    def class_weights(self, labels: AnyArray, targets: AnyArray | None, config: TrainConfig) -> list[float]:
        return self.base.class_weights(labels, None if targets is None else targets[:, : self.k], config)

    def loss(
        self, logits: torch.Tensor, y: torch.Tensor, config: TrainConfig, weight: torch.Tensor | None
    ) -> torch.Tensor:
        plain = self.base.loss(logits, y[:, : self.k], config, weight)
        return hinton_loss(logits, y[:, self.k :], plain, self.settings, multi_label=self.multi_label)

    def sampling(
        self, data: DeviceData, labels: AnyArray, targets: AnyArray | None, weights: torch.Tensor, config: TrainConfig
    ) -> Sampling:
        own = None if targets is None else targets[:, : self.k]
        drawn = self.base.sampling(_FirstColumns(data, self.k), labels, own, weights, config)  # type: ignore[arg-type]
        if drawn.weigh is not None:  # a streamed chunk's rows carry the teacher's columns too
            inner = drawn.weigh
            drawn.weigh = lambda rows: inner(rows[:, : self.k])
        if drawn.sample_weights is not None and not data.resident:  # per class, applied as rows @ weights
            drawn.sample_weights = torch.cat([drawn.sample_weights, torch.zeros_like(drawn.sample_weights)])
        return drawn

    def select_val(self, labels: AnyArray, num_classes: int, distributed: Distributed) -> tuple[slice, AnyArray]:
        return self.base.select_val(labels, num_classes, distributed)

    def val_tensor(self, labels: AnyArray) -> torch.Tensor:
        return self.base.val_tensor(labels)

    def validate(self, logits: torch.Tensor, y: torch.Tensor, distributed: Distributed) -> dict[str, float]:
        return self.base.validate(logits, y, distributed)

    def early_stopping_score(self, scores: Mapping[str, Any]) -> float | None:
        return self.base.early_stopping_score(scores)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return self.base.probabilities(logits)

    def thresholds(
        self, val_labels: AnyArray | None, val_probs: Callable[[], AnyArray] | None, num_classes: int,
        best: float | None,
    ) -> tuple[list[float] | None, float | None]:
        return self.base.thresholds(val_labels, val_probs, num_classes, best)


def own_targets(labels: AnyArray, targets: AnyArray | None, num_classes: int, multi_label: bool) -> FloatArray:
    """What the kind's loss trains on, as float rows: the soft targets when given, else one-hot rows of class
    indices (the soft loss with one-hot rows is exactly the hard one) or the 0/1 label sets."""
    if targets is not None:
        return np.asarray(targets, dtype=np.float32)
    if multi_label:
        return np.asarray(labels, dtype=np.float32)
    index = np.asarray(labels, dtype=np.int64)
    if index.size and (index.min() < 0 or index.max() >= num_classes):
        raise ValueError(f"labels must be class indices in 0..{num_classes - 1}")
    return np.eye(num_classes, dtype=np.float32)[index]


def teacher_logits(teacher: Classifier, images: UInt8Array, config: TrainConfig) -> FloatArray:
    """The teacher's logits for the training images (one pass, no augmentation), on the host."""
    device = resolve_device(config.device)
    logits = predict_logits(teacher.to(device), images, device=device, batch_size=config.eval_batch_size,
                            amp=config.amp, channels_last=config.channels_last)  # fmt: skip
    if logits.shape[1] != config.num_classes:
        raise ValueError(f"the teacher predicts {logits.shape[1]} classes, the student {config.num_classes}")
    out: FloatArray = logits.cpu().numpy().astype(np.float32)
    return out


def distill(
    train_images: UInt8Array,
    train_labels: AnyArray,
    val_images: UInt8Array | None,
    val_labels: AnyArray | None,
    config: TrainConfig,
    teacher: Classifier,
    settings: DistillSettings,
    *,
    train_targets: AnyArray | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> FitResult:
    """Train the student ``config`` describes from ``teacher`` with the Hinton loss (``fit`` otherwise: the same
    sampler, validation on hard labels, early stopping and thresholds as a plain run of the kind)."""
    multi = config.task_kind == MULTI_LABEL
    taught = teacher_logits(teacher, train_images, config)
    own = own_targets(train_labels, train_targets, config.num_classes, multi)
    rows = np.concatenate([own, taught], axis=1)
    head = DistillHead(training_head(config.task_kind), config.num_classes, settings, multi)
    if log is not None:
        log(f"distilling: T={settings.temperature} alpha={settings.alpha} from a teacher of "
            f"{parameter_count(teacher):,} parameters")  # fmt: skip
    return fit(train_images, train_labels, val_images, val_labels, config, on_epoch=on_epoch, log=log,
               train_targets=rows, head=head)  # fmt: skip


def parameter_count(model: torch.nn.Module) -> int:
    """Trainable and frozen parameters (buffers such as BatchNorm statistics excluded)."""
    return sum(p.numel() for p in model.parameters())
