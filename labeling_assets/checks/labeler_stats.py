"""Checks per labeler_stats partition (one labeler each): gold accuracy and labeling speed (both WARN).

A run over many labeler partitions (the daily single-run backfill) is checked in one pass too."""

import warnings
from typing import Any

import dagster as dg

from labeling_assets.core.consensus.labeler_stats import ALL_WINDOW
from labeling_assets.core.consensus.leaderboard import speed_checks
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


def _gold_result(labeler_id: str, row: dict[str, Any] | None) -> dg.AssetCheckResult:
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
                "no labeler_stats row yet" if not row else "no gold item answered yet" if accuracy is None else ""
            ),
        },
    )


def _all_of(results: dict[str, dg.AssetCheckResult]) -> dg.AssetCheckResult:
    """A run over several labeler partitions gets one evaluation (Dagster 1.13 evaluates a partitioned check once
    per run): it fails when any labeler fails, and names them."""
    if len(results) == 1:
        return next(iter(results.values()))
    failing = sorted(k for k, r in results.items() if not r.passed)
    return dg.AssetCheckResult(
        passed=not failing,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "labelers_checked": dg.MetadataValue.int(len(results)),
            "failing_labelers": dg.MetadataValue.json(failing),
        },
    )


@dg.asset_check(asset="labeler_stats", partitions_def=labelers)
def labeler_gold_accuracy_at_least_0_8(
    context: dg.AssetCheckExecutionContext, label_store: LabelStoreResource
) -> dg.AssetCheckResult:
    """The labeler answers at least 80% of the hidden gold items right (no gold answered yet passes)."""
    store = label_store.get_store()
    return _all_of({k: _gold_result(k, latest_labeler_stats(store, k, ALL_WINDOW)) for k in context.partition_keys})


@dg.asset_check(asset="labeler_stats", partitions_def=labelers)
def labeler_not_too_fast(
    context: dg.AssetCheckExecutionContext, label_store: LabelStoreResource, project: ProjectSettings
) -> dg.AssetCheckResult:
    """The labeler's median time per label is not far below the peers' (clicking through without looking)."""
    votes = load_votes(label_store.get_store(), list(project.classes)).votes.frame
    results = {
        labeler_id: dg.AssetCheckResult(
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
        for labeler_id, result in speed_checks(votes, list(context.partition_keys)).items()
    }
    return _all_of(results)


labeler_stats_checks = [labeler_gold_accuracy_at_least_0_8, labeler_not_too_fast]
