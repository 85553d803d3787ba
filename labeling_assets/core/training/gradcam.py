"""Grad-CAM (Selvaraju et al. 2017) with torch hooks: where a classifier looked for a class, as a heat map on the image.

The map of class ``k`` is ReLU(sum_c w_c A_c), where A is the target layer's output (the last feature map before the
global pooling) and w_c the spatial mean of d logit_k / d A_c: for the softmax head that is the class's logit, for the
multi-label head the class's own sigmoid input, so both kinds use the same rule. The map is upsampled (bilinear) to
the input size and scaled to [0, 1] per image. Overlays and the grid are numpy and PIL only.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import nn
from torchvision.models import EfficientNet, MobileNetV3, ResNet

from labeling_assets.core.training.models import Classifier, SmallCNN
from labeling_assets.core.training.types import AnyArray, FloatArray, UInt8Array


class NotConvolutional(ValueError):
    """The model has no spatial feature map to explain (no Conv2d layer)."""


def target_layer(model: nn.Module) -> nn.Module:
    """The layer whose output the global pooling reads: the last spatial feature map, after its activation.

    SmallCNN: the ReLU after its last conv; ResNet: ``layer4`` (the last residual block's output); EfficientNet and
    MobileNetV3: ``features`` (ending in the last 1x1 conv, its norm and activation). Any other net: its last Conv2d.
    """
    backbone = model.backbone if isinstance(model, Classifier) else model
    if isinstance(backbone, SmallCNN):
        return backbone.features[-2]
    if isinstance(backbone, ResNet):
        layer4: nn.Module = backbone.layer4
        return layer4
    if isinstance(backbone, EfficientNet | MobileNetV3):
        features: nn.Module = backbone.features
        return features
    convs = [m for m in backbone.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise NotConvolutional(f"{type(backbone).__name__} has no Conv2d layer: Grad-CAM needs a spatial feature map")
    return convs[-1]


def class_activation_maps(
    model: nn.Module, images: AnyArray | torch.Tensor, classes: Sequence[int], *, layer: nn.Module | None = None
) -> FloatArray:
    """Grad-CAM maps (N, H, W) in [0, 1] of ``classes[i]`` for uint8 ``images[i]`` (N, C, H, W), on the CPU.

    A map that is zero everywhere (no positive evidence for the class) stays zero.
    """
    x = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(images))
    if len(x) != len(classes):
        raise ValueError(f"{len(x)} images and {len(classes)} classes")
    if len(x) == 0:
        return np.zeros((0, *x.shape[-2:]), dtype=np.float32)
    layer = layer or target_layer(model)
    seen: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _i, out: seen.append(out))
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            # Floats in [0, 1] (the classifier's other input form) that require grad: the map needs a graph even
            # when the weights are frozen.
            device = next(model.parameters()).device
            inputs = (x.float() / 255.0 if x.dtype == torch.uint8 else x.float()).to(device).requires_grad_(True)
            logits = model(inputs)
            activations = seen[-1]
            picked = logits.gather(1, torch.as_tensor(list(classes), dtype=torch.long).view(-1, 1)).sum()
            # Each image's logit depends on its own activations only (eval mode): one backward pass for all.
            (grads,) = torch.autograd.grad(picked, activations)
    finally:
        handle.remove()
        model.train(was_training)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * activations).sum(dim=1, keepdim=True)).detach().float().cpu()
    cam = F.interpolate(cam, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).amax(dim=1).clamp_min(1e-12).view(-1, 1, 1)
    result: FloatArray = (cam / peak).numpy().astype(np.float32)
    return result


def mass_share(cam: FloatArray, rows: slice, cols: slice) -> float:
    """The share of a map's total mass inside ``cam[rows, cols]`` (0 for an empty map)."""
    total = float(cam.sum())
    return float(cam[rows, cols].sum()) / total if total > 0 else 0.0


def colormap(cam: FloatArray) -> UInt8Array:
    """A jet-like colour (H, W, 3) for values in [0, 1]: blue (none) through green to red (most)."""
    v = np.clip(cam, 0.0, 1.0)[..., None]
    centres = np.array([0.75, 0.5, 0.25])  # where red, green and blue peak
    rgb = np.clip(1.5 - np.abs(4.0 * (v - centres)), 0.0, 1.0)
    out: UInt8Array = (rgb * 255).round().astype(np.uint8)
    return out


def overlay(image: AnyArray, cam: FloatArray, alpha: float = 0.45) -> UInt8Array:
    """The map as a colour blended on the image: uint8 (H, W, 3) from a uint8 (C, H, W) image (grey is repeated)."""
    picture = np.asarray(image, dtype=np.float32)
    if picture.ndim == 2:
        picture = picture[None]
    picture = np.repeat(picture, 3, axis=0) if picture.shape[0] == 1 else picture[:3]
    rgb = picture.transpose(1, 2, 0)
    blended = (1 - alpha) * rgb + alpha * colormap(cam).astype(np.float32)
    out: UInt8Array = blended.round().clip(0, 255).astype(np.uint8)
    return out


def overlay_png(image: AnyArray, cam: FloatArray, *, size: int = 224, alpha: float = 0.45) -> bytes:
    """The overlay as a ``size`` px square PNG (nearest: a tiny image's pixels stay crisp)."""
    return _png(Image.fromarray(overlay(image, cam, alpha)).resize((size, size), Image.Resampling.NEAREST))


@dataclass(frozen=True)
class Tile:
    """One item of the grid: its image (uint8 C, H, W), its map and what the caption says."""

    image: AnyArray
    cam: FloatArray
    caption: str


def grid_png(tiles: Sequence[Tile], *, columns: int = 4, size: int = 112, alpha: float = 0.45) -> bytes:
    """The tiles as one PNG: per tile the image, its overlay beside it and two caption lines under them."""
    rows = max(1, -(-len(tiles) // columns))
    cell_w, cell_h = 2 * size + 12, size + 34
    canvas = Image.new("RGB", (columns * cell_w, rows * cell_h), "white")
    draw = ImageDraw.Draw(canvas)
    for n, tile in enumerate(tiles):
        x, y = (n % columns) * cell_w + 4, (n // columns) * cell_h + 4
        original = Image.fromarray(overlay(tile.image, np.zeros_like(tile.cam), alpha=0.0))
        heat = Image.fromarray(overlay(tile.image, tile.cam, alpha))
        canvas.paste(original.resize((size, size), Image.Resampling.NEAREST), (x, y))
        canvas.paste(heat.resize((size, size), Image.Resampling.NEAREST), (x + size + 2, y))
        for line, text in enumerate(tile.caption.split("\n")[:2]):
            draw.text((x, y + size + 2 + 13 * line), text[:40], fill="black")
    return _png(canvas)


def _png(picture: Image.Image) -> bytes:
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()
