"""Stage evaluate: the newest registered model measured on the frozen test split (its only reader), and the
champion rule applied.

The champion (``models:/<name>@champion``) is re-scored on the SAME test items in the same run, so the
comparison is like for like even after new items joined the test split. The newest model becomes the
champion when it is not worse than it within a tolerance (scored on gold test items when there are enough,
else on consensus labels; ``core.training.promotion``); otherwise it gets the alias ``challenger`` and the
check ``macro_f1_not_worse_than_previous_model`` says why.
"""

import json
from typing import Any

import dagster as dg
import numpy as np
import numpy.typing as npt
from pydantic import Field

from labeling_assets import lineage
from labeling_assets.constants import GPU_POOL, GROUP_EVALUATE, OWNERS
from labeling_assets.core import images as img
from labeling_assets.core.label_sets import is_multi_label, to_indicator
from labeling_assets.core.store import datasets, multilabel_targets
from labeling_assets.core.store.schema import LabelStore
from labeling_assets.core.training import metrics, promotion
from labeling_assets.core.training import multilabel_metrics as ml_metrics
from labeling_assets.core.training.multilabel import apply_thresholds
from labeling_assets.core.training.predict import predict_files
from labeling_assets.resources.mlflow import CHALLENGER_ALIAS, CHAMPION_ALIAS, LoadedModel, MLflowResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource


class ModelEvaluationConfig(dg.Config):
    device: str = "auto"
    ece_bins: int = 15
    min_gold_test_items: int = Field(
        default=promotion.MIN_GOLD_TEST_ITEMS,
        description="Decide the champion on gold test items when at least this many, else on consensus labels.",
    )
    promotion_tolerance: float = Field(
        default=promotion.PROMOTION_TOLERANCE,
        description="A model at most this much macro-F1 below the champion still becomes the champion.",
    )


@dg.asset(
    group_name=GROUP_EVALUATE,
    deps=["trained_model"],
    pool=GPU_POOL,
    kinds={"pytorch", "mlflow"},
    owners=OWNERS,
)
def model_evaluation(
    context: dg.AssetExecutionContext,
    config: ModelEvaluationConfig,
    label_store: LabelStoreResource,
    project: ProjectSettings,
    mlflow: MLflowResource,
) -> dg.MaterializeResult[None]:
    """Test-split scores of the newest model, and whether it is the champion that pre-labels."""
    store = label_store.get_store()
    dataset = lineage.current_dataset(context.instance, store)
    failed_checks = lineage.failed_blocking_dataset_checks(context.instance, dataset.version)
    if failed_checks:  # a leaky test split would decide the champion
        raise dg.Failure(
            f"dataset version {dataset.version} failed blocking checks {', '.join(failed_checks)}: no model "
            "is evaluated (nor promoted) on it. Fix the data, re-materialize dataset_splits, then evaluate."
        )
    registered = mlflow.latest_version()
    if registered is None:
        raise dg.Failure(
            f"no registered version of {mlflow.registered_model_name}: materialize trained_model first"
        )
    test = dataset.split("test")
    if test.empty:
        raise dg.Failure(f"dataset {dataset.version} has no test items")
    candidate = mlflow.load_model(registered)
    if is_multi_label(project.task_type):
        return _evaluate_label_sets(context, config, store, mlflow, candidate, dataset.version, test)
    y_true = _label_indices(test["label"], candidate.classes)
    gold = datasets.gold_label_indices(store, test["item_id"].astype(str).tolist(), candidate.classes)
    scoring = promotion.scoring_set(y_true, gold, config.min_gold_test_items)
    paths = test["uri"].astype(str).tolist()
    context.log.info(
        f"Evaluating {registered.label} on {len(paths)} test items of dataset {dataset.version} "
        f"(champion decided on {scoring.n_items} {scoring.basis}-labeled items)"
    )
    probs, failed = _predict(candidate, paths, config)
    report = _report(probs, failed, y_true, candidate.classes, config)
    decision = _decide(context, mlflow, candidate, probs, failed, paths, scoring, config)
    _apply(mlflow, registered.version, decision)
    confusion_png = metrics.confusion_matrix_png(report.confusion, candidate.classes, title=registered.label)
    mlflow.log_to_run(
        registered.run_id,
        metrics=report.scalar_metrics("test_"),
        params={"test_dataset_version": dataset.version},
        files={"evaluation/confusion_matrix.png": confusion_png},
        texts={"evaluation/per_class.md": report.per_class_markdown()},
    )
    mlflow.set_version_tags(registered.version, _version_tags(report, dataset.version, decision))
    context.log.info(f"{_summary(registered.label, report)}. {decision.reason()}")
    metadata = _evaluation_metadata(mlflow, candidate, dataset.version, report, len(failed), confusion_png)
    return dg.MaterializeResult(
        metadata={**metadata, **_decision_metadata(mlflow, decision, scoring, config)}
    )


