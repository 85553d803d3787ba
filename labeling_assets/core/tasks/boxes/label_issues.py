"""Label issues of box consensus: cleanlab's object-detection search (``cleanlab.object_detection``) of the consensus
boxes against a detector's out-of-sample boxes.

cleanlab scores each image's given boxes against a model's predicted boxes (per box: a class swapped, a box badly
placed, an object the model sees that the labels miss, pooled into one image score) and flags the images whose
labels look wrong. Its scores mean something only where the model never trained on the image, so the predictions
are the stored pre-labels of detectors that did not train on the item (``core/store/out_of_sample.py``: champions'
outputs on items outside their train split); an item without one is not searched, and the notes say how many.
There is no cross-validated fallback: a detector is not a seconds-long fit like the class kinds' logistic
regression on pixels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from labeling_assets.core.consensus.label_issues import ISSUE_COLUMNS, MIN_ITEMS, LabelIssues
from labeling_assets.core.tasks.boxes.gold import gold_answer
from labeling_assets.core.tasks.boxes.prelabels import PRELABEL_MIN_SCORE, box_uncertainty
from labeling_assets.core.tasks.boxes.qa import whole_answer_right
from labeling_assets.core.tasks.boxes.votes import answer_boxes

SOURCE = (
    "the stored pre-labels of detectors that did not train on the item (a champion's boxes on items outside its "
    "train split), scored by cleanlab.object_detection"
)


def given_boxes(answer: Any, classes: Sequence[str]) -> dict[str, Any]:
    """A stored box answer in cleanlab's label form: ``bboxes`` (x1, y1, x2, y2 in pixels), ``labels`` (indices)."""
    boxes, why = answer_boxes(answer, classes)
    if why is not None:
        raise ValueError(f"not a box answer of the project: {why}")
    index = {c: n for n, c in enumerate(classes)}
    return {"bboxes": np.array([b[1:] for b in boxes], dtype=float).reshape(-1, 4),
            "labels": np.array([index[b[0]] for b in boxes], dtype=int)}  # fmt: skip


def predicted_boxes(output: Mapping[str, Any], classes: Sequence[str]) -> list[NDArray[np.float64]]:
    """A detector's output (``{"boxes": [{label, x0, y0, x1, y1, score}]}``) in cleanlab's prediction form: per
    class an array of ``x1, y1, x2, y2, score`` rows (boxes of classes outside the project are dropped)."""
    per_class: list[list[list[float]]] = [[] for _ in classes]
    index = {c: n for n, c in enumerate(classes)}
    for box in output.get("boxes") or []:
        k = index.get(str(box.get("label")))
        if k is not None:
            per_class[k].append([float(box[c]) for c in ("x0", "y0", "x1", "y1", "score")])
    return [np.array(rows, dtype=float).reshape(-1, 5) for rows in per_class]


def _shown(output: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [b for b in output.get("boxes") or [] if float(b["score"]) >= PRELABEL_MIN_SCORE]


def detector_answer(output: Mapping[str, Any]) -> dict[str, Any]:
    """The detector's boxes at the pre-label cut as a stored answer (to compare with consensus)."""
    return gold_answer(_shown(output), output.get("image_width"), output.get("image_height"))


def box_label_issues(
    item_ids: Sequence[str], answers: Sequence[Any], predictions: Sequence[Mapping[str, Any] | None],
    classes: Sequence[str],
) -> tuple[LabelIssues, float]:
    """(the consensus answers cleanlab flags, worst first, with every searched item's label quality; the share of
    searched items where the detector's boxes at the pre-label cut equal consensus box for box). ``given_label``
    and ``suggested_label`` are the classes present in consensus and in the detector's boxes; the suggested
    probability is the detector's confidence in its own boxes (1 - its uncertainty)."""
    names = [str(c) for c in classes]
    rows: list[tuple[str, Any, Mapping[str, Any]]] = [
        (str(i), a, p) for i, a, p in zip(item_ids, answers, predictions, strict=True) if p is not None
    ]
    notes = []
    if len(rows) < len(item_ids):
        notes.append(f"{len(item_ids) - len(rows)} of {len(item_ids)} items have no out-of-sample detector output "
                     "(no champion's pre-label of an item outside its train split): not searched")  # fmt: skip
    if len(rows) < MIN_ITEMS:
        notes.append(f"no label-issue search: only {len(rows)} item(s) with an out-of-sample detector output")
        return LabelIssues(pd.DataFrame(columns=ISSUE_COLUMNS), pd.Series(dtype=float), notes), float("nan")
    from cleanlab.object_detection.filter import find_label_issues
    from cleanlab.object_detection.rank import get_label_quality_scores

    labels = [given_boxes(a, names) for _, a, _ in rows]
    preds = [predicted_boxes(p, names) for _, _, p in rows]
    quality = np.asarray(get_label_quality_scores(labels, preds, verbose=False), dtype=float)
    flagged = np.asarray(find_label_issues(labels, preds), dtype=bool)
    order = np.flatnonzero(flagged)
    order = order[np.lexsort((order, quality[order]))]  # worst first; ties by position (deterministic)
    issues = pd.DataFrame(
        {
            "item_id": [rows[n][0] for n in order],
            "given_label": [sorted({names[int(k)] for k in labels[n]["labels"]}) for n in order],
            "suggested_label": [sorted({str(b["label"]) for b in _shown(rows[n][2])}) for n in order],
            "label_quality": quality[order],
            "suggested_probability": [
                1.0 - box_uncertainty(float(b["score"]) for b in rows[n][2].get("boxes") or []) for n in order
            ],
        },
        columns=ISSUE_COLUMNS,
    )
    agree = [whole_answer_right(detector_answer(p), a, names) for _, a, p in rows]
    scores = pd.Series(quality, index=[r[0] for r in rows], dtype=float)
    return LabelIssues(issues, scores, notes), float(np.mean(agree))
