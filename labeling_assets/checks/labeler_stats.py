"""Checks per labeler_stats partition (one labeler each): gold accuracy and labeling speed, judged by intervals.

Each check FAILS (severity ERROR) only when the 95% Wilson interval is entirely on the bad side of the threshold,
WARNS when it straddles it (not enough evidence), and passes otherwise; n is always reported. Truth is hidden
gold plus adjudicated answers. A run over many labeler partitions (the daily single-run backfill) is checked in
one pass too."""

import warnings
from typing import Any

import dagster as dg

from labeling_assets.core.consensus.gates import RateGate, speed_gates
from labeling_assets.core.consensus.labeler_run import LabelerOptions
from labeling_assets.core.store.human_loop import labeler_ids_for
from labeling_assets.core.store.queries import load_quality_inputs
from labeling_assets.core.tasks import task_kind
from labeling_assets.partitions import labelers
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

# Partitioned asset checks are a Dagster preview feature; they are what lets each labeler's partition
# carry its own check result, so use them and keep the preview notice out of every import.
warnings.filterwarnings(
    "ignore", category=dg.PreviewWarning, message=".*partitions_def on an AssetCheckSpec.*"
)


def _result(key: str, labeler_id: str, verdict: RateGate, extra: dict[str, Any] | None = None) -> dg.AssetCheckResult:
    """pass -> passed; warn (interval straddles) -> WARN; fail (sure to be bad) -> ERROR; no data passes."""
    return dg.AssetCheckResult(
        passed=verdict.verdict in ("pass", "no_data"),
        severity=dg.AssetCheckSeverity.ERROR if verdict.verdict == "fail" else dg.AssetCheckSeverity.WARN,
        metadata={
            "labeler": dg.MetadataValue.text(key),
            "labeler_id": dg.MetadataValue.text(labeler_id),
            "verdict": dg.MetadataValue.text(verdict.verdict),
            "rate": dg.FloatMetadataValue(verdict.rate),
            "n": dg.MetadataValue.int(verdict.n),
            "ci_low": dg.MetadataValue.float(round(verdict.low, 4)),
            "ci_high": dg.MetadataValue.float(round(verdict.high, 4)),
            "threshold": dg.MetadataValue.float(verdict.threshold),
            "reason": dg.MetadataValue.text(verdict.reason),
            **(extra or {}),
        },
    )


def _all_of(results: dict[str, dg.AssetCheckResult]) -> dg.AssetCheckResult:
    """A run over several labeler partitions gets one evaluation (Dagster 1.13 evaluates a partitioned check once
    per run): ERROR when any labeler is sure to be bad, WARN when some are uncertain; names them."""
    if len(results) == 1:
        return next(iter(results.values()))
    failing = sorted(k for k, r in results.items() if not r.passed)
    sure = sorted(k for k, r in results.items() if not r.passed and r.severity == dg.AssetCheckSeverity.ERROR)
    return dg.AssetCheckResult(
        passed=not failing,
        severity=dg.AssetCheckSeverity.ERROR if sure else dg.AssetCheckSeverity.WARN,
        metadata={
            "labelers_checked": dg.MetadataValue.int(len(results)),
            "failing_labelers": dg.MetadataValue.json(failing),
            "sure_to_be_bad": dg.MetadataValue.json(sure),
        },
    )


@dg.asset_check(asset="labeler_stats", partitions_def=labelers)
def labeler_gold_accuracy_at_least_0_8(
    context: dg.AssetCheckExecutionContext, label_store: LabelStoreResource, project: ProjectSettings
) -> dg.AssetCheckResult:
    """The kind's gold score (hidden gold and adjudicated answers) is not surely below the gold gate's threshold:
    fails only when the 95% Wilson interval's upper bound is below it, warns when the interval straddles it;
    per-class scores in metadata. The threshold is ProjectSettings.gold_gate_threshold, else the kind's
    (TaskKind.gold_gate_threshold): 0.8 gold accuracy for the class kinds (label sets: the worse of sensitivity
    and specificity over all classes), 0.5 of matched / (gold + false) for boxes and text spans, where a box or
    span slightly off costs twice (the name keeps the class kinds' 0.8; the metadata's threshold is the one used)."""
    store = label_store.get_store()
    classes, kind = list(project.classes), task_kind(project.task_type)
    inputs = load_quality_inputs(store, classes, task_type=project.task_type, allow_empty=project.allow_empty_set,
                                 allow_overlap=project.allow_overlapping_spans)
    threshold = LabelerOptions(classes, gold_gate_threshold=project.gold_gate_threshold).gold_threshold(kind)
    results = {}
    for key, labeler_id in labeler_ids_for(store, list(context.partition_keys)).items():
        votes = inputs.votes_of(labeler_id)
        # Label sets: the worse of findings caught and absent classes left unticked (the kind's gold gate).
        verdict, per_class = kind.gold_gate(votes, inputs.gold, classes, threshold)
        extra = {"per_class": dg.MetadataValue.json(per_class),
                 "classes_surely_below": dg.MetadataValue.json(sorted(c for c, g in per_class.items()
                                                                      if g["verdict"] == "fail"))}  # fmt: skip
        results[key] = _result(key, labeler_id, verdict, extra)
    return _all_of(results)


@dg.asset_check(asset="labeler_stats", partitions_def=labelers)
def labeler_not_too_fast(
    context: dg.AssetCheckExecutionContext, label_store: LabelStoreResource, project: ProjectSettings
) -> dg.AssetCheckResult:
    """The share of labels given in under a quarter of the peers' median time is not surely above one half
    (clicking through without looking), by its 95% Wilson interval."""
    store = label_store.get_store()
    votes = load_quality_inputs(
        store, list(project.classes), task_type=project.task_type, allow_empty=project.allow_empty_set,
        allow_overlap=project.allow_overlapping_spans,
    ).votes
    ids = labeler_ids_for(store, list(context.partition_keys))
    gates = speed_gates(votes, list(ids.values()))
    return _all_of({key: _result(key, labeler_id, gates[labeler_id]) for key, labeler_id in ids.items()})


labeler_stats_checks = [labeler_gold_accuracy_at_least_0_8, labeler_not_too_fast]
