"""The Markdown tables the box kind's reports show: each labeler against the gold boxes, and box_em's estimates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from labeling_assets.core.display import md_text
from labeling_assets.core.tasks.boxes.answers import by_item, valid_box_answers, vote_frames
from labeling_assets.core.tasks.boxes.consensus import BoxConsensus
from labeling_assets.core.tasks.boxes.gold import gold_box_score, gold_frame
from labeling_assets.core.tasks.boxes.stats import box_labeler_stats


def gold_table(
    votes: pd.DataFrame, truth: pd.Series, classes: Sequence[str], names: Mapping[str, str]
) -> tuple[str, dict[str, float | None]]:
    """(each labeler's precision and recall against the gold boxes, IoU 0.5, 95% Wilson; each one's box gold
    score by name) over the labelers ``names`` holds."""
    mine = votes[votes["labeler_id"].astype(str).isin(set(names))]
    found, boxes = vote_frames(mine, classes)
    gold, items = gold_frame(by_item(valid_box_answers(truth, classes)), classes)
    stats = box_labeler_stats(found, boxes, gold, items)
    scores = gold_box_score(found, boxes, gold, items).set_index("labeler_id")
    lines = ["| labeler | precision (95% CI) | recall (95% CI) | gold items |", "|---|---|---|---:|"]
    score: dict[str, float | None] = {}
    for r in stats.to_dict("records"):
        who = names.get(str(r["labeler_id"]), str(r["labeler_id"]))
        lines.append(
            f"| {md_text(who)} | {_rate(r['precision'], r['precision_low'], r['precision_high'])} | "
            f"{_rate(r['recall'], r['recall_low'], r['recall_high'])} | {r['n_items']} |"
        )
        n = int(scores.loc[r["labeler_id"], "n"]) if r["labeler_id"] in scores.index else 0
        score[who] = round(int(scores.loc[r["labeler_id"], "matched"]) / n, 4) if n else None
    return "\n".join(lines), score


def estimates_table(run: BoxConsensus, names: Mapping[str, str]) -> str:
    """What box_em learned of each labeler: recall, false boxes per item, localization error, weight."""
    lines = ["| labeler | recall | false boxes per item | localization error | weight |", "|---|---:|---:|---:|---:|"]
    for r in run.labelers.to_dict("records"):
        lines.append(
            f"| {md_text(names.get(str(r['labeler_id']), r['labeler_id']))} | {r['recall']:.3f} | "
            f"{r['false_boxes_per_item']:.3f} | {r['localization_error']:.4f} | {r['weight']:.3f} |"
        )
    return "\n".join(lines)


def _rate(value: float, low: float, high: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.3f} [{low:.3f}, {high:.3f}]"
