"""Distillation: the Hinton loss against its formula on hand-computed cases, and a student that follows its teacher."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from labeling_assets.core.tasks.registry import training_head
from labeling_assets.core.training.config import TrainConfig
from labeling_assets.core.training.distill import (
    DistillHead,
    DistillSettings,
    distill,
    hinton_loss,
    kd_sigmoid,
    kd_softmax,
    own_targets,
)
from labeling_assets.core.training.losses import classification_loss
from labeling_assets.core.training.models import Classifier
from labeling_assets.core.training.predict import predict_proba

torch.set_num_threads(1)

# Teacher logits [ln 3, 0] over student logits [0, 0] at T = 1: the teacher says 3:1, the student 1:1.
KL_3_TO_1_VS_EVEN = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)


def test_softmax_kd_is_t_squared_times_the_kl_of_the_softened_distributions() -> None:
    student, teacher = torch.zeros(1, 2), torch.tensor([[math.log(3.0), 0.0]])
    assert kd_softmax(student, teacher, 1.0).item() == pytest.approx(KL_3_TO_1_VS_EVEN, rel=1e-6)
    # At T = 2 the teacher's 3:1 softens to sqrt(3):1; the KL is scaled by T^2 = 4.
    p = math.sqrt(3) / (math.sqrt(3) + 1)
    kl = p * math.log(p / 0.5) + (1 - p) * math.log((1 - p) / 0.5)
    assert kd_softmax(student, teacher, 2.0).item() == pytest.approx(4 * kl, rel=1e-6)
    assert kd_softmax(teacher, teacher, 3.0).item() == pytest.approx(0.0, abs=1e-7)


def test_sigmoid_kd_averages_each_classes_bernoulli_kl_over_items_and_classes() -> None:
    # Class 0: teacher P = 0.75 against the student's 0.5; class 1: both agree (KL 0).
    student = torch.zeros(1, 2)
    teacher = torch.tensor([[math.log(3.0), 0.0]])
    assert kd_sigmoid(student, teacher, 1.0).item() == pytest.approx(KL_3_TO_1_VS_EVEN / 2, rel=1e-6)
    p = math.sqrt(3) / (math.sqrt(3) + 1)  # sigmoid(ln 3 / 2)
    kl = p * math.log(p / 0.5) + (1 - p) * math.log((1 - p) / 0.5)
    assert kd_sigmoid(student, teacher, 2.0).item() == pytest.approx(4 * kl / 2, rel=1e-6)


def test_the_hinton_loss_weighs_the_teacher_by_alpha_and_the_plain_loss_by_one_minus_alpha() -> None:
    student, teacher = torch.zeros(1, 2), torch.tensor([[math.log(3.0), 0.0]])
    plain = torch.tensor(0.9)
    mixed = hinton_loss(student, teacher, plain, DistillSettings(temperature=1.0, alpha=0.25))
    assert mixed.item() == pytest.approx(0.25 * KL_3_TO_1_VS_EVEN + 0.75 * 0.9, rel=1e-6)
    assert hinton_loss(student, teacher, plain, DistillSettings(alpha=0.0)).item() == pytest.approx(0.9)
    with pytest.raises(ValueError, match="alpha"):
        DistillSettings(alpha=1.5)
    with pytest.raises(ValueError, match="temperature"):
        DistillSettings(temperature=0.0)


@pytest.mark.parametrize("kind", ["single_label", "multi_label"])
def test_at_alpha_zero_the_distillation_head_gives_exactly_the_kinds_own_loss(kind: str) -> None:
    torch.manual_seed(0)
    k = 3
    logits, teacher = torch.randn(8, k), torch.randn(8, k) * 5
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    multi = kind == "multi_label"
    targets = np.eye(k, dtype=np.float32)[labels]
    config = TrainConfig(num_classes=k, task_kind=kind)
    weight = torch.tensor([1.0, 2.0, 0.5])
    head = DistillHead(training_head(kind), k, DistillSettings(temperature=4.0, alpha=0.0), multi)
    rows = torch.cat([torch.from_numpy(own_targets(labels if not multi else targets, None, k, multi)), teacher], 1)
    plain = training_head(kind).loss(logits, torch.from_numpy(labels if not multi else targets), config, weight)
    assert head.loss(logits, rows, config, weight).item() == pytest.approx(plain.item(), rel=1e-6)
    if not multi:  # one-hot rows of the labels: the class-weighted cross-entropy on the indices
        hard = classification_loss(logits, torch.from_numpy(labels), weight=weight)
        assert head.loss(logits, rows, config, weight).item() == pytest.approx(hard.item(), rel=1e-6)


class _SwappedCorners(nn.Module):
    """A teacher that reads the corner the blobs' class is decided by, and says the other class."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top_left = x[:, 0, :4, :4].mean(dim=(1, 2))
        bottom_right = x[:, 0, 4:, 4:].mean(dim=(1, 2))
        return torch.stack([bottom_right, top_left], dim=1) * 4.0


def _blobs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two classes: a bright square top-left (0) or bottom-right (1) on noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.integers(0, 60, (n, 1, 8, 8)).astype(np.uint8)
    for i, label in enumerate(y):
        x[i, 0, :4, :4] = 220 if label == 0 else x[i, 0, :4, :4]
        x[i, 0, 4:, 4:] = 220 if label == 1 else x[i, 0, 4:, 4:]
    return x, y


@pytest.mark.parametrize("kind", ["single_label", "multi_label"])
def test_a_student_follows_its_teacher_at_alpha_one_and_the_labels_at_alpha_zero(kind: str) -> None:
    x, y = _blobs(256)
    xv, yv = _blobs(64, seed=1)
    multi = kind == "multi_label"
    labels = np.eye(2, dtype=np.uint8)[y] if multi else y
    teacher = Classifier(_SwappedCorners(), [0.5], [0.25])
    config = TrainConfig(num_classes=2, image_size=8, channels=1, epochs=4, batch_size=32, lr=3e-3, device="cpu",
                         task_kind=kind)  # fmt: skip
    agreement = {}
    for alpha in (0.0, 1.0):
        result = distill(x, labels, None, None, config, teacher, DistillSettings(temperature=2.0, alpha=alpha))
        predicted = predict_proba(result.model, xv).argmax(1)  # single-label: softmax; sets: sigmoids
        agreement[alpha] = float((predicted == yv).mean())
    assert agreement[0.0] > 0.9  # the labels win
    assert agreement[1.0] < 0.1  # the (wrong) teacher wins: its logits reached the loss


def test_distillation_refuses_a_teacher_of_other_classes() -> None:
    x, y = _blobs(64)
    teacher = Classifier(_SwappedCorners(), [0.5], [0.25])
    config = TrainConfig(num_classes=3, image_size=8, channels=1, epochs=1, batch_size=32, device="cpu")
    with pytest.raises(ValueError, match="teacher predicts 2 classes"):
        distill(x, y, None, None, config, teacher, DistillSettings())
