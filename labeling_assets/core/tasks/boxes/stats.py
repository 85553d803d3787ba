"""Labeler statistics for boxes: each labeler's boxes against a reference (gold boxes, or consensus objects),
matched per item and class at IoU 0.5 by an optimal assignment (the detection convention).

Precision is matched boxes / boxes drawn, recall is matched boxes / reference boxes on the items the labeler
answered; the miss rate is 1 - recall and the false-box rate 1 - precision (with the complementary intervals);
the mean IoU of the matched boxes measures how tightly they draw. Against consensus a labeler's own boxes took
part in it, so those figures flatter a labeler a little more than gold does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from labeling_assets.core.consensus.gates import wilson_interval
from labeling_assets.core.tasks.boxes.matching import CORNERS, assign

STATS_IOU = 0.5
STATS_COLUMNS = [
    "labeler_id", "n_items", "n_boxes", "n_reference", "matched", "precision", "precision_low", "precision_high",
    "recall", "recall_low", "recall_high", "miss_rate", "false_box_rate", "false_boxes_per_item", "mean_iou",
]  # fmt: skip


def box_labeler_stats(
    votes: pd.DataFrame, boxes: pd.DataFrame, reference: pd.DataFrame, reference_items: Sequence[str],
    iou_threshold: float = STATS_IOU,
) -> pd.DataFrame:
    """One row per labeler (``STATS_COLUMNS``) over the ``reference_items`` they answered (``votes``: their
    valid votes, an explicit empty set included; ``boxes``: those votes' boxes; ``reference``: ``item_id,
    label, x0, y0, x1, y1``, the truth of ``reference_items``; an item there without reference boxes has
    none). A rate without anything to count is NaN with the interval (0, 1)."""
    items = set(reference_items)
    votes = votes[votes["item_id"].isin(items)].drop_duplicates(["item_id", "labeler_id"])
    boxes = boxes[boxes["item_id"].isin(items)]
    ref_groups = {key: g[CORNERS].to_numpy(dtype=np.float64) for key, g in reference.groupby(["item_id", "label"])}
    ref_per_item = reference.groupby("item_id").size()
    rows = []
    box_groups = dict(list(boxes.groupby("labeler_id")))
    for labeler_id, mine in votes.groupby("labeler_id", sort=True):
        drawn = box_groups.get(labeler_id, boxes.iloc[:0])
        n_ref = int(ref_per_item.reindex(mine["item_id"], fill_value=0).sum())
        matched, ious = 0, list[float]()
        for key, g in drawn.groupby(["item_id", "label"]):
            truth = ref_groups.get(key)
            if truth is None:
                continue
            pairs = assign(g[CORNERS].to_numpy(dtype=np.float64), truth, iou_threshold)
            matched += len(pairs)
            ious.extend(iou for _, _, iou in pairs)
        n_boxes = len(drawn)
        p_lo, p_hi = wilson_interval(matched, n_boxes)
        r_lo, r_hi = wilson_interval(matched, n_ref)
        precision = matched / n_boxes if n_boxes else float("nan")
        recall = matched / n_ref if n_ref else float("nan")
        rows.append((
            labeler_id, len(mine), n_boxes, n_ref, matched, precision, p_lo, p_hi, recall, r_lo, r_hi,
            1 - recall, 1 - precision, (n_boxes - matched) / len(mine), float(np.mean(ious)) if ious else float("nan"),
        ))  # fmt: skip
    return pd.DataFrame(rows, columns=STATS_COLUMNS)


def box_labeler_table(
    votes: pd.DataFrame, boxes: pd.DataFrame, consensus: pd.DataFrame, consensus_items: Sequence[str], *,
    gold: pd.DataFrame | None = None, gold_items: Sequence[str] = (), estimates: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per labeler: :func:`box_labeler_stats` against consensus objects (columns prefixed ``consensus_``)
    and against gold (``gold_``; NaN rates and (0, 1) intervals without gold items), and, when given, the consensus
    model's own estimates (``estimates``: ``BoxConsensus.labelers``, prefixed ``model_``)."""
    labelers = pd.DataFrame({"labeler_id": sorted(votes["labeler_id"].unique())})
    empty_gold = pd.DataFrame(columns=["item_id", "label", *CORNERS])
    parts = {
        "consensus_": box_labeler_stats(votes, boxes, consensus, consensus_items),
        "gold_": box_labeler_stats(votes, boxes, gold if gold is not None else empty_gold, gold_items),
    }
    table = labelers
    for prefix, stats in parts.items():
        stats = stats.set_index("labeler_id").add_prefix(prefix).reset_index()
        table = table.merge(stats, on="labeler_id", how="left")
    for prefix in parts:
        for rate in ("precision", "recall"):
            table[f"{prefix}{rate}_low"] = table[f"{prefix}{rate}_low"].fillna(0.0)
            table[f"{prefix}{rate}_high"] = table[f"{prefix}{rate}_high"].fillna(1.0)
        table[f"{prefix}n_items"] = table[f"{prefix}n_items"].fillna(0).astype(int)
    if estimates is not None and not estimates.empty:
        model = estimates.set_index("labeler_id")[["recall", "false_boxes_per_item", "localization_error", "weight"]]
        table = table.merge(model.add_prefix("model_").reset_index(), on="labeler_id", how="left")
    return table
