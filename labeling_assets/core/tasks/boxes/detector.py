"""The box detector: a torchvision Faster R-CNN trained on consensus boxes (torch, torchvision and numpy only, so it
runs on a bare GPU machine like ``core/training``).

Two backbones: ``mobilenet_v3_320`` (torchvision's ``fasterrcnn_mobilenet_v3_large_320_fpn``, for real data) and
``tiny`` (three convolutions, trains in seconds on a CPU: tests and the CPU demo). Weights never come from the
network: both start from random weights (a local checkpoint may be loaded by the caller). Each training image carries
a weight (the trainer's ``box_weighting``: e.g. the mean consensus confidence of its boxes). torchvision gives no
per-box (nor per-image) loss, only the batch's: a step's loss is scaled by its images' mean weight, or, with
``sample_by_weight``, images are drawn in proportion to their weight and the loss is left as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn
from torchvision.models.detection import FasterRCNN, fasterrcnn_mobilenet_v3_large_320_fpn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.ops import MultiScaleRoIAlign

BACKBONES = ("tiny", "mobilenet_v3_320")


@dataclass(frozen=True)
class ImageBoxes:
    """One training image: ``image`` (C x H x W float in [0, 1]), ``boxes`` (N x 4 corners, pixels), ``labels``
    (N class indices from 0), ``weight`` (how much it counts: the trainer's ``box_weighting``; 1.0 evenly)."""

    image: torch.Tensor
    boxes: NDArray[np.float64]
    labels: NDArray[np.int64]
    weight: float = 1.0


class _TinyBackbone(nn.Module):
    """Three strided convolutions (stride 8, 64 channels): enough to overfit a handful of scenes in seconds."""

    out_channels = 64

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for c_in, c_out in ((3, 32), (32, 48), (48, 64)):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.body(x)
        return out


def build_detector(n_classes: int, *, backbone: str = "tiny", image_size: int = 160) -> FasterRCNN:
    """A Faster R-CNN for ``n_classes`` classes (plus background), images resized to ``image_size``; random weights."""
    if backbone == "mobilenet_v3_320":
        return fasterrcnn_mobilenet_v3_large_320_fpn(
            weights=None, weights_backbone=None, num_classes=n_classes + 1, min_size=image_size, max_size=image_size
        )
    if backbone != "tiny":
        raise ValueError(f"unknown detector backbone {backbone!r}; expected one of {list(BACKBONES)}")
    anchors = AnchorGenerator(sizes=((16, 32, 64),), aspect_ratios=((0.5, 1.0, 2.0),))
    return FasterRCNN(
        _TinyBackbone(), num_classes=n_classes + 1, rpn_anchor_generator=anchors,
        box_roi_pool=MultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=2),
        min_size=image_size, max_size=image_size,
        # A few digits per small scene: far fewer proposals than torchvision's defaults (2000 / 512) suffice.
        rpn_pre_nms_top_n_train=300, rpn_post_nms_top_n_train=100, rpn_pre_nms_top_n_test=200,
        rpn_post_nms_top_n_test=50, box_batch_size_per_image=64, rpn_batch_size_per_image=64,
    )  # fmt: skip


def _target(example: ImageBoxes, device: torch.device) -> dict[str, torch.Tensor]:
    return {"boxes": torch.as_tensor(example.boxes, dtype=torch.float32, device=device).reshape(-1, 4),
            "labels": torch.as_tensor(example.labels, dtype=torch.int64, device=device).reshape(-1) + 1}  # fmt: skip


def train_detector(
    model: FasterRCNN, examples: Sequence[ImageBoxes], *, steps: int, batch_size: int = 4, lr: float = 0.01,
    device: torch.device | str = "cpu", seed: int = 0, sample_by_weight: bool = False,
) -> list[float]:
    """Train ``model`` for ``steps`` SGD steps on batches drawn from ``examples``; the weighted loss of each step.
    The images' weights scale each step's loss (their mean), or with ``sample_by_weight`` decide how often each
    image is drawn (the loss unscaled)."""
    device = torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    model.to(device).train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=0.9,
                                weight_decay=1e-4)  # fmt: skip
    history = []
    weights = torch.tensor([max(float(e.weight), 1e-6) for e in examples], dtype=torch.float64)
    for _ in range(steps):
        size = min(batch_size, len(examples))
        if sample_by_weight:
            picks = torch.multinomial(weights, size, replacement=True, generator=generator).tolist()
        else:
            picks = torch.randint(len(examples), (size,), generator=generator).tolist()
        batch = [examples[i] for i in picks]
        losses = model([e.image.to(device) for e in batch], [_target(e, device) for e in batch])
        weight = 1.0 if sample_by_weight else float(np.mean([e.weight for e in batch]))
        loss = weight * sum(losses.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(float(loss.detach()))
    return history


@torch.no_grad()
def detect(
    model: FasterRCNN, images: Sequence[torch.Tensor], *, device: torch.device | str = "cpu"
) -> list[tuple[NDArray[Any], NDArray[Any], NDArray[Any]]]:
    """Per image: ``(boxes N x 4 in pixels, class indices from 0, scores)``, every box the model keeps."""
    model.to(device).eval()
    out = model([image.to(device) for image in images])
    return [(o["boxes"].cpu().numpy(), o["labels"].cpu().numpy() - 1, o["scores"].cpu().numpy()) for o in out]
