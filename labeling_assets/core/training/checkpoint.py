"""Checkpoints: the weights plus everything needed to rebuild the model (config, classes, normalisation).

Plain tensors and lists, loaded with ``weights_only=True``: no pickled code is ever executed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

import torch

from labeling_assets.core.training.config import TrainConfig
from labeling_assets.core.training.loop import EpochStats, FitResult
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
            # Multi-label: the per-class decision thresholds chosen on val (None for single-label).
            "thresholds": result.thresholds,
            # The run's summary, so a process that only launched torchrun can log and register it.
            "fit": _fit_summary(result),
        },
        path,
    )


def _fit_summary(result: FitResult) -> dict[str, Any]:
    summary = {f.name: getattr(result, f.name) for f in fields(result) if f.name not in ("model", "history")}
    summary["history"] = [asdict(stats) for stats in result.history]
    return summary


def load_fit_result(path: str | Path) -> tuple[FitResult, TrainConfig, list[str]]:
    """The training result saved with a checkpoint (model on the CPU, history, summary), its config and
    classes: what ``python -m labeling_assets.core.training`` leaves for the process that launched it."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if "fit" not in payload:
        raise ValueError(f"{path}: a checkpoint without a training summary (written before it was kept)")
    model, config, classes = load_checkpoint(path)
    summary = dict(payload["fit"])
    history = [EpochStats(**stats) for stats in summary.pop("history")]
    return FitResult(model=model, history=history, **summary), config, classes


def load_thresholds(path: str | Path) -> list[float] | None:
    """The per-class decision thresholds of a multi-label checkpoint (None: single-label, or a checkpoint
    written before thresholds were kept; 0.5 is then the only sensible cut)."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    thresholds = payload.get("thresholds")
    return [float(t) for t in thresholds] if thresholds is not None else None


def load_checkpoint(path: str | Path, map_location: str = "cpu") -> tuple[Classifier, TrainConfig, list[str]]:
    """The model, config and class names saved by :func:`save_checkpoint`."""
    payload = torch.load(path, map_location=map_location, weights_only=True)
    config = TrainConfig.from_dict(payload["config"])
    model = build_model(replace(config, weights_path=None), payload["mean"], payload["std"])
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return model, config, list(payload["classes"])
