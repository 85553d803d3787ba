"""Checks on model_evaluation: the newest model is good enough, and whether it displaced the champion.

Both read the latest materialization's metadata. The champion decision is made by the asset (it moves the
MLflow aliases, with the threshold in its run config); the check reports it, so the two never disagree.
"""

from collections.abc import Sequence
from typing import Any

import dagster as dg

MACRO_F1_FLOOR = 0.5


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
)


def build_evaluation_checks(*, floor: float = MACRO_F1_FLOOR) -> Sequence[dg.AssetChecksDefinition]:
    """The two checks, the floor as given (a factory, so deployments can set their own)."""

    @dg.asset_check(
        asset="model_evaluation",
        name="test_macro_f1_above_floor",
        description=f"The test score of the latest model (macro-F1; mAP@[.5:.95] for boxes) is at least {floor}.",
    )
    def test_macro_f1_above_floor(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        metadata = _latest_metadata(context)
        name = str(metadata.get("test_score_name", "test_macro_f1"))  # the kind's test score
        value = metadata.get(name)
        if not isinstance(value, int | float):
            return dg.AssetCheckResult(
                passed=False, metadata={"reason": f"no {name} on the materialization"}
            )
        return dg.AssetCheckResult(
            passed=float(value) >= floor,
            metadata={
                name: float(value),
                "floor": floor,
                "model_version": str(metadata.get("model_version")),
            },
        )

    # The name predates the champion alias and is kept (saved selections and history refer to it).
    @dg.asset_check(
        asset="model_evaluation",
        name="macro_f1_not_worse_than_previous_model",
        description="The newest model is not worse than the champion (models:/<name>@champion): both scored "
        "on the same frozen test items, on their gold labels when the split holds at least "
        "model_evaluation's min_gold_test_items gold items, else on consensus labels, within its "
        "promotion_tolerance of macro-F1. Passing, it became the champion (the first model always does); "
        "failing (WARN), it is the challenger and the champion stays, the metadata says by how much.",
    )
    def macro_f1_not_worse_than_previous_model(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
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

    return [test_macro_f1_above_floor, macro_f1_not_worse_than_previous_model]


evaluation_checks = build_evaluation_checks()
