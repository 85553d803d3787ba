"""The frame classifier scored on the frozen test split. Provides the kind's ``test_metric``
(:data:`SEGMENT_F1`) and the bodies of ``test_scoring`` (:func:`test_scoring`), ``test_score`` (:func:`test_score`),
``test_report`` (:func:`test_report`) and ``encode`` (:func:`encode_answers`), with the kind's signatures.

``answers`` are stored answers (lists of ``{start, end, label}``), ``outputs`` the trainer's per-item outputs
(:func:`.trainer.model_output`; None where the audio did not decode). Scores by ``core/speech/regions.py``:
segment F1 (a found region matches a true one of the same label at IoU >= 0.5, one to one; pooled over items),
boundary error (mean absolute seconds over the starts and ends of matched regions), and frame accuracy (the share
of 10 ms frames whose label, or none, agrees), with a per-class frame confusion; and pyannote.metrics' figures
(``core/speech/pyannote_eval.py``): identification and detection error rates and boundary F1 at 0.1 s.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from labeling_assets.core.display import md_text
from labeling_assets.core.speech.pyannote_eval import pyannote_score
from labeling_assets.core.speech.regions import Region, n_frames, pooled_segment_score
from labeling_assets.core.tasks.audio_segments.frame_model import frame_targets
from labeling_assets.core.tasks.audio_segments.trainer import NONE_CODE, regions_of
from labeling_assets.core.tasks.kind import Markdown, TestMetric, TestSplitReport

SCORE_NAME = "test_segment_f1"
# Segment F1 at IoU 0.5, as entity F1 for spans: under 0.5 a model misses or misplaces about every other region.
# The demo's frame classifier reaches well above it (docs/speech.md, "The frame classifier"), a model that marks one
# region over each utterance far below.
SEGMENT_F1 = TestMetric(SCORE_NAME, "segment F1 (IoU >= 0.5)", 0.5)


def encode_answers(answers: Sequence[Any]) -> Any:
    """Answers as a 1-d object array (one list per item; numpy would otherwise try to make a table of them)."""
    out = np.empty(len(answers), dtype=object)
    for n, answer in enumerate(answers):
        out[n] = answer
    return out


def _found(output: Any) -> list[Region]:
    return [Region(float(r["start"]), float(r["end"]), str(r["label"])) for r in (output or {}).get("regions") or []]


def test_scoring(store: Any, item_ids: list[str], answers: Any, classes: list[str], min_gold: int) -> Any:
    """``TaskKind.test_scoring``: the gold answers of the gold test items when there are at least ``min_gold``
    (gold is known truth), else every item's consensus answer (``promotion``'s rule)."""
    from labeling_assets.core.store.queries import gold_labels
    from labeling_assets.core.training import promotion

    read = {item: regions_of(value) for item, value in gold_labels(store, item_ids).items()}
    stored = {item: [{"start": r.start, "end": r.end, "label": r.label} for r in regions]
              for item, regions in read.items() if regions is not None}  # fmt: skip
    return promotion.answer_scoring_set(item_ids, stored, encode_answers, encode_answers(list(answers)), min_gold)


def test_score(probs: Any, truth: Any, thresholds: list[float] | None = None) -> float:
    """``TaskKind.test_score``: pooled segment F1 of the outputs' regions against the answers (None: no region)."""
    return pooled_segment_score([_found(o) for o in probs], [regions_of(a) or [] for a in truth]).f1


def frame_confusion(outputs: Sequence[Any], answers: Sequence[Any], classes: Sequence[str]) -> npt.NDArray[np.int64]:
    """(1 + classes)^2 frame counts, rows the answer's code (``none`` first), columns the model's; items whose
    output is None are left out. Frames span the output's duration."""
    size = len(classes) + 1
    table = np.zeros((size, size), dtype=np.int64)
    for output, answer in zip(outputs, answers, strict=True):
        if output is None:
            continue
        frames = n_frames(float(output["duration"]))
        truth = frame_targets(regions_of(answer) or [], classes, frames)
        found = frame_targets(_found(output), classes, frames)
        np.add.at(table, (truth, found), 1)
    return table


