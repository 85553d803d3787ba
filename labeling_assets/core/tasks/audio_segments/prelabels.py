"""The frame classifier's regions as Label Studio pre-labels, and how unsure it is (the queue's order). Provides the
bodies of the kind's ``prediction``, ``informativeness``, ``review_model_line``, ``prediction_report`` and
``fit_baseline``, with the kind's signatures; ``probs`` is one item's :func:`.trainer.model_output`.

An item's uncertainty is the mean over its 10 ms frames of the model's entropy over the codes (``none`` and each
class), divided by its maximum: 0 when the model is sure of every frame, 1 when every frame is a coin toss. It
ranks an utterance the model is lost on (a language it mixes up, an unfamiliar voice) before one it is sure of,
whatever its length. The prediction's score is its complement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

FROM_NAME = "label"  # the <Labels> of the kind's config (interfaces: fixed)
TO_NAME = "audio"  # its <Audio>


def region_result(regions: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Label Studio's result of regions ``{start, end, label}`` in seconds (a region's ``score``, when given, kept);
    no region: an empty result."""
    out = []
    for n, r in enumerate(regions):
        region: dict[str, Any] = {
            "id": f"r{n}", "from_name": FROM_NAME, "to_name": TO_NAME, "type": "labels",
            "value": {"start": float(r["start"]), "end": float(r["end"]), "channel": 0, "labels": [str(r["label"])]},
        }  # fmt: skip
        if "score" in r:
            region["score"] = float(r["score"])
        out.append(region)
    return out


def uncertainty(probs: Mapping[str, Any] | None) -> float:
    """The item's mean normalised frame entropy (module docstring); 1 without an output."""
    if not probs or "mean_entropy" not in probs:
        return 1.0
    value = float(probs["mean_entropy"])
    return min(max(value, 0.0), 1.0) if np.isfinite(value) else 1.0


def prediction(
    probs: Mapping[str, Any], model_version: str | None, *, allow_empty: bool = True,
    thresholds: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """``TaskKind.prediction``: the decoded regions with their scores (none: an empty result), the item's score
    the complement of its uncertainty, and ``model_version``."""
    return {"model_version": model_version or "unknown", "score": round(1.0 - uncertainty(probs), 6),
            "result": region_result(probs.get("regions") or [])}  # fmt: skip


def informativeness(probs: Mapping[str, Any] | None, strategy: str) -> float:
    """``TaskKind.informativeness``: every strategy but ``random`` is the item's uncertainty."""
    if not probs or strategy == "random":
        return 1.0
    return uncertainty(probs)


def review_model_line(probs: Mapping[str, Any] | None, model_version: str | None) -> str | None:
    """``TaskKind.review_model_line``: the model's regions, with their times, labels and scores."""
    if not probs:
        return "model: no prediction"
    regions = probs.get("regions") or []
    if not regions:
        return f"model {model_version or 'unknown'}: no region"
    parts = ", ".join(f"{float(r['start']):.2f}-{float(r['end']):.2f} s {r['label']} {float(r['score']):.2f}"
                      for r in regions)  # fmt: skip
    return f"model {model_version or 'unknown'}: {parts}"


def prediction_report(probs: Any, classes: list[str], thresholds: list[float] | None = None) -> dict[str, Any]:
    """``TaskKind.prediction_report``: over the model's outputs (one per item), regions per item, items without
    one, regions and predicted seconds per class, and the mean uncertainty."""
    outputs = [o for o in list(probs) if o]
    if not outputs:
        return {}
    regions = [o.get("regions") or [] for o in outputs]
    return {
        "mean_regions_per_item": round(float(np.mean([len(r) for r in regions])), 4),
        "items_without_regions": sum(not r for r in regions),
        "predicted_regions": {str(c): sum(str(x["label"]) == str(c) for r in regions for x in r) for c in classes},
        "predicted_seconds": {str(c): round(sum(float(x["end"]) - float(x["start"]) for r in regions for x in r
                                                if str(x["label"]) == str(c)), 3) for c in classes},  # fmt: skip
        "mean_uncertainty": round(float(np.mean([uncertainty(o) for o in outputs])), 4),
    }


def fit_baseline(store: Any, classes: list[str], size: int) -> tuple[Any, str]:
    """``TaskKind.fit_baseline``: none (the pixel baselines read images and predict one class per item)."""
    return None, "no baseline for audio segments (the pixel baseline reads images): train the frame classifier first"
