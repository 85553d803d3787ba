"""How well a box project recovered a simulated crowd's truth (the demo's summary): consensus boxes scored against
the true boxes by COCO mAP, and each labeler's quality as measured against the truth beside what consensus alone
(with no truth) makes of it.

Consensus boxes are ranked by their item's consensus confidence (the chance that every decision on the item is
right), so an uncertain item's boxes count as the less sure detections; the posterior each stored box now keeps is
not used here (the demo's published figures were measured this way).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from labeling_assets.core.tasks.boxes.crowd import scene_truth, truth_boxes
from labeling_assets.core.tasks.boxes.matching import CORNERS
from labeling_assets.core.tasks.boxes.metrics import BoxMap, coco_map
from labeling_assets.core.tasks.boxes.stats import box_labeler_table
from labeling_assets.core.tasks.boxes.votes import answer_boxes, box_votes

RECOVERY_COLUMNS = [
    "labeler_id", "n_items",
    "true_recall", "consensus_recall", "true_false_boxes_per_item", "consensus_false_boxes_per_item",
    "true_mean_iou", "consensus_mean_iou",
]  # fmt: skip


def consensus_boxes(consensus: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """``item_id, label, x0, y0, x1, y1, score`` of stored consensus answers (``item_id, label, confidence``);
    the score is the item's confidence. A stored label that is not a box answer of the project holds none."""
    rows: list[tuple[object, ...]] = []
    for item, answer, confidence in zip(consensus["item_id"], consensus["label"], consensus["confidence"], strict=True):
        found, _ = answer_boxes(answer, classes)
        rows.extend((str(item), *box, float(confidence)) for box in found)
    return pd.DataFrame(rows, columns=["item_id", "label", *CORNERS, "score"])


def consensus_map(
    truth: Mapping[str, Sequence[Mapping[str, Any]]], consensus: pd.DataFrame, classes: Sequence[str]
) -> BoxMap:
    """COCO mAP of the consensus boxes against the true boxes, over the items that have both a consensus and a
    truth (an item consensus says is empty and the truth too counts for nothing: no detection, no object)."""
    items = sorted(set(consensus["item_id"].astype(str)) & {str(i) for i in truth})
    true = truth_boxes(scene_truth({i: truth[i] for i in items}))
    return coco_map(true, consensus_boxes(consensus, classes), items, classes)


def labeler_recovery(
    truth: Mapping[str, Sequence[Mapping[str, Any]]], annotations: pd.DataFrame, consensus: pd.DataFrame,
    classes: Sequence[str],
) -> pd.DataFrame:
    """Per labeler (``RECOVERY_COLUMNS``): recall, false boxes per item and mean IoU of their current answers
    (``annotations``: ``item_id, labeler_id, label`` + timestamps) at IoU 0.5, against the true boxes (``true_``)
    and against the stored consensus (``consensus_``, what the project measures without the truth)."""
    found = box_votes(annotations, classes)
    cons = consensus_boxes(consensus, classes)
    truth_frame = truth_boxes(scene_truth(truth))
    table = box_labeler_table(found.votes, found.boxes, cons, consensus["item_id"].astype(str).tolist(),
                              gold=truth_frame, gold_items=[str(i) for i in truth])  # fmt: skip
    table = table.rename(columns=lambda c: "true_" + c[len("gold_"):] if c.startswith("gold_") else c)
    table["n_items"] = table["true_n_items"]
    return table[RECOVERY_COLUMNS].reset_index(drop=True)
