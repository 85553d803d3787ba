"""Checks per labeler_stats partition (one labeler each): gold accuracy and labeling speed (both WARN)."""

import warnings

import dagster as dg

from labeling_assets.core.consensus.labeler_stats import ALL_WINDOW, time_stats
from labeling_assets.core.consensus.leaderboard import speed_against_peers
from labeling_assets.core.store.queries import latest_labeler_stats, load_votes
from labeling_assets.partitions import labelers
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

MIN_GOLD_ACCURACY = 0.8

# Partitioned asset checks are a Dagster preview feature; they are what lets each labeler's partition
# carry its own check result, so use them and keep the preview notice out of every import.
warnings.filterwarnings(
    "ignore", category=dg.PreviewWarning, message=".*partitions_def on an AssetCheckSpec.*"
)


@dg.asset_check(asset="labeler_stats", partitions_def=labelers)
def labeler_gold_accuracy_at_least_0_8(
    context: dg.AssetCheckExecutionContext, label_store: LabelStoreResource
) -> dg.AssetCheckResult:
    """The labeler answers at least 80% of the hidden gold items right (no gold answered yet passes)."""
    labeler_id = context.partition_key
    row = latest_labeler_stats(label_store.get_store(), labeler_id, ALL_WINDOW)
    # labeler_stats writes the row this reads: a missing row means the asset has not run for the labeler.
    accuracy: float | None = row["gold_accuracy"] if row else None
    return dg.AssetCheckResult(
        passed=accuracy is None or accuracy >= MIN_GOLD_ACCURACY,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "labeler_id": dg.MetadataValue.text(labeler_id),
            "gold_accuracy": dg.FloatMetadataValue(accuracy),
            "min_gold_accuracy": dg.MetadataValue.float(MIN_GOLD_ACCURACY),
            "note": dg.MetadataValue.text(
                "no labeler_stats row yet"
                if not row
                else "no gold item answered yet"
                if accuracy is None
                else ""
            ),
        },
    )


@dg.asset_check(asset="labeler_stats", partitions_def=labelers)
def labeler_not_too_fast(
    context: dg.AssetCheckExecutionContext, label_store: LabelStoreResource, project: ProjectSettings
) -> dg.AssetCheckResult:
    """The labeler's median time per label is not far below the peers' (clicking through without looking)."""
    labeler_id = context.partition_key
    votes = load_votes(label_store.get_store(), list(project.classes)).votes.frame
    median, _ = time_stats(votes.loc[votes["labeler_id"] == labeler_id, "lead_time_s"])
    result = speed_against_peers(votes, labeler_id, median)
    return dg.AssetCheckResult(
        passed=not result.too_fast,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "labeler_id": dg.MetadataValue.text(labeler_id),
            "median_time_s": dg.FloatMetadataValue(result.median_time_s),
            "peer_median_time_s": dg.FloatMetadataValue(result.peer_median_time_s),
            "ratio": dg.FloatMetadataValue(result.ratio),
            "reason": dg.MetadataValue.text(result.reason),
        },
    )


labeler_stats_checks = [labeler_gold_accuracy_at_least_0_8, labeler_not_too_fast]
