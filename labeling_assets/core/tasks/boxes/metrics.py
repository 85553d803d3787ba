"""COCO mAP of boxes against truth, computed by the reference implementation (``pycocotools.COCOeval``)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from labeling_assets.core.tasks.boxes.matching import CORNERS


@dataclass(frozen=True)
class BoxMap:
    """``map``: mAP@[.5:.95]; ``ap50``, ``ap75``; ``n_images``, ``n_truth``, ``n_detections``; ``per_class``: each
    class's AP@[.5:.95] (NaN for a class without truth boxes: COCO leaves it out of the mean)."""

    map: float
    ap50: float
    ap75: float
    n_images: int
    n_truth: int
    n_detections: int
    per_class: dict[str, float] = field(default_factory=dict)


def _bbox(frame: pd.DataFrame) -> list[list[float]]:
    """COCO's ``[x, y, width, height]`` of each row's corners."""
    c = frame[CORNERS].to_numpy(dtype=np.float64).reshape(-1, 4)
    xywh: list[list[float]] = np.column_stack([c[:, 0], c[:, 1], c[:, 2] - c[:, 0], c[:, 3] - c[:, 1]]).tolist()
    return xywh


def coco_map(
    truth: pd.DataFrame, detections: pd.DataFrame, items: Sequence[str], classes: Sequence[str],
    sizes: tuple[float, float] | None = None,
) -> BoxMap:
    """mAP of ``detections`` (``item_id, label, x0, y0, x1, y1, score``) against ``truth`` (``item_id, label,
    x0, y0, x1, y1``) over ``items`` (an item without truth boxes has no objects: any detection there is a false
    positive), per ``classes``, all areas, up to 100 detections per image (COCO's defaults). ``sizes``: the
    image size (COCO wants one; it does not change the AP)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    width, height = sizes or (1.0, 1.0)
    image_id = {item: n + 1 for n, item in enumerate(items)}
    category = {c: n + 1 for n, c in enumerate(classes)}
    truth = truth[truth["item_id"].isin(image_id) & truth["label"].isin(category)]
    detections = detections[detections["item_id"].isin(image_id) & detections["label"].isin(category)]
    gt = COCO()
    boxes = _bbox(truth)
    gt.dataset = {
        "images": [{"id": i, "width": width, "height": height} for i in image_id.values()],
        "categories": [{"id": i, "name": c} for c, i in category.items()],
        "annotations": [
            {"id": n + 1, "image_id": image_id[item], "category_id": category[label], "bbox": box,
             "area": float(box[2] * box[3]), "iscrowd": 0}
            for n, (item, label, box) in enumerate(zip(truth["item_id"], truth["label"], boxes, strict=True))
        ],
    }  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        if detections.empty or truth.empty:
            present = set(truth["label"].astype(str))
            per_class = {str(c): 0.0 if str(c) in present else float("nan") for c in category}
            return BoxMap(0.0, 0.0, 0.0, len(image_id), len(truth), len(detections), per_class)
        det_boxes = _bbox(detections)
        dt = gt.loadRes([
            {"image_id": image_id[item], "category_id": category[label], "bbox": box, "score": float(s)}
            for item, label, box, s in zip(
                detections["item_id"], detections["label"], det_boxes, detections["score"], strict=True
            )
        ])  # fmt: skip
        evaluation = COCOeval(gt, dt, "bbox")
        evaluation.params.imgIds = list(image_id.values())
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = [max(float(s), 0.0) for s in evaluation.stats[:3]]  # -1 means "nothing to score": none found
    # precision[T, R, K, A, M]: every IoU threshold and recall step of class K, all areas, 100 detections (what
    # stats[0] averages over every class).
    precision = evaluation.eval["precision"][:, :, :, 0, -1]
    per_class = {}
    for k, name in enumerate(category):
        mine = precision[:, :, k]
        per_class[str(name)] = float(mine[mine > -1].mean()) if (mine > -1).any() else float("nan")
    return BoxMap(stats[0], stats[1], stats[2], len(image_id), len(truth), len(detections), per_class)
