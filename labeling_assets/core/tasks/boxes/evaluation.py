"""A detector scored on the test split: COCO mAP (pycocotools) of its outputs against stored box answers, and the
report model_evaluation shows and logs (per-class AP table and plot)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from labeling_assets.core.display import md_text
from labeling_assets.core.images import markdown_image
from labeling_assets.core.reporting import plots
from labeling_assets.core.tasks.boxes.matching import CORNERS
from labeling_assets.core.tasks.boxes.metrics import BoxMap, coco_map
from labeling_assets.core.tasks.boxes.votes import answer_boxes
from labeling_assets.core.tasks.kind import Markdown, TestMetric, TestSplitReport

# COCO mAP averages AP over the IoU thresholds 0.5, 0.55, ..., 0.95: a detector that finds every object with its class,
# each box at IoU 0.6, scores 0.3 (AP 1 at 0.5, 0.55 and 0.6, 0 above). A macro-F1 floor of 0.5 would fail it.
BOX_MAP = TestMetric("test_map", "mAP@[.5:.95]", 0.3)


def box_test_report(
    answers: Sequence[Any], probs: Sequence[Any], failed: list[int], classes: list[str], *, model: str
) -> TestSplitReport:
    """mAP@[.5:.95], AP50, AP75 and per-class AP on the decodable items (not in ``failed``), a bar plot of the
    per-class AP and its table; the score is ``test_map``."""
    keep = [i for i in range(len(answers)) if i not in set(failed)]
    found = detector_map([probs[i] for i in keep], [answers[i] for i in keep], classes)
    per_class = {c: found.per_class.get(str(c), float("nan")) for c in classes}
    lines = ["| class | AP@[.5:.95] |", "|---|---:|"]
    lines += [f"| {md_text(str(c))} | {'n/a (no test box)' if np.isnan(ap) else f'{ap:.4f}'} |"
              for c, ap in per_class.items()]  # fmt: skip
    table = "\n".join(lines)
    bars = plots.bar_png({str(c): (0.0 if np.isnan(ap) else ap) for c, ap in per_class.items()},
                         f"{model}: AP@[.5:.95] per class", ylabel="AP")  # fmt: skip
    metrics = {"test_map": found.map, "test_ap50": found.ap50, "test_ap75": found.ap75}
    metrics.update({f"test_ap_{c}": ap for c, ap in per_class.items() if not np.isnan(ap)})
    shown: dict[str, Any] = {
        "task_type": "boxes",
        "test_items": len(keep),
        "undecodable_test_items": len(failed),
        "test_map": round(found.map, 6),
        "test_ap50": round(found.ap50, 6),
        "test_ap75": round(found.ap75, 6),
        "test_boxes": found.n_truth,
        "detected_boxes": found.n_detections,
        "per_class_ap": Markdown(table),
        "per_class_ap_plot": Markdown(markdown_image(bars, "AP per class")),
    }
    return TestSplitReport(
        metrics=metrics,
        files={"evaluation/per_class_ap.png": bars},
        texts={"evaluation/per_class_ap.md": table},
        tags={"test_map": f"{found.map:.6f}", "test_ap50": f"{found.ap50:.6f}"},
        summary=f"{model}: mAP@[.5:.95] {found.map:.4f}, AP50 {found.ap50:.4f}, AP75 {found.ap75:.4f} on "
        f"{len(keep)} test images",
        report=shown,
        score_name=BOX_MAP.name,
    )


def _classes_of(answer: Any) -> list[str]:
    boxes = answer.get("boxes") if isinstance(answer, dict) else None
    return sorted({str(label) for b in boxes or [] if isinstance(b, dict) for label in b.get("labels") or []})


def encode_answers(answers: Sequence[Any]) -> Any:
    """Answers as a 1-d object array (one dict per item; numpy would otherwise try to make a table of them)."""
    out = np.empty(len(answers), dtype=object)
    for n, answer in enumerate(answers):
        out[n] = answer
    return out


def detector_map(outputs: Sequence[Any], answers: Sequence[Any], classes: Sequence[str] | None = None) -> BoxMap:
    """COCO mAP of detector outputs (one per item; None: nothing detected) against the answers' boxes, over
    ``classes`` (None: every class either names)."""
    truth, found = [], []
    for n, (output, answer) in enumerate(zip(outputs, answers, strict=True)):
        boxes, _ = answer_boxes(answer, classes if classes is not None else _classes_of(answer))
        truth += [(f"t{n}", label, *corners) for label, *corners in boxes]
        found += [(f"t{n}", str(b["label"]), *(float(b[k]) for k in CORNERS), float(b["score"]))
                  for b in ((output or {}).get("boxes") or [])]  # fmt: skip
    columns = ["item_id", "label", *CORNERS]
    truth_frame = pd.DataFrame(truth, columns=columns)
    found_frame = pd.DataFrame(found, columns=[*columns, "score"])
    names = [str(c) for c in classes] if classes is not None else \
        sorted(set(truth_frame["label"]) | set(found_frame["label"]))  # fmt: skip
    return coco_map(truth_frame, found_frame, [f"t{n}" for n in range(len(outputs))], names)