def _label_indices(labels: Any, classes: list[str]) -> npt.NDArray[np.int64]:
    try:
        return datasets.label_indices(labels, classes)
    except datasets.UnknownLabels as exc:
        raise dg.Failure(str(exc)) from exc


def _predict(
    loaded: LoadedModel, paths: list[str], config: ModelEvaluationConfig
) -> tuple[npt.NDArray[np.floating[Any]], list[int]]:
    return predict_files(
        loaded.model,
        paths,
        image_size=loaded.config.image_size,
        channels=loaded.config.channels,
        num_classes=len(loaded.classes),
        device=config.device,
        task_kind=loaded.config.task_kind,
    )


def _report(
    probs: npt.NDArray[np.floating[Any]],
    failed: list[int],
    y_true: npt.NDArray[np.int64],
    classes: list[str],
    config: ModelEvaluationConfig,
) -> metrics.EvaluationReport:
    keep = np.ones(len(y_true), dtype=bool)
    keep[failed] = False
    return metrics.evaluate_probs(y_true[keep], probs[keep], classes, n_bins=config.ece_bins)


def _decide(
    context: dg.AssetExecutionContext,
    mlflow: MLflowResource,
    candidate: LoadedModel,
    probs: npt.NDArray[np.floating[Any]],
    failed: list[int],
    paths: list[str],
    scoring: promotion.ScoringSet,
    config: ModelEvaluationConfig,
) -> promotion.Decision:
    """The champion rule, with the champion re-scored on the same items (never a number from another split)."""
    score, n_items = promotion.score(probs, scoring, failed)
    champion = mlflow.champion()
    champion_score: float | None = None
    comparable = True
    if champion is not None and champion.version == candidate.registered.version:
        champion_score = score
    elif champion is not None:
        loaded = mlflow.load_model(champion)
        comparable = loaded.classes == candidate.classes
        if comparable:
            champion_probs, champion_failed = _predict(loaded, paths, config)
            # Both on the items both could decode (the same files, so normally the same failures).
            champion_score, n_items = promotion.score(
                champion_probs, scoring, sorted({*failed, *champion_failed})
            )
            score = promotion.score(probs, scoring, sorted({*failed, *champion_failed}))[0]
        else:
            context.log.warning(f"{champion.label} predicts {loaded.classes}: not comparable, replaced")
    return promotion.decide(
        candidate=candidate.registered.label,
        candidate_score=score,
        champion=champion.label if champion is not None else None,
        champion_score=champion_score,
        basis=scoring.basis,
        n_items=n_items,
        tolerance=config.promotion_tolerance,
        comparable=comparable,
    )


