"""Safe per-batch augmentation on the training device (DESIGN §6).

A small rotation, brightness/contrast and mild Gaussian noise. Horizontal flip is OFF by default
because it changes the meaning of many images: a left ear becomes a right ear, a 'b' becomes a 'd', a
mirrored digit is not a digit. Turn it on only for classes that are truly mirror-symmetric.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from labeling_assets.core.training.config import AugmentConfig


def augment_batch(x: torch.Tensor, config: AugmentConfig) -> torch.Tensor:
    """Random per-item augmentation of a float batch in [0, 1] (N, C, H, W), entirely on x's device."""
    n = x.shape[0]
    device, dtype = x.device, x.dtype
    if config.rotation_deg:
        angle = (torch.rand(n, device=device) * 2 - 1) * math.radians(config.rotation_deg)
        cos, sin, zero = angle.cos(), angle.sin(), torch.zeros(n, device=device)
        theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
        grid = F.affine_grid(theta.to(dtype), list(x.shape), align_corners=False)
        # Border padding repeats the edge (the background, usually) instead of inventing black corners.
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if config.brightness or config.contrast:
        scale = 1 + (torch.rand(n, 1, 1, 1, device=device, dtype=dtype) * 2 - 1) * config.contrast
        shift = (torch.rand(n, 1, 1, 1, device=device, dtype=dtype) * 2 - 1) * config.brightness
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * scale + mean + shift
    if config.noise_std:
        sigma = torch.rand(n, 1, 1, 1, device=device, dtype=dtype) * config.noise_std
        x = x + torch.randn_like(x) * sigma
    if config.hflip:
        flip = torch.rand(n, 1, 1, 1, device=device) < 0.5
        x = torch.where(flip, x.flip(-1), x)
    return x.clamp(0.0, 1.0)
