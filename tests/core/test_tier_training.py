"""Tier weights in the image classifier's training loop (docs/tiers.md, "Training by tier"): each training item's
weight multiplies the resident sampler's draw weights (1 with the plain shuffle, the class weight with the weighted
sampler), so a weight-2 item is drawn twice as often and a weight-0 item never."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import labeling_assets.core.training.loop as loop
from labeling_assets.core.training.config import TrainConfig
from tests.core.test_train import _blobs


@pytest.mark.parametrize("sampler", ["shuffle", "weighted"])
def test_item_weights_multiply_the_draw_weights(monkeypatch: pytest.MonkeyPatch, sampler: str) -> None:
    x, y = _blobs(64)
    drawn: list[torch.Tensor] = []
    real = loop.weighted_indices

    def spy(weights: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        drawn.append(weights.detach().cpu().clone())
        return real(weights, n, generator)

    monkeypatch.setattr(loop, "weighted_indices", spy)
    item_weights = np.where(np.arange(64) < 32, 0.0, 2.0)
    config = TrainConfig(num_classes=2, image_size=8, channels=1, epochs=1, batch_size=16, device="cpu",
                         sampler=sampler)  # type: ignore[arg-type]
    loop.fit(x, y, None, None, config, item_weights=item_weights)
    counts = np.bincount(y, minlength=2)
    per_class = len(y) / (2 * counts) if sampler == "weighted" else np.ones(2)
    expected = torch.as_tensor(per_class[y] * item_weights, dtype=torch.float32)
    assert drawn and torch.allclose(drawn[0], expected)
