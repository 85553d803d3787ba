"""Gold boxes and the box dataset's splits.

A gold file's entry for a box project is a JSON list of boxes in pixels of the raw image,
``[{"label": "car", "x0": 10, "y0": 20, "x1": 110, "y1": 220}, ...]`` (``[]``: no object), optionally wrapped as
``{"width": W, "height": H, "boxes": [...]}`` so that boxes outside the image are refused. It is stored in the form a
Label Studio answer is (:func:`.labelstudio.read_boxes`), so the same rules (:func:`.votes.answer_boxes`) judge it.
Gold is never sent to Label Studio (ingest keeps it in ``items.gold_label``).

A labeler's score on gold counts matched boxes (IoU 0.5, per class, an assignment) against gold boxes + false boxes:
``TP / (TP + FN + FP)``, a proportion a Wilson interval fits; it falls for a labeler who misses objects and for
one who draws boxes that are not there alike (precision or recall alone each reward one of them).

Splits are stratified on class presence (each item's set of classes with at least one box; the empty set for an
image without objects) by the multi-label iterative stratification, groups kept whole.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from labeling_assets.core.dataset.iterative_stratification import assign_label_set_splits
from labeling_assets.core.dataset.splits import SplitAssignment, SplitRatios
from labeling_assets.core.tasks.boxes.labelstudio import RECTANGLE
from labeling_assets.core.tasks.boxes.matching import CORNERS, assign
from labeling_assets.core.tasks.boxes.votes import answer_boxes

GOLD_IOU = 0.5


def gold_answer(boxes: Sequence[Mapping[str, Any]], width: float | None = None, height: float | None = None) -> dict[str, Any]:
    """The stored answer of pixel boxes ``{label, x0, y0, x1, y1}`` (no boxes: "No object"). A box's
    ``confidence`` (a consensus answer's posterior that it is an object) is kept with it; the vote rules ignore it."""
    return {"no_object": not boxes, "boxes": [
        {"shape": RECTANGLE, "labels": [str(b["label"])], "x": float(b["x0"]), "y": float(b["y0"]),
         "width": float(b["x1"]) - float(b["x0"]), "height": float(b["y1"]) - float(b["y0"]), "rotation": 0.0,
         "image_width": width, "image_height": height,
         **({"confidence": round(float(b["confidence"]), 6)} if b.get("confidence") is not None else {})}
        for b in boxes
    ]}  # fmt: skip


def parse_gold_boxes(text: str, classes: Sequence[str] | None, allow_empty: bool = True) -> tuple[Any, str | None]:
    """(the stored answer, None), or (what was read, why it is refused): not JSON, not a list of boxes with
    ``label, x0, y0, x1, y1`` numbers, or a box the vote rules refuse (zero area, outside the given image size,
    a class outside ``classes``; None: classes not checked), or ``[]`` where the project offers no "No object"."""
    try:
        value = json.loads(text)
    except ValueError:
        return text, f"{text[:80]!r} is not JSON (a list of boxes, [] for no object)"
    width = height = None
    if isinstance(value, dict):
        width, height, value = value.get("width"), value.get("height"), value.get("boxes")
    if not isinstance(value, list) or not all(isinstance(b, dict) for b in value):
        return text, "gold boxes must be a JSON list of {label, x0, y0, x1, y1} objects"
    try:
        answer = gold_answer(value, None if width is None else float(width), None if height is None else float(height))
    except (KeyError, TypeError, ValueError):
        return text, "every gold box needs label, x0, y0, x1, y1 (numbers, pixels)"
    names = classes if classes is not None else sorted({str(b["label"]) for b in value})
    _, reason = answer_boxes(answer, names, allow_empty)
    return (answer, None) if reason is None else (answer, f"gold boxes refused: {reason}")


def gold_frame(gold: Mapping[str, Any], classes: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """Stored gold answers (item -> answer) as boxes (``item_id, label, x0, y0, x1, y1``) and the items whose gold
    is usable (an empty set included); one the vote rules refuse is left out."""
    rows: list[tuple[Any, ...]] = []
    items: list[str] = []
    for item, answer in gold.items():
        boxes, reason = answer_boxes(answer, classes)
        if reason is None:
            items.append(item)
            rows.extend((item, *box) for box in boxes)
    return pd.DataFrame(rows, columns=["item_id", "label", *CORNERS]), items


def gold_box_score(
    votes: pd.DataFrame, boxes: pd.DataFrame, gold: pd.DataFrame, gold_items: Sequence[str]
) -> pd.DataFrame:
    """Per labeler on the gold items they answered: ``labeler_id, matched, n`` with ``n`` = gold boxes + false
    boxes (``matched / n`` is the gold score; ``votes`` and ``boxes`` as :func:`.votes.box_votes` gives them)."""
    items = set(gold_items)
    votes = votes[votes["item_id"].isin(items)].drop_duplicates(["item_id", "labeler_id"])
    truth = {key: g[CORNERS].to_numpy(dtype=float) for key, g in gold.groupby(["item_id", "label"])}
    n_gold = gold.groupby("item_id").size()
    drawn = dict(list(boxes[boxes["item_id"].isin(items)].groupby("labeler_id")))
    rows = []
    for labeler_id, mine in votes.groupby("labeler_id", sort=True):
        theirs = drawn.get(labeler_id, boxes.iloc[:0])
        matched = sum(
            len(assign(g[CORNERS].to_numpy(dtype=float), truth[key], GOLD_IOU))
            for key, g in theirs.groupby(["item_id", "label"]) if key in truth
        )  # fmt: skip
        expected = int(n_gold.reindex(mine["item_id"], fill_value=0).sum())
        rows.append((labeler_id, matched, expected + len(theirs) - matched))
    return pd.DataFrame(rows, columns=["labeler_id", "matched", "n"])


def class_presence(answer: Any, classes: Sequence[str]) -> list[str]:
    """The sorted classes an answer has at least one box of ([] for "No object")."""
    boxes, reason = answer_boxes(answer, classes)
    if reason is not None:
        raise ValueError(f"not a box answer of this project: {reason}")
    return sorted({box[0] for box in boxes})


def assign_box_splits(
    rows: pd.DataFrame, classes: Sequence[str], *, existing: pd.Series | None = None,
    ratios: SplitRatios | None = None, seed: int = 0,
) -> SplitAssignment:
    """Train/val/test for box items (``item_id, label`` = the stored consensus answer, optional ``group_key``):
    iterative stratification on class presence, frozen splits kept; the frame's ``label`` is the answer again."""
    presence = rows.assign(
        label=pd.Series([class_presence(a, classes) for a in rows["label"]], index=rows.index, dtype=object)
    )
    assignment = assign_label_set_splits(presence, classes, existing=existing, ratios=ratios, seed=seed)
    answers = dict(zip(rows["item_id"].astype(str), rows["label"], strict=True))
    frame = assignment.frame.assign(classes_present=assignment.frame["label"])
    frame["label"] = [answers[str(item)] for item in frame["item_id"]]
    return SplitAssignment(frame, assignment.notes)
