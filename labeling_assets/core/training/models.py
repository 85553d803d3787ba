"""The classifiers: a small CNN for tiny images, torchvision backbones, input normalisation built in.

Nothing is ever downloaded: pretrained weights come only from a local state_dict (``weights_path``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch import nn

from labeling_assets.core.training.attention import EfficientNetAttention
from labeling_assets.core.training.config import BACKBONES, TrainConfig, check_head, resolve_backbone
from labeling_assets.core.training.types import AnyArray


class SmallCNN(nn.Module):
    """Four 3x3 conv blocks and global pooling: enough for tiny images (8-63 px), fast on a CPU."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 32) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]

        self.features = nn.Sequential(
            *block(in_channels, width),
            *block(width, width),
            nn.MaxPool2d(2),
            *block(width, 2 * width),
            *block(2 * width, 2 * width),
            nn.MaxPool2d(2),
            *block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(4 * width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.classifier(self.features(x))
        return logits


class Classifier(nn.Module):
    """A backbone with its input normalisation built in.

    Takes uint8 images (N, C, H, W) or floats in [0, 1]; the mean/std of the training set travel with
    the weights, so a logged model needs no separate preprocessing recipe.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, backbone: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.backbone = backbone
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float() / 255.0
        # Normalise in the input's dtype (bf16 on the GPU path) to avoid an fp32 round trip.
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        logits: torch.Tensor = self.backbone(x)
        return logits


def _first_conv(model: nn.Module) -> tuple[nn.Module, str, nn.Conv2d]:
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            return parent, child, module
    raise ValueError("model has no Conv2d layer")


def _adapt_input_channels(model: nn.Module, in_channels: int) -> None:
    """Swap the stem convolution for one taking ``in_channels`` (RGB weights summed for grayscale)."""
    parent, child, conv = _first_conv(model)
    if conv.in_channels == in_channels:
        return
    new = nn.Conv2d(
        in_channels,
        conv.out_channels,
        kernel_size=conv.kernel_size,  # type: ignore[arg-type]
        stride=conv.stride,  # type: ignore[arg-type]
        padding=conv.padding,  # type: ignore[arg-type]
        dilation=conv.dilation,  # type: ignore[arg-type]
        groups=conv.groups,
        bias=conv.bias is not None,
    )
    with torch.no_grad():
        if in_channels == 1:
            # Summing keeps what (pretrained) RGB filters respond to when R = G = B.
            new.weight.copy_(conv.weight.sum(dim=1, keepdim=True))
        else:
            mean = conv.weight.mean(dim=1, keepdim=True)
            new.weight.copy_(mean.repeat(1, in_channels, 1, 1) * (conv.in_channels / in_channels))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)  # type: ignore[union-attr]
    setattr(parent, child, new)


def _load_local_weights(model: nn.Module, weights_path: str) -> list[str]:
    """Load a local state_dict, skipping tensors whose shape differs (the class head); returns skipped keys."""
    path = Path(weights_path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path} (weights are never downloaded)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise ValueError(f"no tensor in {path} matches the model's layers: wrong backbone?")
    model.load_state_dict(usable, strict=False)
    return sorted(set(own) - set(usable))


def build_backbone(
    name: str,
    num_classes: int,
    in_channels: int = 3,
    weights_path: str | None = None,
    *,
    head: str = "linear",
    image_size: int = 224,
) -> nn.Module:
    """A torchvision (or small) backbone with a ``num_classes`` head, built without downloading anything.

    ``head="attention"``: efficientnet_b0's features with the self-attention head (core/training/attention.py)
    instead of its pooled linear classifier; ``image_size`` sizes that head's positional embedding.
    """
    check_head(head, name)
    if name in ("small_cnn", "tiny_cnn"):
        model: nn.Module = SmallCNN(in_channels, num_classes, width=32 if name == "small_cnn" else 16)
        if weights_path:
            _load_local_weights(model, weights_path)
        return model
    if head == "attention":
        model = EfficientNetAttention(num_classes, image_size)
    elif name == "resnet18":
        model = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    elif name == "efficientnet_b0":
        model = torchvision.models.efficientnet_b0(weights=None, num_classes=num_classes)
    elif name == "mobilenet_v3_small":
        model = torchvision.models.mobilenet_v3_small(weights=None, num_classes=num_classes)
    else:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    if weights_path:
        # RGB ImageNet weights load before the stem is adapted, so grayscale gets summed filters.
        _load_local_weights(model, weights_path)
    _adapt_input_channels(model, in_channels)
    return model


def build_model(
    config: TrainConfig, mean: Sequence[float] | None = None, std: Sequence[float] | None = None
) -> Classifier:
    """The classifier for ``config`` (backbone resolved, input channels adapted, normalisation built in)."""
    name = resolve_backbone(config.backbone, config.image_size)
    backbone = build_backbone(
        name, config.num_classes, config.channels, config.weights_path, head=config.head, image_size=config.image_size
    )
    return Classifier(
        backbone,
        mean if mean is not None else [0.5] * config.channels,
        std if std is not None else [0.25] * config.channels,
    )


def channel_stats(images: AnyArray, max_images: int = 4096, seed: int = 0) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of pixels in [0, 1] over a sample of the images."""
    n = len(images)
    if n == 0:
        channels = images.shape[1]
        return [0.5] * channels, [0.25] * channels
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(n, size=min(n, max_images), replace=False))
    sample = torch.from_numpy(np.asarray(images[index])).float() / 255.0
    mean = sample.mean(dim=(0, 2, 3))
    std = sample.std(dim=(0, 2, 3)).clamp_min(1e-3)  # a constant channel must not divide by zero
    return mean.tolist(), std.tolist()
