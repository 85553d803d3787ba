"""Stage evaluate: the registered model measured on the frozen test split (its only reader).

The previous registered version is scored on the SAME test items in the same run, so the regression
check compares like with like even after new items joined the test split.
"""

import tempfile
from dataclasses import dataclass
from typing import Any

import dagster as dg
import numpy as np

from labeling_assets.assets.train import current_dataset, label_indices
from labeling_assets.constants import GPU_POOL, GROUP_EVALUATE, OWNERS
from labeling_assets.core import images as img
from labeling_assets.core.training import metrics
from labeling_assets.core.training import train as core_train
from labeling_assets.resources.mlflow import MLflowResource, RegisteredModel
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource


@dataclass
class LoadedModel:
    registered: RegisteredModel
    model: Any  # core.train.Classifier on the CPU, eval mode
    config: core_train.TrainConfig
    classes: list[str]


def load_registered_model(mlflow: MLflowResource, registered: RegisteredModel) -> LoadedModel:
    """A registered version rebuilt from its torch-only checkpoint (no pickled code is executed)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.download_checkpoint(registered, tmp)
        model, config, classes = core_train.load_checkpoint(path)
    return LoadedModel(registered=registered, model=model, config=config, classes=classes)


def predict_files(
    loaded: LoadedModel, paths: list[str], *, device: str = "auto", chunk: int = 4096
) -> tuple[np.ndarray, list[int]]:
    """Probabilities for image files (decoded at the model's size, in chunks to keep memory flat).

    Returns the (n, n_classes) probabilities and the indices of files that could not be decoded
    (their rows are NaN).
    """
    target = core_train.resolve_device(device)
    model = loaded.model.to(target)
    out = np.full((len(paths), len(loaded.classes)), np.nan, dtype=np.float64)
    failed: list[int] = []
    for start in range(0, len(paths), chunk):
        part = paths[start : start + chunk]
        images, failures = core_train.decode_images(part, loaded.config.image_size, loaded.config.channels)
        bad = {f.index for f in failures}
        failed.extend(start + i for i in sorted(bad))
        good = np.array([i for i in range(len(part)) if i not in bad], dtype=np.int64)
        if len(good):
            out[start + good] = core_train.predict_proba(model, images[good], device=target)
    loaded.model.cpu()
    return out, failed


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
) -> dg.MaterializeResult:
    """Test-split accuracy, macro-F1, per-class scores, OvR AUC, calibration and confusion of the latest model."""
    versions = mlflow.registered_versions()
    if not versions:
        raise dg.Failure(
            f"no registered version of {mlflow.registered_model_name}: materialize trained_model first"
        )
    dataset = current_dataset(label_store.get_store(), context.instance)
    test = dataset.split("test")
    if test.empty:
        raise dg.Failure(f"dataset {dataset.version} has no test items")
    latest = load_registered_model(mlflow, versions[0])
    y_true = label_indices(test["label"], latest.classes)
    paths = test["uri"].astype(str).tolist()
    context.log.info(
        f"Evaluating {latest.registered.label} on {len(paths)} test items of dataset {dataset.version}"
    )
    report, n_failed = _evaluate(latest, paths, y_true, config)

    previous_f1: float | None = None
    previous_label: str | None = None
    if config.compare_previous and len(versions) > 1:
        previous = load_registered_model(mlflow, versions[1])
        if previous.classes == latest.classes:
            prev_report, _ = _evaluate(previous, paths, y_true, config)
            previous_f1, previous_label = prev_report.macro_f1, previous.registered.label
        else:
            context.log.warning(f"{previous.registered.label} has other classes: not compared")

    confusion_png = metrics.confusion_matrix_png(
        report.confusion, latest.classes, title=latest.registered.label
    )
    ml = mlflow.module()
    with ml.start_run(run_id=latest.registered.run_id):
        ml.log_metrics(report.scalar_metrics("test_"))
        ml.log_param("test_dataset_version", dataset.version)
        with tempfile.TemporaryDirectory() as tmp:
            path = f"{tmp}/confusion_matrix.png"
            with open(path, "wb") as fh:
                fh.write(confusion_png)
            ml.log_artifact(path, artifact_path="evaluation")
            ml.log_text(report.per_class_markdown(), "evaluation/per_class.md")
    tags: dict[str, Any] = {
        "test_macro_f1": f"{report.macro_f1:.6f}",
        "test_accuracy": f"{report.accuracy:.6f}",
        "test_dataset_version": dataset.version,
    }
    mlflow.set_version_tags(latest.registered.version, tags)
    context.log.info(
        f"{latest.registered.label}: accuracy {report.accuracy:.4f}, macro-F1 {report.macro_f1:.4f}, "
        f"AUC {report.macro_auc:.4f}, ECE {report.ece:.4f}"
        + (f"; previous {previous_label} macro-F1 {previous_f1:.4f}" if previous_f1 is not None else "")
    )
    metadata: dict[str, Any] = {
        "model_version": dg.MetadataValue.text(latest.registered.label),
        "dataset_version": dg.MetadataValue.text(dataset.version),
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
    if previous_f1 is not None and previous_label is not None:
        metadata["previous_model_version"] = dg.MetadataValue.text(previous_label)
        metadata["previous_test_macro_f1"] = dg.MetadataValue.float(round(previous_f1, 6))
    return dg.MaterializeResult(metadata=metadata)


def _evaluate(
    loaded: LoadedModel, paths: list[str], y_true: np.ndarray, config: ModelEvaluationConfig
) -> tuple[metrics.EvaluationReport, int]:
    probs, failed = predict_files(loaded, paths, device=config.device)
    keep = np.ones(len(paths), dtype=bool)
    keep[failed] = False
    report = metrics.evaluate_probs(y_true[keep], probs[keep], loaded.classes, n_bins=config.ece_bins)
    return report, len(failed)
