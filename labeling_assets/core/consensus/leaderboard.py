"""All labelers at once: the inputs every labeler's statistics share, peer speed, and the leaderboard.

:mod:`.labeler_stats` computes one labeler's numbers from their rows; this module holds what needs the
whole crowd (peers' median times for the speed check, ranking). Pure: the store reads that build
:class:`QualityInputs` are in ``core/store/queries.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from labeling_assets.core.consensus.adjudication import truth_for_stats
from labeling_assets.core.consensus.labeler_stats import (
    LabelerStats,
    SpeedCheck,
    iso_week,
    speed_check,
    time_stats,
)
from labeling_assets.core.label_sets import SINGLE_LABEL
from labeling_assets.core.tasks.registry import task_kind

if TYPE_CHECKING:
    from labeling_assets.core.tasks.kind import TaskKind

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


def per_class_quality_inputs(
    kind: TaskKind, votes: pd.DataFrame, gold: pd.Series, adjudicated: pd.Series, consensus: pd.Series,
    classes: Sequence[str],
) -> QualityInputs:
    """The kind's answers throughout (gold wins over adjudicated as truth); a class's population share is the share
    of consensus answers that name it (``kind.classes_of``): a label set holding it, an image with a box of it, a
    text marking it. The kinds whose answer may name several classes share this."""
    truth = truth_for_stats(kind.valid_answers(gold, classes), kind.valid_answers(adjudicated, classes))
    current = kind.valid_answers(consensus, classes)
    counts = {c: sum(c in kind.classes_of(a) for a in current) for c in classes}
    shares = {c: n / len(current) for c, n in counts.items()} if len(current) else {}
    return QualityInputs(votes, truth, current, shares)


@dataclass(frozen=True)
class LabelerReport:
    """One labeler's statistics, speed against the peers, and weekly trend (empty when not asked for)."""

    stats: LabelerStats
    speed: SpeedCheck
    trend: list[LabelerStats]


def _by_labeler(votes: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {str(k): rows for k, rows in votes.groupby("labeler_id", sort=False)} if not votes.empty else {}


def _object_series(series: pd.Series) -> pd.Series:
    return pd.Series(series.to_numpy(dtype=object), index=pd.Index(series.index.to_numpy(dtype=object), dtype=object))


def _plain(inputs: QualityInputs) -> QualityInputs:
    """The inputs with text as plain Python objects: pandas 3's Arrow-backed strings cost a conversion on every
    small per-labeler operation, which is most of the time for hundreds of labelers."""
    text = [c for c in ("item_id", "labeler_id", "label") if c in inputs.votes]
    votes = inputs.votes.astype({c: object for c in text})
    if "created_at" in votes and len(votes):
        votes["created_at"] = pd.to_datetime(votes["created_at"], utc=True, errors="coerce")
        votes["iso_week"] = iso_week(votes["created_at"]).astype(object)
    return QualityInputs(votes, _object_series(inputs.gold), _object_series(inputs.consensus), inputs.population_shares)


def speed_checks(votes: pd.DataFrame, labeler_ids: Sequence[str]) -> dict[str, SpeedCheck]:
    """Every listed labeler's speed against the others, from one pass over the votes (not one per labeler)."""
    groups = _by_labeler(votes)
    medians = {k: time_stats(rows["lead_time_s"])[0] if "lead_time_s" in rows else None for k, rows in groups.items()}
    out = {}
    for labeler_id in labeler_ids:
        own = medians.get(labeler_id)
        peers = [m for k, m in medians.items() if k != labeler_id and m is not None]
        out[labeler_id] = speed_check(own, peers, factor=TOO_FAST_FACTOR)
    return out


def labeler_reports(
    inputs: QualityInputs,
    classes: list[str],
    labeler_ids: Sequence[str] | None = None,
    *,
    trend_weeks: int = 0,
    kind: TaskKind | None = None,
) -> dict[str, LabelerReport]:
    """Statistics of many labelers (all with votes when None) in one pass: the votes are grouped once, so the cost
    grows with the votes, not with labelers x votes. The project's ``kind`` (single-label by default) computes
    each labeler's statistics and weekly trend (label sets: :mod:`.multilabel_stats`)."""
    kind = kind or task_kind(SINGLE_LABEL)
    inputs = _plain(inputs)
    groups = _by_labeler(inputs.votes)
    ids = sorted(groups, key=str) if labeler_ids is None else list(labeler_ids)
    speeds = speed_checks(inputs.votes, ids)
    empty = inputs.votes.iloc[0:0]
    out = {}
    for labeler_id in ids:
        votes = groups.get(labeler_id, empty)
        stats = kind.labeler_stats(
            votes, labeler_id=labeler_id, classes=classes, gold=inputs.gold, consensus=inputs.consensus,
            population_shares=inputs.population_shares,
        )
        trend = (
            kind.weekly_trend(votes, labeler_id=labeler_id, classes=classes, gold=inputs.gold,
                              consensus=inputs.consensus, last_weeks=trend_weeks)
            if trend_weeks
            else []
        )
        out[labeler_id] = LabelerReport(stats, speeds[labeler_id], trend)
    return out


def leaderboard_frame(inputs: QualityInputs, classes: list[str], *, kind: TaskKind | None = None) -> pd.DataFrame:
    """One row per labeler, best first (gold accuracy, then kappa vs consensus; unknowns last)."""
    rows = []
    for labeler_id, report in labeler_reports(inputs, classes, kind=kind).items():
        stats, speed = report.stats, report.speed
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
