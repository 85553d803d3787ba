"""Checks on model_evaluation: the new model is good enough and not worse than the one before it.

Both read the latest materialization's metadata (the asset scores the previous registered version on
the same test items, so the comparison is like for like).
"""

from collections.abc import Sequence

import dagster as dg

MACRO_F1_FLOOR = 0.5
REGRESSION_TOLERANCE = 0.02


def _latest_metadata(context: dg.AssetCheckExecutionContext) -> dict[str, object]:
    event = context.instance.get_latest_materialization_event(dg.AssetKey("model_evaluation"))
    if event is None or event.asset_materialization is None:
        return {}
    return {key: value.value for key, value in event.asset_materialization.metadata.items()}


def build_evaluation_checks(
    *, floor: float = MACRO_F1_FLOOR, tolerance: float = REGRESSION_TOLERANCE
) -> Sequence[dg.AssetChecksDefinition]:
    """The two checks with the given thresholds (a factory, so deployments can set their own)."""

    @dg.asset_check(
        asset="model_evaluation",
        name="test_macro_f1_above_floor",
        description=f"Test macro-F1 of the latest model is at least {floor}.",
    )
    def test_macro_f1_above_floor(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        metadata = _latest_metadata(context)
        value = metadata.get("test_macro_f1")
        if not isinstance(value, int | float):
            return dg.AssetCheckResult(
                passed=False, metadata={"reason": "no test_macro_f1 on the materialization"}
            )
        return dg.AssetCheckResult(
            passed=float(value) >= floor,
            metadata={
                "test_macro_f1": float(value),
                "floor": floor,
                "model_version": str(metadata.get("model_version")),
            },
        )

    @dg.asset_check(
        asset="model_evaluation",
        name="macro_f1_not_worse_than_previous_model",
        description=f"Test macro-F1 is not more than {tolerance} below the previous registered model's "
        "on the same test items (WARN).",
    )
    def macro_f1_not_worse_than_previous_model(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        metadata = _latest_metadata(context)
        current = metadata.get("test_macro_f1")
        previous = metadata.get("previous_test_macro_f1")
        if not isinstance(current, int | float) or not isinstance(previous, int | float):
            return dg.AssetCheckResult(
                passed=True,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"reason": "no previous registered model to compare with"},
            )
        delta = float(current) - float(previous)
        return dg.AssetCheckResult(
            passed=delta >= -tolerance,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "test_macro_f1": float(current),
                "previous_test_macro_f1": float(previous),
                "delta": round(delta, 6),
                "tolerance": tolerance,
                "model_version": str(metadata.get("model_version")),
                "previous_model_version": str(metadata.get("previous_model_version")),
            },
        )

    return [test_macro_f1_above_floor, macro_f1_not_worse_than_previous_model]


evaluation_checks = build_evaluation_checks()
