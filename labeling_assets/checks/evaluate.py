"""Checks on model_evaluation: the newest model is good enough, and whether it displaced the champion.

Both read the latest materialization's metadata. The champion decision is made by the asset (it moves the
MLflow aliases, with the threshold in its run config); the check reports it, so the two never disagree.
Both judge the project's kind's test score (``TaskKind.test_metric``: macro-F1 for the class kinds, mAP@[.5:.95]
for boxes, entity F1 for text spans), and both are named after it (``test_map_above_floor`` and
``test_map_not_worse_than_previous_model`` in a box project), so the UI says which score each compares.
"""

from collections.abc import Sequence
from typing import Any

import dagster as dg

from labeling_assets.core.tasks import task_kind
from labeling_assets.core.tasks.kind import MACRO_F1, TestMetric
from labeling_assets.resources.project import ProjectSettings


def _latest_metadata(context: dg.AssetCheckExecutionContext) -> dict[str, object]:
    event = context.instance.get_latest_materialization_event(dg.AssetKey("model_evaluation"))
    if event is None or event.asset_materialization is None:
        return {}
    return {key: value.value for key, value in event.asset_materialization.metadata.items()}


# What the champion check shows, taken as is from the materialization.
_DECISION_KEYS = (
    "model_version",
    "alias",
    "promotion_outcome",
    "test_score_name",
    "candidate_macro_f1",
    "candidate_map",
    "previous_champion_version",
    "previous_champion_macro_f1",
    "previous_champion_map",
    "champion_model_version",
    "scoring_basis",
    "scoring_items",
    "gold_test_items",
    "min_gold_test_items",
    "promotion_tolerance",
    "release_gates",
)


def not_worse_check_name(metric: TestMetric) -> str:
    """The champion check's name: ``<score>_not_worse_than_previous_model`` (``test_map_...`` for boxes,
    ``test_entity_f1_...`` for text spans). The class kinds keep ``macro_f1_not_worse_than_previous_model``: the
    name predates the per-kind names, and saved selections and run history refer to it."""
    if metric == MACRO_F1:
        return "macro_f1_not_worse_than_previous_model"
    return f"{metric.name}_not_worse_than_previous_model"


def build_evaluation_checks(
    *, metric: TestMetric = MACRO_F1, floor: float | None = None
) -> Sequence[dg.AssetChecksDefinition]:
    """The two checks on ``metric`` (the kind's test score). The floor is ``floor`` when given (tests), else the
    project's ``test_score_floor`` when set, else the metric's own default, read when the check runs."""
    default = f"{floor}" if floor is not None else f"ProjectSettings.test_score_floor, else {metric.floor}"

    @dg.asset_check(
        asset="model_evaluation",
        name=f"{metric.name}_above_floor",
        description=f"The latest model's test {metric.label} is at least the floor ({default}). Not blocking: "
        "when it fails (ERROR) the loop goes on by itself as if it had passed. model_evaluation has already "
        "decided the champion by comparing with the current one, never by this floor (the first model becomes "
        "the champion whatever its score and pre-labels the open tasks), prelabels keep using the champion, and "
        "the retrain sensor trains again when enough new labels arrive. It tells a person to look: at the "
        "labels, the training settings, or the floor.",
    )
    def score_above_floor(context: dg.AssetCheckExecutionContext, project: ProjectSettings) -> dg.AssetCheckResult:
        metadata = _latest_metadata(context)
        wanted = floor if floor is not None else project.test_score_floor
        wanted = metric.floor if wanted is None else wanted
        value = metadata.get(metric.name)
        if not isinstance(value, int | float):
            scored = metadata.get("test_score_name", "nothing")
            return dg.AssetCheckResult(
                passed=False,
                metadata={"reason": f"no {metric.name} on the latest materialization (it scored {scored})",
                          "floor": wanted},  # fmt: skip
            )
        return dg.AssetCheckResult(
            passed=float(value) >= wanted,
            description=f"test {metric.label} {float(value):.4f} against the floor {wanted}",
            metadata={
                metric.name: float(value),
                "floor": wanted,
                "model_version": str(metadata.get("model_version")),
            },
        )

    @dg.asset_check(
        asset="model_evaluation",
        name=not_worse_check_name(metric),
        description=f"The newest model's test {metric.label} is not worse than the champion's "
        "(models:/<name>@champion): both scored "
        "on the same frozen test items, on their gold labels when the split holds at least "
        "model_evaluation's min_gold_test_items gold items, else on consensus labels, within its "
        f"promotion_tolerance of {metric.label}. Passing, it became the champion (the first model does unless it "
        "fails a release gate); failing (WARN), it is the challenger and the champion stays, the metadata says by how "
        "much, or which release gate (CPU latency, size against a baseline: docs/model.md) held it back.",
    )
    def not_worse_than_previous_model(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        metadata = _latest_metadata(context)
        promoted = metadata.get("promoted")
        if not isinstance(promoted, bool):
            return dg.AssetCheckResult(
                passed=False,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"reason": "no champion decision on the latest model_evaluation: materialize it again"},
            )
        reason = str(metadata.get("promotion_reason", ""))
        shown: dict[str, Any] = {key: metadata[key] for key in _DECISION_KEYS if key in metadata}
        return dg.AssetCheckResult(
            passed=promoted,
            severity=dg.AssetCheckSeverity.WARN,
            description=reason,
            metadata={"reason": reason, **shown},
        )

    return [score_above_floor, not_worse_than_previous_model]


def evaluation_checks_for(task_type: str) -> Sequence[dg.AssetChecksDefinition]:
    """The checks of a project of ``task_type``, on its kind's test score (the definitions build them)."""
    return build_evaluation_checks(metric=task_kind(task_type).test_metric)