def _apply(mlflow: MLflowResource, version: int, decision: promotion.Decision) -> None:
    """Move the aliases: the winner is ``champion``; a loser is ``challenger`` (one alias, one version)."""
    if decision.promote:
        mlflow.set_alias(CHAMPION_ALIAS, version)
        challenger = mlflow.version_by_alias(CHALLENGER_ALIAS)
        if challenger is not None and challenger.version <= version:
            mlflow.delete_alias(CHALLENGER_ALIAS)  # it lost to an older champion than this one
    else:
        mlflow.set_alias(CHALLENGER_ALIAS, version)


def _version_tags(
    report: metrics.EvaluationReport, dataset_version: str, decision: promotion.Decision
) -> dict[str, str]:
    return {
        "test_macro_f1": f"{report.macro_f1:.6f}",
        "test_accuracy": f"{report.accuracy:.6f}",
        "test_dataset_version": dataset_version,
        "promotion": decision.alias,
        "promotion_reason": decision.reason(),
    }


def _summary(label: str, report: metrics.EvaluationReport) -> str:
    return (
        f"{label}: accuracy {report.accuracy:.4f}, macro-F1 {report.macro_f1:.4f}, "
        f"AUC {report.macro_auc:.4f}, ECE {report.ece:.4f}"
    )


def _evaluation_metadata(
    mlflow: MLflowResource,
    latest: LoadedModel,
    dataset_version: str,
    report: metrics.EvaluationReport,
    n_failed: int,
    confusion_png: bytes,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "model_version": dg.MetadataValue.text(latest.registered.label),
        "dataset_version": dg.MetadataValue.text(dataset_version),
        "mlflow_run": dg.MetadataValue.url(mlflow.run_url(latest.registered.run_id)),
        "test_items": dg.MetadataValue.int(report.n_items),
        "undecodable_test_items": dg.MetadataValue.int(n_failed),
        "test_accuracy": dg.MetadataValue.float(round(report.accuracy, 6)),
        "test_macro_f1": dg.MetadataValue.float(round(report.macro_f1, 6)),
        "test_ece": dg.MetadataValue.float(round(report.ece, 6)),
        "per_class": dg.MetadataValue.md(report.per_class_markdown()),
        "confusion_matrix": dg.MetadataValue.md(img.markdown_image(confusion_png, "confusion matrix")),
    }
    if not np.isnan(report.macro_auc):
        metadata["test_macro_auc_ovr"] = dg.MetadataValue.float(round(report.macro_auc, 6))
    return metadata


def _decision_metadata(
    mlflow: MLflowResource,
    decision: promotion.Decision,
    scoring: promotion.ScoringSet,
    config: ModelEvaluationConfig,
) -> dict[str, Any]:
    """What the champion check reads: both scores on the same items, the basis, n, and the outcome."""
    champion_now = decision.candidate if decision.promote else decision.champion
    metadata: dict[str, Any] = {
        "alias": dg.MetadataValue.text(decision.alias),
        "promoted": dg.MetadataValue.bool(decision.promote),
        "promotion_outcome": dg.MetadataValue.text(decision.outcome),
        "promotion_reason": dg.MetadataValue.text(decision.reason()),
        "champion_model_version": dg.MetadataValue.text(str(champion_now)),
        "champion_uri": dg.MetadataValue.text(mlflow.alias_uri(CHAMPION_ALIAS)),
        "previous_champion_version": dg.MetadataValue.text(decision.champion or "none"),
        "scoring_basis": dg.MetadataValue.text(decision.basis),
        "scoring_items": dg.MetadataValue.int(decision.n_items),
        "gold_test_items": dg.MetadataValue.int(scoring.n_gold),
        "min_gold_test_items": dg.MetadataValue.int(config.min_gold_test_items),
        "promotion_tolerance": dg.MetadataValue.float(decision.tolerance),
        "candidate_macro_f1": dg.MetadataValue.float(round(decision.candidate_score, 6)),
    }
    if decision.champion_score is not None:
        metadata["previous_champion_macro_f1"] = dg.MetadataValue.float(round(decision.champion_score, 6))
    return metadata


# --- multi-label -----------------------------------------------------------------------------------


