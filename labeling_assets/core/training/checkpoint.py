"""Checkpoints: the weights plus everything needed to rebuild the model (config, classes, normalisation).

Plain tensors and lists, loaded with ``weights_only=True``: no pickled code is ever executed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import torch

from labeling_assets.core.training.config import TrainConfig
from labeling_assets.core.training.loop import FitResult
from labeling_assets.core.training.models import Classifier, build_model


def save_checkpoint(path: str | Path, result: FitResult, config: TrainConfig, classes: Sequence[str]) -> None:
    """Weights plus everything needed to rebuild the model (config, classes, normalisation)."""
    torch.save(
        {
            "state_dict": {k: v.cpu() for k, v in result.model.state_dict().items()},
            "config": asdict(replace(config, backbone=result.backbone)),
            "classes": list(classes),
            "mean": result.mean,
            "std": result.std,
        },
        path,
    )


def load_checkpoint(path: str | Path, map_location: str = "cpu") -> tuple[Classifier, TrainConfig, list[str]]:
    """The model, config and class names saved by :func:`save_checkpoint`."""
    payload = torch.load(path, map_location=map_location, weights_only=True)
    config = TrainConfig.from_dict(payload["config"])
    model = build_model(replace(config, weights_path=None), payload["mean"], payload["std"])
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return model, config, list(payload["classes"])
