"""Stage prelabel: class probabilities for every active item (a detector's boxes in a box project), from the best
model there is.

Source, in order: the champion model (``models:/<name>@champion`` in MLflow: model_evaluation moves the
alias to a new model only when it is not worse on the test split); else a pixel logistic-regression
baseline fitted on the current consensus labels; else nothing (the reason is logged and in the metadata).
A newer model that lost to the champion (alias ``challenger``) never pre-labels.
Consensus and the registry are read WITHOUT declaring them as deps: they are downstream of this asset
in the graph (labeling_tasks -> annotations -> consensus -> ... -> trained_model), so a dep would be a cycle.
Rows are keyed by (item, model_version): re-running with the same model adds nothing.
"""

from typing import Any, Literal

import dagster as dg
import numpy as np

from labeling_assets import stage
from labeling_assets.constants import GROUP_PRELABEL
from labeling_assets.core.store import datasets
from labeling_assets.core.tasks import task_kind
from labeling_assets.core.training import baseline as core_baseline
from labeling_assets.resources.metadata import as_metadata
from labeling_assets.resources.mlflow import MLflowResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource


class PrelabelConfig(dg.Config):
    source: Literal["auto", "model", "baseline"] = "auto"
    device: str = "auto"
    baseline_size: int = core_baseline.DEFAULT_SIZE


@stage.asset(GROUP_PRELABEL, deps=["raw_images"], kinds={"python", "sql"})
def prelabels(
    context: dg.AssetExecutionContext,
    config: PrelabelConfig,
    label_store: LabelStoreResource,
    project: ProjectSettings,
    mlflow: MLflowResource,
) -> dg.MaterializeResult[None]:
    """Class probabilities for every active item, with the model version that produced them."""
    store = label_store.get_store()
    classes = list(project.classes)
    kind = task_kind(project.task_type)
    thresholds: list[float] | None = None
    pool = datasets.active_items_with_copies(store)
    registered = mlflow.champion() if config.source in ("auto", "model") else None
    if registered is not None:
        loaded = mlflow.load_model(registered)
        if loaded.classes != classes:
            raise dg.Failure(f"{registered.label} predicts {loaded.classes}, the project has {classes}")
        if loaded.task_kind != kind.name:
            raise dg.Failure(f"{registered.label} does not fit a {project.task_type} project: train again")
        thresholds = loaded.thresholds
        model_version, source = registered.label, "model"
        todo = datasets.items_without_prelabels(store, pool, model_version)
        context.log.info(f"Pre-labelling {len(todo)} items with the champion {model_version}")
        # Class probabilities (a multi-label head's per-class sigmoids), or a trainer kind's outputs (boxes).
        probs, failed = loaded.predict(todo["uri"].astype(str).tolist(), device=config.device)
    elif config.source == "model":
        raise dg.Failure(f"{_why_no_champion(mlflow)} (source=model)")
    else:
        fitted, reason = kind.fit_baseline(store, classes, config.baseline_size)
        if fitted is None:
            reason = f"{_why_no_champion(mlflow)} and {reason}"
            context.log.warning(f"No pre-labels: {reason}")
            return dg.MaterializeResult(metadata=_no_prelabels_metadata(reason))
        model_version, source = fitted.version, "baseline"
        todo = datasets.items_without_prelabels(store, pool, model_version)
        context.log.info(
            f"Pre-labelling {len(todo)} items with the baseline {model_version} ({fitted.n_train} labels)"
        )
        features, failed = core_baseline.pixel_features(todo["uri"].astype(str).tolist(), size=fitted.size)
        probs = fitted.predict_proba(features)
    keep = np.ones(len(todo), dtype=bool)
    keep[failed] = False
    written = datasets.insert_prelabels(
        store, list(todo["item_id"][keep]), probs[keep], classes, model_version
    )
    if thresholds is not None:  # the queue pre-fills at the model's own per-class cut-offs (multi-label models)
        datasets.record_thresholds(store, model_version, dict(zip(classes, thresholds, strict=True)))
    metadata = _prelabel_metadata(source, model_version, written, len(pool) - len(todo), failed)
    metadata.update(_model_metadata(mlflow, source, config.source))
    predictions = as_metadata(kind.prediction_report(probs[keep], classes, thresholds))
    return dg.MaterializeResult(metadata={**metadata, **predictions})


def _no_prelabels_metadata(reason: str) -> dict[str, Any]:
    return {
        "source": dg.MetadataValue.text("none"),
        "reason": dg.MetadataValue.text(reason),
        "items_prelabeled": dg.MetadataValue.int(0),
        "is_champion": dg.MetadataValue.bool(False),
    }


def _prelabel_metadata(
    source: str, model_version: str, written: int, already: int, failed: list[int]
) -> dict[str, Any]:
    return {
        "source": dg.MetadataValue.text(source),
        "model_version": dg.MetadataValue.text(model_version),
        "items_prelabeled": dg.MetadataValue.int(written),
        "items_already_prelabeled": dg.MetadataValue.int(already),
        "undecodable_items": dg.MetadataValue.int(len(failed)),
    }


def _model_metadata(mlflow: MLflowResource, source: str, asked: str) -> dict[str, Any]:
    """Whether the pre-labels come from the champion, the URI it was resolved through, or why not a model."""
    metadata: dict[str, Any] = {
        "is_champion": dg.MetadataValue.bool(source == "model"),
        "champion_uri": dg.MetadataValue.text(mlflow.alias_uri()),
    }
    if source != "model":
        why = "source=baseline was asked" if asked == "baseline" else _why_no_champion(mlflow)
        metadata["why_not_a_model"] = dg.MetadataValue.text(why)
    return metadata


def _why_no_champion(mlflow: MLflowResource) -> str:
    n = len(mlflow.registered_versions())
    if n == 0:
        return f"no registered model {mlflow.registered_model_name} yet"
    return (
        f"no champion among the {n} registered versions of {mlflow.registered_model_name} "
        "(model_evaluation promotes one)"
    )