def _evaluate_label_sets(
    context: dg.AssetExecutionContext,
    config: ModelEvaluationConfig,
    store: LabelStore,
    mlflow: MLflowResource,
    candidate: LoadedModel,
    dataset_version: str,
    test: Any,
) -> dg.MaterializeResult[None]:
    """The multi-label evaluation: per-label and averaged metrics at the model's own thresholds, the
    per-label AUC/AP bar plot, and the champion rule on macro-F1 at each model's thresholds."""
    registered = candidate.registered
    if not candidate.config.multi_label:
        raise dg.Failure(
            f"{registered.label} is a single-label model and the project is multi_label: train again"
        )
    try:
        y_true = multilabel_targets.label_set_indicator(test["label"], candidate.classes)
    except datasets.UnknownLabels as exc:
        raise dg.Failure(str(exc)) from exc
    paths = test["uri"].astype(str).tolist()
    context.log.info(f"Evaluating {registered.label} on {len(paths)} test items of dataset {dataset_version}")
    probs, failed = _predict(candidate, paths, config)
    keep = np.ones(len(paths), dtype=bool)
    keep[failed] = False
    report = ml_metrics.evaluate_multilabel(
        y_true[keep], probs[keep], candidate.classes, candidate.thresholds
    )
    scoring, truth = _scoring_sets(store, test, y_true, candidate.classes, config.min_gold_test_items)
    decision = _decide_sets(context, mlflow, candidate, probs, failed, paths, scoring, truth, config)
    _apply(mlflow, registered.version, decision)
    bars = ml_metrics.per_label_bar_png(report, title=f"{registered.label}: per-label ROC-AUC and AP")
    mlflow.log_to_run(
        registered.run_id,
        metrics=report.scalar_metrics("test_"),
        params={"test_dataset_version": dataset_version},
        files={
            "evaluation/per_label_auc_ap.png": bars,
            "evaluation/roc_curves.json": json.dumps(report.roc).encode("utf-8"),
        },
        texts={
            "evaluation/per_label.md": report.per_label_markdown(),
            "evaluation/summary.md": report.summary_markdown(),
        },
    )
    mlflow.set_version_tags(
        registered.version,
        {"test_macro_f1": f"{report.macro_f1:.6f}", "test_macro_auc": f"{report.macro_auc:.6f}",
         "test_dataset_version": dataset_version, "promotion": decision.alias, "promotion_reason": decision.reason()},
    )  # fmt: skip
    context.log.info(
        f"{registered.label}: macro-AUC {report.macro_auc:.4f}, mAP {report.macro_map:.4f}, macro-F1 "
        f"{report.macro_f1:.4f}, Hamming {report.hamming_loss:.4f}. {decision.reason()}"
    )
    metadata = _label_set_metadata(mlflow, candidate, dataset_version, report, len(failed), bars)
    return dg.MaterializeResult(
        metadata={**metadata, **_decision_metadata(mlflow, decision, scoring, config)}
    )


def _scoring_sets(
    store: LabelStore, test: Any, y_true: npt.NDArray[Any], classes: list[str], min_gold: int
) -> tuple[promotion.ScoringSet, npt.NDArray[Any]]:
    """The test rows the champion is decided on and their true sets: the gold sets of the gold test items
    when there are at least ``min_gold`` (as single-label), else every item's consensus set."""
    gold = multilabel_targets.gold_label_sets(store, test["item_id"].astype(str).tolist(), classes)
    rows = np.array([i for i, g in enumerate(gold) if g is not None], dtype=np.int64)
    if len(rows) >= min_gold:
        truth = to_indicator([gold[i] or [] for i in rows], classes)
        return promotion.ScoringSet("gold", rows, np.zeros(len(rows), dtype=np.int64), len(rows)), truth
    everyone = np.arange(len(y_true), dtype=np.int64)
    return promotion.ScoringSet(
        "consensus", everyone, np.zeros(len(y_true), dtype=np.int64), len(rows)
    ), y_true


