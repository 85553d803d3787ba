"""Label issues of audio segment consensus: items whose consensus regions look wrong.

Two readings, cheapest first, per item:

- where a frame model that never trained on the item has a stored pre-label (``core/store/out_of_sample.py``: a
  champion's output on items outside its train split), the item's label quality is the share of 10 ms frames on
  which the model's regions and the consensus agree (a label, or "no region"); under :data:`MODEL_AGREEMENT` it
  is flagged, the model's labels suggested;
- elsewhere, the consensus confidence stored with it (the decided label's mean share of the frame vote): under
  :data:`LOW_CONFIDENCE` the labelers disagreed on much of the item, and it is flagged for an expert.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from labeling_assets.core.consensus.label_issues import ISSUE_COLUMNS, LabelIssues
from labeling_assets.core.speech.regions import Region, to_frames
from labeling_assets.core.tasks.audio_segments.answers import from_stored

MODEL_AGREEMENT = 0.6  # frames: under this share the model and the consensus tell different stories
LOW_CONFIDENCE = 0.7  # the review routing's low-confidence threshold (consensus.review_routing)
SOURCE = (
    "frame agreement with the stored pre-label of a frame model that did not train on the item where one exists, "
    "else the consensus confidence (the frame vote's share)"
)


def frame_agreement_with(found: Sequence[Region], given: Sequence[Region], classes: Sequence[str],
                         duration: float | None = None) -> float:  # fmt: skip
    """The share of frames on which two region answers agree (1.0 when both are empty)."""
    length = max([duration or 0.0, *(r.end for r in found), *(r.end for r in given)])
    if length <= 0:
        return 1.0
    return float(np.mean(to_frames(found, classes, length) == to_frames(given, classes, length)))


def model_regions(output: Any) -> tuple[list[Region], float | None] | None:
    """A frame model's output (``trainer.model_output``: ``{"duration", "regions": [{start, end, label, score}]}``)
    as (its regions, the audio's duration); None for what is no such output."""
    if not isinstance(output, Mapping) or not isinstance(output.get("regions"), list):
        return None
    try:
        found = [Region(float(r["start"]), float(r["end"]), str(r["label"])) for r in output["regions"]]
        duration = float(output["duration"]) if output.get("duration") is not None else None
    except (KeyError, TypeError, ValueError):
        return None
    return found, duration


def segment_label_issues(
    item_ids: Sequence[str], answers: Sequence[Any], features: Sequence[Mapping[str, Any]], classes: Sequence[str],
) -> tuple[LabelIssues, float]:  # fmt: skip
    """(the flagged items, worst first, with every item's label quality; the share of items with a model output
    whose regions agree with consensus on at least :data:`MODEL_AGREEMENT` of frames, nan without any).
    ``features``: per item ``{"confidence": float | None, "model": the frame model's output or None}``."""
    names = [str(c) for c in classes]
    rows = []
    agree = []
    for item, answer, feature in zip(item_ids, answers, features, strict=True):
        given = from_stored(answer) or []
        decided = model_regions(feature.get("model"))
        if decided is not None:
            found, duration = decided
            quality = frame_agreement_with(found, given, names, duration)
            agree.append(quality >= MODEL_AGREEMENT)
            suggested = sorted({r.label for r in found})
            rows.append((str(item), given, suggested, quality, MODEL_AGREEMENT, quality < MODEL_AGREEMENT))
        elif feature.get("confidence") is not None and np.isfinite(float(feature["confidence"])):
            quality = float(feature["confidence"])
            rows.append((str(item), given, sorted({r.label for r in given}), quality, quality, quality < LOW_CONFIDENCE))
    table = pd.DataFrame(rows, columns=["item_id", "given", "suggested_label", "label_quality",
                                        "suggested_probability", "flagged"])  # fmt: skip
    flagged = table[table["flagged"]].sort_values(["label_quality", "item_id"], kind="stable") if len(table) else table
    issues = pd.DataFrame({
        "item_id": flagged["item_id"].tolist(),
        "given_label": [sorted({r.label for r in g}) for g in flagged["given"]],
        "suggested_label": flagged["suggested_label"].tolist(),
        "label_quality": flagged["label_quality"].astype(float).tolist(),
        "suggested_probability": flagged["suggested_probability"].astype(float).tolist(),
    }, columns=ISSUE_COLUMNS)  # fmt: skip
    n_model = len(agree)
    notes = [f"{n_model} of {len(item_ids)} items judged by an out-of-sample frame model, "
             f"{len(table) - n_model} by their consensus confidence"]  # fmt: skip
    if len(table) < len(item_ids):
        notes.append(f"{len(item_ids) - len(table)} items have neither: not searched")
    scores = pd.Series(table["label_quality"].astype(float).to_numpy(), index=table["item_id"].tolist(), dtype=float)
    return LabelIssues(issues, scores, notes), float(np.mean(agree)) if agree else float("nan")
