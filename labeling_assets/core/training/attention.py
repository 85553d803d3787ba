"""The attention head for EfficientNet-B0: multi-head self-attention over the final feature map.

Global average pooling weighs every position of the last feature map alike; on a chest X-ray the evidence is
often one small region. Here every spatial position of EfficientNet-B0's final (1280-channel) map is a token:
projected to ``dim``, plus a learned positional embedding, one pre-norm self-attention block with a residual
and a feed-forward layer, then mean-pooled and classified. It outputs logits like the linear head, so the
single-label and the multi-label training heads (softmax, per-class sigmoids) read it unchanged.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn
from torch.nn import functional

# EfficientNet-B0's features halve the picture five times (each stride-2 convolution pads k // 2).
FEATURE_STRIDES = 5
FEATURE_CHANNELS = 1280


def feature_grid(image_size: int) -> int:
    """The side of EfficientNet-B0's final feature map for square ``image_size`` inputs (7 at 224 px)."""
    side = image_size
    for _ in range(FEATURE_STRIDES):
        side = (side + 1) // 2
    return side


class AttentionHead(nn.Module):
    """Self-attention over the positions of a (N, C, H, W) feature map, pooled, then a linear classifier."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        grid: int,
        dim: int = 256,
        heads: int = 4,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.project = nn.Linear(in_channels, dim)
        # Learned for the training grid; another input size interpolates it (a model keeps working at any size).
        self.position = nn.Parameter(torch.zeros(1, dim, grid, grid))
        nn.init.trunc_normal_(self.position, std=0.02)
        self.norm1 = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, dropout=0.0, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.feed_forward = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.dropout = nn.Dropout(dropout)
        # Last, so the final nn.Linear of the model is the class layer (predict._num_outputs reads it).
        self.classifier = nn.Linear(dim, num_classes)

    def tokens(self, features: torch.Tensor) -> torch.Tensor:
        """(N, H*W, dim): the projected positions plus their positional embedding."""
        _, _, height, width = features.shape
        position: torch.Tensor = self.position
        if position.shape[-2:] != (height, width):
            position = functional.interpolate(position, size=(height, width), mode="bilinear", align_corners=False)
        x: torch.Tensor = self.project(features.flatten(2).transpose(1, 2))
        return x + position.flatten(2).transpose(1, 2).to(x.dtype)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.tokens(features)
        query = self.norm1(x)
        attended, _ = self.attention(query, query, query, need_weights=False)
        x = x + attended
        x = x + self.feed_forward(self.norm2(x))
        logits: torch.Tensor = self.classifier(self.dropout(x.mean(dim=1)))
        return logits


class EfficientNetAttention(nn.Module):
    """EfficientNet-B0's ``features`` (the same key names as torchvision's, so a local ImageNet state_dict loads)
    followed by :class:`AttentionHead` instead of average pooling and the linear classifier."""

    def __init__(self, num_classes: int, image_size: int, dim: int = 256, heads: int = 4) -> None:
        super().__init__()
        self.features = torchvision.models.efficientnet_b0(weights=None).features
        self.head = AttentionHead(FEATURE_CHANNELS, num_classes, feature_grid(image_size), dim=dim, heads=heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.features(x))
        return logits