def _set_macro_f1(
    loaded: LoadedModel,
    probs: npt.NDArray[np.floating[Any]],
    scoring: promotion.ScoringSet,
    truth: npt.NDArray[Any],
    keep: npt.NDArray[np.bool_],
) -> float:
    """Macro-F1 at the model's thresholds on the scoring rows that every compared model could decode."""
    rows = keep[scoring.rows]
    predicted = apply_thresholds(probs[scoring.rows][rows], loaded.thresholds)
    return ml_metrics.macro_f1_multilabel(truth[rows], predicted)


def _decide_sets(
    context: dg.AssetExecutionContext,
    mlflow: MLflowResource,
    candidate: LoadedModel,
    probs: npt.NDArray[np.floating[Any]],
    failed: list[int],
    paths: list[str],
    scoring: promotion.ScoringSet,
    truth: npt.NDArray[Any],
    config: ModelEvaluationConfig,
) -> promotion.Decision:
    """The champion rule on macro-F1 at each model's own thresholds, both on the same test items."""
    keep = np.ones(len(paths), dtype=bool)
    keep[failed] = False
    score = _set_macro_f1(candidate, probs, scoring, truth, keep)
    champion = mlflow.champion()
    champion_score: float | None = None
    comparable = True
    if champion is not None and champion.version == candidate.registered.version:
        champion_score = score
    elif champion is not None:
        loaded = mlflow.load_model(champion)
        comparable = loaded.classes == candidate.classes and loaded.config.multi_label
        if comparable:
            champion_probs, champion_failed = _predict(loaded, paths, config)
            keep[champion_failed] = False
            champion_score = _set_macro_f1(loaded, champion_probs, scoring, truth, keep)
            score = _set_macro_f1(candidate, probs, scoring, truth, keep)
        else:
            context.log.warning(
                f"{champion.label} is not a multi-label model of {candidate.classes}: replaced"
            )
    return promotion.decide(
        candidate=candidate.registered.label,
        candidate_score=score,
        champion=champion.label if champion is not None else None,
        champion_score=champion_score,
        basis=scoring.basis,
        n_items=int(keep[scoring.rows].sum()),
        tolerance=config.promotion_tolerance,
        comparable=comparable,
    )


def _label_set_metadata(
    mlflow: MLflowResource,
    latest: LoadedModel,
    dataset_version: str,
    report: ml_metrics.MultiLabelReport,
    n_failed: int,
    bars: bytes,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "model_version": dg.MetadataValue.text(latest.registered.label),
        "dataset_version": dg.MetadataValue.text(dataset_version),
        "mlflow_run": dg.MetadataValue.url(mlflow.run_url(latest.registered.run_id)),
        "task_type": dg.MetadataValue.text("multi_label"),
        "test_items": dg.MetadataValue.int(report.n_items),
        "undecodable_test_items": dg.MetadataValue.int(n_failed),
        "test_macro_f1": dg.MetadataValue.float(round(report.macro_f1, 6)),
        "test_micro_f1": dg.MetadataValue.float(round(report.micro_f1, 6)),
        "test_hamming_loss": dg.MetadataValue.float(round(report.hamming_loss, 6)),
        "test_exact_match": dg.MetadataValue.float(round(report.exact_match, 6)),
        "summary": dg.MetadataValue.md(report.summary_markdown()),
        "per_label": dg.MetadataValue.md(report.per_label_markdown()),
        "per_label_auc_ap": dg.MetadataValue.md(img.markdown_image(bars, "per-label ROC-AUC and AP")),
        "labels_with_undefined_auc": dg.MetadataValue.json(report.undefined_labels),
    }
    for name in ("macro_auc", "micro_auc", "macro_map", "micro_map"):
        value = getattr(report, name)
        if not np.isnan(value):
            metadata[f"test_{name}"] = dg.MetadataValue.float(round(float(value), 6))
    return metadata
