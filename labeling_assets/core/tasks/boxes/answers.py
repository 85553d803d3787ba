"""What the box kind (:mod:`.kind`) reads its answers with: valid answers, their votes and boxes, gold counts,
class presence of a manifest, and a labeler's statistics in one window."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from labeling_assets.core.consensus.labeler_stats import ALL_WINDOW, LabelerStats, labels_per_day, time_stats
from labeling_assets.core.tasks.boxes.gold import gold_box_score, gold_frame
from labeling_assets.core.tasks.boxes.stats import STATS_IOU, box_labeler_stats
from labeling_assets.core.tasks.boxes.votes import answer_boxes, box_votes


def valid_box_answers(stored: pd.Series, classes: Sequence[str]) -> pd.Series:
    """The stored values that are box answers of the project (the empty set included)."""
    keep = {item: value for item, value in stored.items() if answer_boxes(value, classes)[1] is None}
    return pd.Series(keep, dtype=object)


def box_gold_counts(
    labels: pd.DataFrame, truth: pd.Series, classes: Sequence[str], only: str | None = None
) -> tuple[int, int]:
    """(matched boxes, gold boxes + false boxes) of ``labels`` on the gold items (``only``: one class's boxes)."""
    votes, boxes = vote_frames(labels, classes)
    gold, items = gold_frame(by_item(valid_box_answers(truth, classes)), classes)
    if only is not None:
        boxes, gold = boxes[boxes["label"] == only], gold[gold["label"] == only]
    scores = gold_box_score(votes, boxes, gold, items)
    return int(scores["matched"].sum()), int(scores["n"].sum())


def by_item(answers: pd.Series) -> dict[str, Any]:
    """Answers keyed by item id as text (what :func:`.gold.gold_frame` takes)."""
    return {str(item): value for item, value in answers.items()}


def image_sizes(answers: pd.DataFrame) -> dict[str, tuple[float | None, float | None]]:
    """item -> (width, height) of its image, from any box drawn on it (None: only "No object" answers)."""
    sizes: dict[str, tuple[float | None, float | None]] = {}
    for item, answer in zip(answers["item_id"].astype(str), answers["label"], strict=True):
        if item in sizes or not isinstance(answer, Mapping):
            continue
        for box in answer.get("boxes") or []:
            if isinstance(box, Mapping) and box.get("image_width") and box.get("image_height"):
                sizes[item] = (float(box["image_width"]), float(box["image_height"]))
                break
    return sizes


def presence_manifest(manifest: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """A box manifest as the multi-label split checks read it: ``label`` the classes each item has a box of."""
    present = [sorted({str(b[0]) for b in answer_boxes(a, classes)[0]}) for a in manifest["label"]]
    return manifest.assign(label=pd.Series(present, index=manifest.index, dtype=object))


def vote_frames(rows: pd.DataFrame, classes: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(votes, boxes) of stored answers as :func:`.votes.box_votes` gives them (bad answers left out)."""
    found = box_votes(rows, classes)
    return found.votes, found.boxes


def box_labeler_window(
    labels: pd.DataFrame, *, labeler_id: str, classes: Sequence[str], gold: pd.Series | None = None,
    consensus: pd.Series | None = None, window: str = ALL_WINDOW,
) -> LabelerStats:
    """A labeler's statistics in one window: ``gold_accuracy`` is the box gold score on the gold items they
    answered; ``kappa_vs_consensus`` is None (box agreement with consensus is the F1 of ``box_labeler_stats``, not
    a kappa); ``class_distribution`` counts boxes per class."""
    truth = valid_box_answers(gold if gold is not None else pd.Series(dtype=object), classes)
    votes, boxes = vote_frames(labels, classes)
    on_gold = votes[votes["item_id"].astype(str).isin(set(truth.index.astype(str)))]
    matched, n = box_gold_counts(labels, truth, classes) if len(on_gold) else (0, 0)
    current = valid_box_answers(consensus if consensus is not None else pd.Series(dtype=object), classes)
    median, p90 = time_stats(labels["lead_time_s"]) if "lead_time_s" in labels else (None, None)
    counts = boxes["label"].astype(str).value_counts()
    return LabelerStats(
        labeler_id=labeler_id,
        window=window,
        n_labels=len(labels),
        gold_accuracy=matched / n if n else None,
        n_gold=len(on_gold),
        kappa_vs_consensus=None,
        n_with_consensus=int(votes["item_id"].astype(str).isin(set(current.index.astype(str))).sum()),
        median_time_s=median,
        p90_time_s=p90,
        labels_per_day=labels_per_day(labels["created_at"]) if "created_at" in labels else None,
        class_distribution={str(c): int(counts.get(str(c), 0)) for c in classes},
        vs_consensus=consensus_scores(labels, current, classes),
    )


# Said with the scores: the reference is the crowd's answer this labeler helped make, not an independent truth.
CONSENSUS_BASIS = "the current consensus of every labeler, this labeler's own votes included"


def consensus_scores(labels: pd.DataFrame, consensus: pd.Series, classes: Sequence[str]) -> dict[str, Any]:
    """One labeler's boxes (``labels``: their answers) against the consensus boxes of the items they answered
    (:func:`.stats.box_labeler_stats`): precision and recall at IoU 0.5 with 95% Wilson intervals, the mean IoU
    of matched boxes, miss and false-box rates (None: nothing to count)."""
    votes, boxes = vote_frames(labels, classes)
    answered = set(votes["item_id"].astype(str))  # only their items' consensus is read (one call per labeler)
    reference, items = gold_frame({k: v for k, v in by_item(consensus).items() if k in answered}, classes)
    rows = box_labeler_stats(votes, boxes, reference, items).to_dict("records")
    if not rows:
        return {"consensus_items": 0, "consensus_basis": CONSENSUS_BASIS}
    [r] = rows

    def num(value: float) -> float | None:
        return None if pd.isna(value) else round(float(value), 4)

    return {
        "consensus_items": int(r["n_items"]),
        "consensus_iou_threshold": STATS_IOU,
        "consensus_box_precision": num(r["precision"]),
        "consensus_box_precision_ci": [num(r["precision_low"]), num(r["precision_high"])],
        "consensus_box_recall": num(r["recall"]),
        "consensus_box_recall_ci": [num(r["recall_low"]), num(r["recall_high"])],
        "consensus_mean_iou": num(r["mean_iou"]),
        "consensus_miss_rate": num(r["miss_rate"]),
        "consensus_false_box_rate": num(r["false_box_rate"]),
        "consensus_basis": CONSENSUS_BASIS,
    }