def test_report(
    answers: Any, probs: Any, failed: list[int], classes: list[str], thresholds: list[float] | None = None, *,
    model: str, ece_bins: int = 0,
) -> TestSplitReport:
    """``TaskKind.test_report``: segment F1, precision, recall, boundary error and frame accuracy on the test
    items whose audio decoded, per-class segment F1 and the frame confusion (no calibration: ``ece_bins`` unread)."""
    keep = [n for n in range(len(answers)) if n not in set(failed)]
    outputs, truth = [probs[n] for n in keep], [answers[n] for n in keep]
    found, expected = [_found(o) for o in outputs], [regions_of(a) or [] for a in truth]
    overall = pooled_segment_score(found, expected)
    confusion = frame_confusion(outputs, truth, classes)
    accuracy = float(np.trace(confusion) / confusion.sum()) if confusion.sum() else float("nan")
    codes = [NONE_CODE, *map(str, classes)]
    per_class = {c: pooled_segment_score([[r for r in f if r.label == c] for f in found],
                                         [[r for r in e if r.label == c] for e in expected]) for c in map(str, classes)}  # fmt: skip
    lines = ["| truth \\ model | " + " | ".join(md_text(c) for c in codes) + " |", "|---|" + "---:|" * len(codes)]
    lines += [f"| {md_text(c)} | " + " | ".join(str(int(v)) for v in row) + " |" for c, row in zip(codes, confusion, strict=True)]
    confusion_md = "\n".join(lines)
    rows = ["| class | segment F1 | precision | recall | boundary error (s) | matched |", "|---|---:|---:|---:|---:|---:|"]
    rows += [f"| {md_text(c)} | {s.f1:.3f} | {s.precision:.3f} | {s.recall:.3f} | "
             f"{'n/a' if np.isnan(s.boundary_error) else f'{s.boundary_error:.3f}'} | {s.matched} |"
             for c, s in per_class.items()]  # fmt: skip
    per_class_md = "\n".join(rows)
    metrics = {SCORE_NAME: overall.f1, "test_segment_precision": overall.precision,
               "test_segment_recall": overall.recall}  # fmt: skip
    if not np.isnan(overall.boundary_error):
        metrics["test_boundary_error_s"] = overall.boundary_error
    if not np.isnan(accuracy):
        metrics["test_frame_accuracy"] = accuracy
    metrics.update({f"test_segment_f1_{c}": s.f1 for c, s in per_class.items()})
    theirs = pyannote_score(found, expected, [float(o["duration"]) for o in outputs])
    metrics["test_boundary_f1_pyannote"] = theirs.boundary_f1
    if not np.isnan(theirs.identification_error_rate):  # nan: no true region on the test items
        metrics["test_identification_error_rate"] = theirs.identification_error_rate
        metrics["test_detection_error_rate"] = theirs.detection_error_rate
    boundary = "n/a" if np.isnan(overall.boundary_error) else f"{overall.boundary_error:.3f} s"
    return TestSplitReport(
        metrics=metrics,
        files={"evaluation/frame_confusion.json": json.dumps({"codes": codes, "counts": confusion.tolist()}).encode()},
        texts={"evaluation/frame_confusion.md": confusion_md, "evaluation/per_class.md": per_class_md},
        tags={SCORE_NAME: f"{overall.f1:.6f}"},
        summary=f"{model}: segment F1 {overall.f1:.4f} (precision {overall.precision:.4f}, recall "
        f"{overall.recall:.4f}), boundary error {boundary}, frame accuracy {accuracy:.4f} on {len(keep)} test items",
        report={"task_type": "audio_segments", "test_items": len(keep), "undecodable_test_items": len(failed),
                **{k: round(v, 6) for k, v in metrics.items()}, "per_class": Markdown(per_class_md),
                "frame_confusion": Markdown(confusion_md)},  # fmt: skip
        score_name=SCORE_NAME,
    )
