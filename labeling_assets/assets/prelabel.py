"""Stage prelabel: class probabilities for every active item, from the best model there is.

Source, in order: the latest registered model (MLflow); else a pixel logistic-regression baseline
fitted on the current consensus labels; else nothing (the reason is logged and in the metadata).
Consensus and the registry are read WITHOUT declaring them as deps: they are downstream of this asset
in the graph (labeling_tasks -> annotations -> consensus -> ... -> trained_model), so a dep would be a cycle.
Rows are keyed by (item, model_version): re-running with the same model adds nothing.
"""

from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import sqlalchemy as sa

from labeling_assets.assets.evaluate import load_registered_model, predict_files
from labeling_assets.constants import GROUP_PRELABEL, OWNERS
from labeling_assets.core.dataset.splits import normalize_label
from labeling_assets.core.store.schema import (
    LabelStore,
    chunked,
    items_table,
    latest_consensus_query,
    prelabels_table,
    utcnow,
)
from labeling_assets.core.training import baseline as core_baseline
from labeling_assets.core.training.active_learning import entropy
from labeling_assets.resources.mlflow import MLflowResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource


class PrelabelConfig(dg.Config):
    source: str = "auto"  # auto | model | baseline
    device: str = "auto"
    baseline_size: int = core_baseline.DEFAULT_SIZE


@dg.asset(
    group_name=GROUP_PRELABEL,
    deps=["raw_images"],
    kinds={"python", "sql"},
    owners=OWNERS,
)
def prelabels(
    context: dg.AssetExecutionContext,
    config: PrelabelConfig,
    label_store: LabelStoreResource,
    project: ProjectSettings,
    mlflow: MLflowResource,
) -> dg.MaterializeResult:
    """Class probabilities for every active item, with the model version that produced them."""
    if config.source not in ("auto", "model", "baseline"):
        raise dg.Failure(f"unknown prelabel source {config.source!r}; choose auto, model or baseline")
    store = label_store.get_store()
    classes = list(project.classes)
    pool = pd.DataFrame(
        store.fetch(
            sa.select(items_table.c.item_id, items_table.c.uri).where(
                items_table.c.status == "active", items_table.c.uri.is_not(None)
            )
        ),
        columns=["item_id", "uri"],
    ).sort_values("item_id", kind="stable")

    registered = mlflow.latest_version() if config.source in ("auto", "model") else None
    source = "none"
    reason = ""
    if registered is not None:
        loaded = load_registered_model(mlflow, registered)
        if loaded.classes != classes:
            raise dg.Failure(f"{registered.label} predicts {loaded.classes}, the project has {classes}")
        model_version = registered.label
        todo = _without_prelabels(store, pool, model_version)
        context.log.info(f"Pre-labelling {len(todo)} items with {model_version}")
        probs, failed = predict_files(loaded, todo["uri"].astype(str).tolist(), device=config.device)
        source = "model"
    elif config.source == "model":
        raise dg.Failure(f"no registered version of {mlflow.registered_model_name} yet (source=model)")
    else:
        fitted, reason = _fit_baseline(store, classes, config.baseline_size)
        if fitted is None:
            context.log.warning(f"No pre-labels: no registered model and {reason}")
            return dg.MaterializeResult(
                metadata={
                    "source": dg.MetadataValue.text("none"),
                    "reason": dg.MetadataValue.text(f"no registered model and {reason}"),
                    "items_prelabeled": dg.MetadataValue.int(0),
                }
            )
        model_version = fitted.version
        todo = _without_prelabels(store, pool, model_version)
        context.log.info(
            f"Pre-labelling {len(todo)} items with the baseline {model_version} ({fitted.n_train} labels)"
        )
        features, failed = core_baseline.pixel_features(todo["uri"].astype(str).tolist(), size=fitted.size)
        probs = fitted.predict_proba(features)
        source = "baseline"

    keep = np.ones(len(todo), dtype=bool)
    keep[failed] = False
    now = utcnow()
    rows = [
        {
            "item_id": item_id,
            "model_version": model_version,
            "probs": {name: round(float(p), 6) for name, p in zip(classes, row, strict=True)},
            "computed_at": now,
        }
        for item_id, row in zip(todo["item_id"][keep], probs[keep], strict=True)
    ]
    with store.begin() as conn:
        for part in chunked(rows):
            conn.execute(prelabels_table.insert(), list(part))
    kept_probs = probs[keep]
    metadata: dict[str, Any] = {
        "source": dg.MetadataValue.text(source),
        "model_version": dg.MetadataValue.text(model_version),
        "items_prelabeled": dg.MetadataValue.int(len(rows)),
        "items_already_prelabeled": dg.MetadataValue.int(len(pool) - len(todo)),
        "undecodable_items": dg.MetadataValue.int(len(failed)),
    }
    if reason:
        metadata["why_not_a_model"] = dg.MetadataValue.text("no registered model yet")
    if len(kept_probs):
        predicted = pd.Series(np.asarray(classes)[kept_probs.argmax(axis=1)]).value_counts().sort_index()
        metadata["mean_entropy"] = dg.MetadataValue.float(round(float(entropy(kept_probs).mean()), 4))
        metadata["mean_top_probability"] = dg.MetadataValue.float(
            round(float(kept_probs.max(axis=1).mean()), 4)
        )
        metadata["predicted_classes"] = dg.MetadataValue.json({str(k): int(v) for k, v in predicted.items()})
    return dg.MaterializeResult(metadata=metadata)


def _without_prelabels(store: LabelStore, pool: pd.DataFrame, model_version: str) -> pd.DataFrame:
    done = {
        row["item_id"]
        for row in store.fetch(
            sa.select(prelabels_table.c.item_id).where(prelabels_table.c.model_version == model_version)
        )
    }
    return pool[~pool["item_id"].isin(done)].reset_index(drop=True)


def _fit_baseline(
    store: LabelStore, classes: list[str], size: int
) -> tuple[core_baseline.PixelBaseline | None, str]:
    """The baseline fitted on current consensus, or None and why not."""
    latest = latest_consensus_query().subquery()
    rows = store.fetch(
        sa.select(latest.c.item_id, latest.c.label, items_table.c.uri)
        .join(items_table, items_table.c.item_id == latest.c.item_id)
        .where(items_table.c.status == "active", items_table.c.uri.is_not(None))
        .order_by(latest.c.item_id)
    )
    labeled: list[tuple[str, str]] = []
    for row in rows:
        try:
            label = normalize_label(row["label"])
        except ValueError:
            continue  # multi-class or empty consensus: not a training example for a single-label baseline
        if label in classes:
            labeled.append((str(row["uri"]), label))
    if len(labeled) < core_baseline.MIN_LABELS:
        return None, f"only {len(labeled)} consensus labels (the baseline needs {core_baseline.MIN_LABELS})"
    features, failed = core_baseline.pixel_features([uri for uri, _ in labeled], size=size)
    keep = np.ones(len(labeled), dtype=bool)
    keep[failed] = False
    try:
        fitted = core_baseline.fit_baseline(
            features[keep],
            [label for (_, label), ok in zip(labeled, keep, strict=True) if ok],
            classes,
            size=size,
        )
    except ValueError as exc:
        return None, str(exc)
    return fitted, ""
