"""Which boxes of different labelers mark the same object: clusters of at most one box per labeler, per item and
class, matched by IoU with an optimal assignment (Hungarian), not greedily.

Labelers join an item's clusters one at a time (most boxes first): each labeler's boxes are assigned to the
clusters formed so far by ``scipy.optimize.linear_sum_assignment`` on IoU with each cluster's mean box, a pair
kept only at ``iou_threshold`` or above; an unassigned box starts a cluster. Greedy matching takes the single
best pair first and can leave two neighbours crossed; the assignment maximizes the total overlap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from labeling_assets.core.tasks.boxes.geometry import FloatArray, iou_matrix

CORNERS = ["x0", "y0", "x1", "y1"]


def assign(a: FloatArray, b: FloatArray, iou_threshold: float) -> list[tuple[int, int, float]]:
    """Pairs ``(i, j, iou)`` of boxes ``a[i]`` and ``b[j]`` maximizing total IoU, each box in at most one pair,
    only pairs at ``iou_threshold`` or above."""
    if len(a) == 0 or len(b) == 0:
        return []
    iou = iou_matrix(a, b)
    rows, cols = linear_sum_assignment(iou, maximize=True)
    return [(int(i), int(j), float(iou[i, j])) for i, j in zip(rows, cols, strict=True) if iou[i, j] >= iou_threshold]


def cluster_boxes(boxes: pd.DataFrame, iou_threshold: float = 0.4) -> NDArray[np.int64]:
    """A cluster id per row of ``boxes`` (``item_id, labeler_id, label, x0, y0, x1, y1``): rows with one id are
    one object's boxes by different labelers of one item and class. Ids are dense, deterministic for a given
    frame (labelers with more boxes join first, ties by labeler id)."""
    out = np.full(len(boxes), -1, dtype=np.int64)
    if boxes.empty:
        return out
    coords = boxes[CORNERS].to_numpy(dtype=np.float64)
    labelers = boxes["labeler_id"].astype(str).to_numpy()
    next_id = 0
    for rows in boxes.groupby(["item_id", "label"], sort=True).indices.values():
        if len(rows) == 1:
            out[rows[0]] = next_id
            next_id += 1
            continue
        by_labeler: dict[str, list[int]] = {}
        for r in rows:
            by_labeler.setdefault(labelers[r], []).append(int(r))
        order = sorted(by_labeler, key=lambda lab: (-len(by_labeler[lab]), lab))
        sums: FloatArray = np.zeros((0, 4))
        counts: FloatArray = np.zeros(0)
        ids: list[int] = []
        for lab in order:
            mine = by_labeler[lab]
            pairs = assign(coords[mine], sums / counts[:, None], iou_threshold) if len(ids) else []
            taken = {i for i, _, _ in pairs}
            for i, j, _ in pairs:
                out[mine[i]] = ids[j]
                sums[j] += coords[mine[i]]
                counts[j] += 1
            new = [r for i, r in enumerate(mine) if i not in taken]
            if new:
                out[new] = np.arange(next_id, next_id + len(new))
                ids.extend(range(next_id, next_id + len(new)))
                next_id += len(new)
                sums = np.vstack([sums, coords[new]])
                counts = np.concatenate([counts, np.ones(len(new))])
    return out
