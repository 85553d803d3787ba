"""Box votes: one current, valid answer per (item, labeler), and its boxes as rows in pixels.

The same newest-answer rule as the class kinds (``consensus.votes``): a labeler's newest answer is their vote,
and a bad newest answer is skipped and counted, never replaced by an older one nor repaired. An answer is
skipped whole (one bad box makes the vote unusable: dropping only that box would read as a missed object).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from labeling_assets.core.consensus.votes import SKIP_UNKNOWN_CLASS, _newest_per_labeler
from labeling_assets.core.display import bounded_label
from labeling_assets.core.label_sets import SKIP_EMPTY_NOT_ALLOWED, SKIP_UNREADABLE
from labeling_assets.core.tasks.boxes.labelstudio import RECTANGLE

SKIP_NOT_BOXES = "not_a_box_answer"  # a stored value that is not a box answer (a class name, a list)
SKIP_NOT_RECTANGLE = "not_a_rectangle"  # a polygon (or another drawing) in a box project
SKIP_ROTATED = "rotated_box"  # rotation other than 0: our boxes are axis-aligned
SKIP_NOT_ONE_CLASS = "box_without_one_class"  # a box with no class or several
SKIP_ZERO_AREA = "zero_area_box"  # a side under MIN_SIDE_PX (a click, not a drag)
SKIP_OUTSIDE = "box_outside_image"  # beyond the image by more than OUTSIDE_TOLERANCE_PX
SKIP_NO_OBJECT_WITH_BOXES = "no_object_with_boxes"  # "No object" chosen and boxes drawn
BOX_SKIP_REASONS = (
    SKIP_UNREADABLE, SKIP_NOT_BOXES, SKIP_NOT_RECTANGLE, SKIP_ROTATED, SKIP_NOT_ONE_CLASS, SKIP_UNKNOWN_CLASS,
    SKIP_ZERO_AREA, SKIP_OUTSIDE, SKIP_NO_OBJECT_WITH_BOXES, SKIP_EMPTY_NOT_ALLOWED,
)  # fmt: skip

MIN_SIDE_PX = 1.0
# Label Studio's editor can leave a dragged edge a hair past the border (100.0001 %); such a box is clipped.
OUTSIDE_TOLERANCE_PX = 1.0
BOX_COLUMNS = ["item_id", "labeler_id", "label", "x0", "y0", "x1", "y1"]


@dataclass(frozen=True)
class BoxVotes:
    """Valid box votes.

    Attributes:
        votes: ``item_id, labeler_id, n_boxes``: every valid vote, the explicit empty set (``n_boxes`` 0)
            included: a labeler who answered an item and drew nothing there says there is nothing there.
        boxes: ``item_id, labeler_id, label, x0, y0, x1, y1``: the boxes of those votes, in pixels.
        skipped: reason -> number of votes left out (their annotations stay stored).
        examples: reason -> up to five offending answers (bounded), for metadata.
    """

    votes: pd.DataFrame
    boxes: pd.DataFrame
    skipped: dict[str, int]
    examples: dict[str, list[Any]]


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def answer_boxes(
    answer: Any, classes: Sequence[str], allow_empty: bool = True
) -> tuple[list[tuple[str, float, float, float, float]], str | None]:
    """A stored answer's boxes as ``(class, x0, y0, x1, y1)`` in pixels (clipped to the image within
    ``OUTSIDE_TOLERANCE_PX``), or ``([], reason)`` when it is not a vote (one of ``BOX_SKIP_REASONS``)."""
    if _is_missing(answer):
        return [], SKIP_UNREADABLE
    if not isinstance(answer, Mapping) or not isinstance(answer.get("boxes"), list):
        return [], SKIP_NOT_BOXES
    regions: list[Any] = answer["boxes"]
    if not regions:
        return [], None if allow_empty and answer.get("no_object") else SKIP_EMPTY_NOT_ALLOWED
    if answer.get("no_object"):
        return [], SKIP_NO_OBJECT_WITH_BOXES
    allowed = set(classes)
    out: list[tuple[str, float, float, float, float]] = []
    for region in regions:
        if not isinstance(region, Mapping) or region.get("shape") != RECTANGLE:
            return [], SKIP_NOT_RECTANGLE
        if region.get("rotation"):
            return [], SKIP_ROTATED
        labels = region.get("labels")
        if not isinstance(labels, list) or len(labels) != 1:
            return [], SKIP_NOT_ONE_CLASS
        if labels[0] not in allowed:
            return [], SKIP_UNKNOWN_CLASS
        try:
            x, y, w, h = (float(region[k]) for k in ("x", "y", "width", "height"))
            # Gold boxes may come without the image size: then they are not checked against it.
            width, height = (float(region.get(k) or "inf") for k in ("image_width", "image_height"))
        except (KeyError, TypeError, ValueError):
            return [], SKIP_NOT_BOXES
        if w < MIN_SIDE_PX or h < MIN_SIDE_PX:
            return [], SKIP_ZERO_AREA
        tol = OUTSIDE_TOLERANCE_PX
        if x < -tol or y < -tol or x + w > width + tol or y + h > height + tol:
            return [], SKIP_OUTSIDE
        out.append((str(labels[0]), max(x, 0.0), max(y, 0.0), min(x + w, width), min(y + h, height)))
    return out, None


def box_confidences(answer: Any) -> list[float]:
    """Per box of a stored answer (in :func:`answer_boxes`' order), its ``confidence``: the posterior a consensus
    answer keeps that the box is an object; 1.0 where there is none (an answer stored before consensus kept it, a
    labeler's or a gold answer) or it is no number in [0, 1]."""
    regions = answer.get("boxes") if isinstance(answer, Mapping) else None
    out = []
    for region in regions if isinstance(regions, list) else []:
        value = region.get("confidence") if isinstance(region, Mapping) else None
        try:
            number = float(value) if value is not None else 1.0
        except (TypeError, ValueError):
            number = 1.0
        out.append(number if 0.0 <= number <= 1.0 else 1.0)  # NaN fails both comparisons
    return out


def box_votes(annotations: pd.DataFrame, classes: Sequence[str], allow_empty: bool = True) -> BoxVotes:
    """Reduce current annotation rows (``item_id, labeler_id, label`` + timestamps) to valid box votes."""
    frame = _newest_per_labeler(annotations)
    skipped: dict[str, int] = {}
    examples: dict[str, list[Any]] = {}
    votes: list[tuple[Any, Any, int]] = []
    rows: list[tuple[Any, ...]] = []
    for item_id, labeler_id, answer in zip(frame["item_id"], frame["labeler_id"], frame["label"], strict=True):
        boxes, reason = answer_boxes(answer, classes, allow_empty)
        if reason is not None:
            skipped[reason] = skipped.get(reason, 0) + 1
            if len(examples.setdefault(reason, [])) < 5:
                examples[reason].append(bounded_label(answer))
            continue
        votes.append((item_id, labeler_id, len(boxes)))
        rows.extend((item_id, labeler_id, *box) for box in boxes)
    vote_frame = pd.DataFrame(votes, columns=["item_id", "labeler_id", "n_boxes"])
    box_frame = pd.DataFrame(rows, columns=BOX_COLUMNS)
    return BoxVotes(
        vote_frame.sort_values(["item_id", "labeler_id"], kind="stable").reset_index(drop=True),
        box_frame.sort_values(["item_id", "labeler_id"], kind="stable").reset_index(drop=True),
        skipped,
        examples,
    )
