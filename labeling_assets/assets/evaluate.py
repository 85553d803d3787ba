"""Stage evaluate: the registered model measured on the frozen test split (its only reader).

The previous registered version is scored on the SAME test items in the same run, so the regression
check compares like with like even after new items joined the test split.
"""

from typing import Any

import dagster as dg
import numpy as np
import numpy.typing as npt

from labeling_assets import lineage
from labeling_assets.constants import GPU_POOL, GROUP_EVALUATE, OWNERS
from labeling_assets.core import images as img
from labeling_assets.core.store import datasets
from labeling_assets.core.training import metrics
from labeling_assets.core.training.predict import predict_files
from labeling_assets.resources.mlflow import LoadedModel, MLflowResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource


class ModelEvaluationConfig(dg.Config):
    device: str = "auto"
    ece_bins: int = 15
    compare_previous: bool = True  # also score the previous registered version on the same test items


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
    """Test-split accuracy, macro-F1, per-class scores, OvR AUC, calibration and confusion of the latest model."""
    versions = mlflow.registered_versions()
    if not versions:
        raise dg.Failure(
            f"no registered version of {mlflow.registered_model_name}: materialize trained_model first"
        )
    dataset = lineage.current_dataset(context.instance, label_store.get_store())
    test = dataset.split("test")
    if test.empty:
        raise dg.Failure(f"dataset {dataset.version} has no test items")
    latest = mlflow.load_model(versions[0])
    y_true = _label_indices(test["label"], latest.classes)
    paths = test["uri"].astype(str).tolist()
    context.log.info(
        f"Evaluating {latest.registered.label} on {len(paths)} test items of dataset {dataset.version}"
    )
    report, n_failed = _evaluate(latest, paths, y_true, config)
    previous: tuple[str, float] | None = None
    if config.compare_previous and len(versions) > 1:
        older = mlflow.load_model(versions[1])
        if older.classes == latest.classes:
            previous = (older.registered.label, _evaluate(older, paths, y_true, config)[0].macro_f1)
        else:
            context.log.warning(f"{older.registered.label} has other classes: not compared")
    confusion_png = metrics.confusion_matrix_png(
        report.confusion, latest.classes, title=latest.registered.label
    )
    mlflow.log_to_run(
        latest.registered.run_id,
        metrics=report.scalar_metrics("test_"),
        params={"test_dataset_version": dataset.version},
        files={"evaluation/confusion_matrix.png": confusion_png},
        texts={"evaluation/per_class.md": report.per_class_markdown()},
    )
    mlflow.set_version_tags(
        latest.registered.version,
        {
            "test_macro_f1": f"{report.macro_f1:.6f}",
            "test_accuracy": f"{report.accuracy:.6f}",
            "test_dataset_version": dataset.version,
        },
    )
    context.log.info(_summary(latest, report, previous))
    metadata = _evaluation_metadata(
        mlflow, latest, dataset.version, report, n_failed, confusion_png, previous
    )
    return dg.MaterializeResult(metadata=metadata)


def _label_indices(labels: Any, classes: list[str]) -> npt.NDArray[np.int64]:
    try:
        return datasets.label_indices(labels, classes)
    except datasets.UnknownLabels as exc:
        raise dg.Failure(str(exc)) from exc


def _evaluate(
    loaded: LoadedModel, paths: list[str], y_true: npt.NDArray[np.int64], config: ModelEvaluationConfig
) -> tuple[metrics.EvaluationReport, int]:
    probs, failed = predict_files(
        loaded.model,
        paths,
        image_size=loaded.config.image_size,
        channels=loaded.config.channels,
        num_classes=len(loaded.classes),
        device=config.device,
    )
    keep = np.ones(len(paths), dtype=bool)
    keep[failed] = False
    report = metrics.evaluate_probs(y_true[keep], probs[keep], loaded.classes, n_bins=config.ece_bins)
    return report, len(failed)


def _summary(
    latest: LoadedModel, report: metrics.EvaluationReport, previous: tuple[str, float] | None
) -> str:
    text = (
        f"{latest.registered.label}: accuracy {report.accuracy:.4f}, macro-F1 {report.macro_f1:.4f}, "
        f"AUC {report.macro_auc:.4f}, ECE {report.ece:.4f}"
    )
    return text + (f"; previous {previous[0]} macro-F1 {previous[1]:.4f}" if previous is not None else "")


def _evaluation_metadata(
    mlflow: MLflowResource,
    latest: LoadedModel,
    dataset_version: str,
    report: metrics.EvaluationReport,
    n_failed: int,
    confusion_png: bytes,
    previous: tuple[str, float] | None,
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
    if previous is not None:
        metadata["previous_model_version"] = dg.MetadataValue.text(previous[0])
        metadata["previous_test_macro_f1"] = dg.MetadataValue.float(round(previous[1], 6))
    return metadata
