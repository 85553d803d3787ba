"""Stage 6, labeler quality: per-labeler statistics (one partition per labeler) and a leaderboard."""

from dataclasses import dataclass
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import sqlalchemy as sa
from pydantic import Field

from labeling_assets.assets.consensus import consensus_frame, load_votes
from labeling_assets.constants import GROUP_QUALITY, OWNERS
from labeling_assets.core.consensus.labeler_stats import (
    LabelerStats,
    compute_labeler_stats,
    speed_check,
    time_stats,
    weekly_trend,
)
from labeling_assets.core.consensus.methods import single_class
from labeling_assets.core.images import markdown_image
from labeling_assets.core.reporting import plots
from labeling_assets.core.store.schema import LabelStore, items_table, labeler_stats_table, utcnow
from labeling_assets.partitions import labelers
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

# A labeler whose median time per label is below this share of the peers' median is "too fast".
TOO_FAST_FACTOR = 0.25


class LabelerStatsConfig(dg.Config):
    trend_weeks: int = Field(default=8, ge=1, description="Weekly windows kept in the trend.")


@dataclass(frozen=True)
class QualityInputs:
    """Everything labeler statistics read from the store, for all labelers at once."""

    votes: pd.DataFrame  # item_id, labeler_id, label, lead_time_s, created_at (non-quarantined items)
    gold: pd.Series  # item_id -> hidden gold class
    consensus: pd.Series  # item_id -> newest consensus label
    population_shares: dict[str, float]  # class -> share of consensus labels


def load_quality_inputs(store: LabelStore, classes: list[str]) -> QualityInputs:
    votes = load_votes(store, classes).votes.frame
    gold_rows = store.fetch(
        sa.select(items_table.c.item_id, items_table.c.gold_label).where(items_table.c.gold_label.is_not(None))
    )
    gold = pd.Series(
        {
            r["item_id"]: single_class(r["gold_label"])
            for r in gold_rows
            if single_class(r["gold_label"]) is not None
        },
        dtype=object,
    )
    consensus_rows = consensus_frame(store)
    # A consensus row from before a class-list change would make kappa fail on an unknown class.
    consensus_rows = consensus_rows[consensus_rows["label"].isin(classes)]
    consensus = pd.Series(consensus_rows["label"].to_numpy(), index=consensus_rows["item_id"], dtype=object)
    shares = consensus.value_counts(normalize=True)
    return QualityInputs(votes, gold, consensus, {str(k): float(v) for k, v in shares.items()})


