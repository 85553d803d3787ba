"""All labelers at once: the inputs every labeler's statistics share, peer speed, and the leaderboard.

:mod:`.labeler_stats` computes one labeler's numbers from their rows; this module holds what needs the
whole crowd (peers' median times for the speed check, ranking). Pure: the store reads that build
:class:`QualityInputs` are in ``core/store/queries.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from labeling_assets.core.consensus.labeler_stats import (
    LabelerStats,
    SpeedCheck,
    compute_labeler_stats,
    speed_check,
    time_stats,
)

# A labeler whose median time per label is below this share of the peers' median is "too fast".
TOO_FAST_FACTOR = 0.25

LEADERBOARD_COLUMNS = [
    "labeler_id",
    "n_labels",
    "gold_accuracy",
    "n_gold",
    "kappa_vs_consensus",
    "median_time_s",
    "labels_per_day",
    "too_fast",
    "class_flags",
]


@dataclass(frozen=True)
class QualityInputs:
    """Everything labeler statistics read from the store, for all labelers at once."""

    votes: pd.DataFrame  # item_id, labeler_id, label, lead_time_s, created_at (non-quarantined items)
    gold: pd.Series  # item_id -> hidden gold class
    consensus: pd.Series  # item_id -> newest consensus label
    population_shares: dict[str, float]  # class -> share of consensus labels

    def votes_of(self, labeler_id: str) -> pd.DataFrame:
        return self.votes[self.votes["labeler_id"] == labeler_id]


def stats_for(inputs: QualityInputs, labeler_id: str, classes: list[str]) -> LabelerStats:
    """One labeler's statistics over all their votes."""
    return compute_labeler_stats(
        inputs.votes_of(labeler_id),
        labeler_id=labeler_id,
        classes=classes,
        gold=inputs.gold,
        consensus=inputs.consensus,
        population_shares=inputs.population_shares,
    )


def peer_median_times(votes: pd.DataFrame, labeler_id: str) -> list[float]:
    """Each other labeler's median time per label (labelers without lead times left out)."""
    out = []
    for _, rows in votes[votes["labeler_id"] != labeler_id].groupby("labeler_id"):
        median, _ = time_stats(rows["lead_time_s"]) if "lead_time_s" in rows else (None, None)
        if median is not None:
            out.append(median)
    return out


def speed_against_peers(votes: pd.DataFrame, labeler_id: str, median_time_s: float | None) -> SpeedCheck:
    """The labeler's median time per label against the other labelers' medians (TOO_FAST_FACTOR)."""
    return speed_check(median_time_s, peer_median_times(votes, labeler_id), factor=TOO_FAST_FACTOR)


def leaderboard_frame(inputs: QualityInputs, classes: list[str]) -> pd.DataFrame:
    """One row per labeler, best first (gold accuracy, then kappa vs consensus; unknowns last)."""
    rows = []
    for labeler_id in sorted(inputs.votes["labeler_id"].unique(), key=str):
        stats = stats_for(inputs, labeler_id, classes)
        speed = speed_against_peers(inputs.votes, labeler_id, stats.median_time_s)
        rows.append(
            {
                "labeler_id": labeler_id,
                "n_labels": stats.n_labels,
                "gold_accuracy": stats.gold_accuracy,
                "n_gold": stats.n_gold,
                "kappa_vs_consensus": stats.kappa_vs_consensus,
                "median_time_s": stats.median_time_s,
                "labels_per_day": stats.labels_per_day,
                "too_fast": speed.too_fast,
                "class_flags": ", ".join(f"{u.flag} {u.label}" for u in stats.usage_flags()),
            }
        )
    frame = pd.DataFrame(rows, columns=LEADERBOARD_COLUMNS)
    if frame.empty:
        return frame
    keys = frame[["gold_accuracy", "kappa_vs_consensus"]].astype(float).fillna(-np.inf)
    order = np.lexsort((frame["labeler_id"].astype(str), -keys["kappa_vs_consensus"], -keys["gold_accuracy"]))
    ranked: pd.DataFrame = frame.iloc[order].reset_index(drop=True)
    return ranked
