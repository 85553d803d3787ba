"""A detector's boxes as Label Studio pre-labels, and how uncertain they are (the queue's order).

Label Studio shows a prediction's regions as pre-drawn boxes a labeler can move or delete; each region may carry
its own ``score``. An item's uncertainty is the chance that at least one of the model's box decisions is wrong,
``1 - prod(max(p, 1 - p))``, the complement of the confidence consensus gives an item (:mod:`.consensus`), so
the queue and review routing read the two on one scale.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from labeling_assets.core.tasks.boxes.labelstudio import box_result
from labeling_assets.core.tasks.boxes.votes import answer_boxes

PRELABEL_MIN_SCORE = 0.5  # boxes the model is less sure of are not drawn for the labeler (they still count below)


def box_prediction(
    boxes: Sequence[Mapping[str, Any]], image_width: float, image_height: float, model_version: str | None,
    min_score: float = PRELABEL_MIN_SCORE,
) -> dict[str, Any]:
    """The Label Studio prediction of a detector's boxes (``label, x0, y0, x1, y1, score``, pixels): the boxes
    scored at least ``min_score`` as regions with their scores (none: the "No object" choice), the item's score
    its confidence (:func:`box_uncertainty`'s complement over every box), and ``model_version``."""
    shown = [b for b in boxes if float(b["score"]) >= min_score]
    result = box_result(shown, image_width, image_height)
    if shown:
        for region, box in zip(result, shown, strict=True):
            region["score"] = float(box["score"])
    return {"model_version": model_version, "score": 1.0 - box_uncertainty(float(b["score"]) for b in boxes),
            "result": result}  # fmt: skip


def answer_prediction_result(
    answer: Any, image_width: float | None = None, image_height: float | None = None
) -> list[dict[str, Any]] | None:
    """A stored box answer drawn as Label Studio draws boxes (a review task pre-draws the consensus with it): its
    boxes in percent of the image ("No object" for none). The image's size is the one given, else the one the
    answer's boxes were drawn on; None for what is no box vote or an image of unknown size."""
    named = sorted({str(n) for b in answer.get("boxes") or [] if isinstance(b, Mapping) for n in b.get("labels") or []}
                   if isinstance(answer, Mapping) else set())  # fmt: skip
    boxes, why = answer_boxes(answer, named)
    if why is not None:
        return None
    width = image_width or next((b.get("image_width") for b in answer["boxes"] if b.get("image_width")), None)
    height = image_height or next((b.get("image_height") for b in answer["boxes"] if b.get("image_height")), None)
    if not boxes:
        return box_result([], 1.0, 1.0)  # "No object": no size needed
    if not width or not height:
        return None
    corners = [dict(zip(("label", "x0", "y0", "x1", "y1"), b, strict=True)) for b in boxes]
    return box_result(corners, float(width), float(height))


def box_uncertainty(scores: Iterable[float]) -> float:
    """1 - prod(max(p, 1 - p)) over a model's box scores: 0 when it is sure of every box (or found none)."""
    log_sure = sum(math.log(max(p, 1.0 - p, 1e-12)) for p in (min(max(s, 0.0), 1.0) for s in scores))
    return 1.0 - math.exp(log_sure)