def stats_for(inputs: QualityInputs, labeler_id: str, classes: list[str]) -> LabelerStats:
    mine = inputs.votes[inputs.votes["labeler_id"] == labeler_id]
    return compute_labeler_stats(
        mine,
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


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _row(stats: LabelerStats, computed_at: Any) -> dict[str, Any]:
    row = stats.row()
    row["computed_at"] = computed_at
    return row


@dg.asset(
    partitions_def=labelers,
    group_name=GROUP_QUALITY,
    deps=["consensus_labels"],
    kinds={"python", "sql"},
    owners=OWNERS,
    automation_condition=dg.AutomationCondition.eager(),
)
def labeler_stats(
    context: dg.AssetExecutionContext,
    config: LabelerStatsConfig,
    label_store: LabelStoreResource,
    project: ProjectSettings,
) -> dg.MaterializeResult:
    """One labeler's quality: gold accuracy, kappa vs consensus, speed, throughput, class usage and weekly trend."""
    labeler_id = context.partition_key
    store = label_store.get_store()
    classes = list(project.classes)
    inputs = load_quality_inputs(store, classes)
    mine = inputs.votes[inputs.votes["labeler_id"] == labeler_id]
    stats = stats_for(inputs, labeler_id, classes)
    trend = weekly_trend(
        mine,
        labeler_id=labeler_id,
        classes=classes,
        gold=inputs.gold,
        consensus=inputs.consensus,
        last_weeks=config.trend_weeks,
    )
    speed = speed_check(
        stats.median_time_s, peer_median_times(inputs.votes, labeler_id), factor=TOO_FAST_FACTOR
    )
    now = utcnow()
    with store.begin() as conn:
        conn.execute(labeler_stats_table.insert(), [_row(stats, now)] + [_row(week, now) for week in trend])
    context.log.info(
        f"{labeler_id}: {stats.n_labels} labels, gold accuracy {_fmt(stats.gold_accuracy)} on {stats.n_gold}, "
        f"kappa vs consensus {_fmt(stats.kappa_vs_consensus)}; {speed.reason}"
    )
    usage_lines = ["| class | labels | expected | ratio | flag |", "|---|---:|---:|---:|---|"]
    usage_lines += [
        f"| {u.label} | {u.observed} | {u.expected:.1f} | {u.ratio:.2f} | {u.flag} |"
        for u in stats.class_usage
    ]
    metadata: dict[str, Any] = {
        "labeler_id": dg.MetadataValue.text(labeler_id),
        "n_labels": dg.MetadataValue.int(stats.n_labels),
        "gold_accuracy": dg.MetadataValue.float(stats.gold_accuracy),
        "n_gold": dg.MetadataValue.int(stats.n_gold),
        "kappa_vs_consensus": dg.MetadataValue.float(stats.kappa_vs_consensus),
        "n_with_consensus": dg.MetadataValue.int(stats.n_with_consensus),
        "median_time_s": dg.MetadataValue.float(stats.median_time_s),
        "p90_time_s": dg.MetadataValue.float(stats.p90_time_s),
        "labels_per_day": dg.MetadataValue.float(stats.labels_per_day),
        "too_fast": dg.MetadataValue.bool(speed.too_fast),
        "speed": dg.MetadataValue.text(speed.reason),
        "class_distribution": dg.MetadataValue.json(stats.class_distribution),
        "class_usage_flags": dg.MetadataValue.json({str(u.label): u.flag for u in stats.usage_flags()}),
        "class_usage": dg.MetadataValue.md("\n".join(usage_lines)),
    }
    if trend:
        weeks = list(range(len(trend)))
        series = {
            name: (
                [w for w, s in zip(weeks, trend, strict=True) if getattr(s, name) is not None],
                [getattr(s, name) for s in trend if getattr(s, name) is not None],
            )
            for name in ("gold_accuracy", "kappa_vs_consensus")
        }
        metadata["trend_weeks"] = dg.MetadataValue.json([s.window for s in trend])
        metadata["trend"] = dg.MetadataValue.md(
            markdown_image(
                plots.lines_png(
                    series,
                    f"{labeler_id}: weekly quality ({trend[0].window} .. {trend[-1].window})",
                    "week #",
                    "score",
                ),
                "weekly trend",
            )
        )
    return dg.MaterializeResult(metadata=metadata)


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


def leaderboard_frame(inputs: QualityInputs, classes: list[str]) -> pd.DataFrame:
    """One row per labeler, best first (gold accuracy, then kappa vs consensus; unknowns last)."""
    rows = []
    for labeler_id in sorted(inputs.votes["labeler_id"].unique(), key=str):
        stats = stats_for(inputs, labeler_id, classes)
        speed = speed_check(
            stats.median_time_s, peer_median_times(inputs.votes, labeler_id), factor=TOO_FAST_FACTOR
        )
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
    return frame.iloc[order].reset_index(drop=True)


@dg.asset(
    group_name=GROUP_QUALITY,
    deps=["consensus_labels"],
    kinds={"python"},
    owners=OWNERS,
    automation_condition=dg.AutomationCondition.eager(),
)
def labeler_leaderboard(
    context: dg.AssetExecutionContext, label_store: LabelStoreResource, project: ProjectSettings
) -> dg.MaterializeResult:
    """All labelers side by side: gold accuracy, agreement with consensus, speed and class-usage flags."""
    classes = list(project.classes)
    board = leaderboard_frame(load_quality_inputs(label_store.get_store(), classes), classes)
    context.log.info(f"leaderboard of {len(board)} labelers")
    lines = [
        "| # | labeler | labels | gold acc. | gold n | kappa vs consensus | median s | labels/day | too fast | class flags |"
    ]
    lines.append("|---:|---|---:|---:|---:|---:|---:|---:|---|---|")
    for rank, row in enumerate(board.to_dict("records"), start=1):
        lines.append(
            f"| {rank} | {row['labeler_id']} | {row['n_labels']} | {_fmt(row['gold_accuracy'])} | {row['n_gold']} | "
            f"{_fmt(row['kappa_vs_consensus'])} | {_fmt(row['median_time_s'], 1)} | {_fmt(row['labels_per_day'], 1)} | "
            f"{'yes' if row['too_fast'] else ''} | {row['class_flags']} |"
        )
    metadata: dict[str, Any] = {
        "labelers": dg.MetadataValue.int(len(board)),
        "leaderboard": dg.MetadataValue.md("\n".join(lines)),
        "below_0_8_gold_accuracy": dg.MetadataValue.json(
            board.loc[board["gold_accuracy"].astype(float) < 0.8, "labeler_id"].tolist()
        ),
        "too_fast": dg.MetadataValue.json(board.loc[board["too_fast"].astype(bool), "labeler_id"].tolist()),
    }
    if not board.empty:
        scores = {
            "gold accuracy": {
                str(r["labeler_id"]): float(r["gold_accuracy"] or 0.0) for r in board.to_dict("records")
            },
            "kappa vs consensus": {
                str(r["labeler_id"]): float(r["kappa_vs_consensus"] or 0.0) for r in board.to_dict("records")
            },
        }
        metadata["plot"] = dg.MetadataValue.md(
            markdown_image(
                plots.bar_png(scores, "labeler quality (missing = 0)", "score", size=(8.0, 3.5)),
                "leaderboard",
            )
        )
    return dg.MaterializeResult(metadata=metadata)
