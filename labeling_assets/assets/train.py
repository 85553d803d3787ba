"""Stage train: the decoded tensor cache of the current dataset version and the trained classifier (or, for a kind
with its own trainer such as boxes, the kind's model: no tensor cache, the trainer decodes what it needs).

``training_tensors`` decodes the train and val images ONCE into a memory-mapped uint8 cache at training
resolution (DESIGN §6: per-epoch PNG decoding is the bottleneck to design away). ``trained_model``
trains on it (GPU when present, CPU otherwise), with early stopping on validation macro-F1, logs the run
to MLflow and registers a model version (model_evaluation decides whether it becomes the champion). The
test split is never read here (only model_evaluation). Neither trains on a dataset version whose blocking
checks failed.
"""

import json
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from labeling_assets import lineage, stage
from labeling_assets.constants import GPU_POOL, GROUP_TRAIN
from labeling_assets.core import images as img
from labeling_assets.core.dataset.diff import render_diff
from labeling_assets.core.dataset.tiers import item_weights
from labeling_assets.core.label_sets import SINGLE_LABEL
from labeling_assets.core.reporting import plots
from labeling_assets.core.store import datasets, history
from labeling_assets.core.store.dataset_versions import manifest_document
from labeling_assets.core.store.schema import LabelStore
from labeling_assets.core.store.tiers import tier_frame
from labeling_assets.core.tasks import task_kind
from labeling_assets.core.tasks.kind import (
    EpochReport,
    FittedModel,
    KindTrainer,
    TaskKind,
    TrainerSettingsError,
)
from labeling_assets.core.tasks.registry import tracked_params
from labeling_assets.core.training import cache
from labeling_assets.core.training.config import (
    DEFAULTS,
    MIN_STEPS_PER_EPOCH,
    Backbone,
    CompileMode,
    HeadKind,
    LossKind,
    MultiLabelLoss,
    PosWeightKind,
    SamplerKind,
    TrainConfig,
    config_for_cache,
    effective_batch_size,
    resolve_device,
)
from labeling_assets.core.training.decode import DecodeFailure
from labeling_assets.resources.mlflow import TASK_TYPE_TAG, MLflowResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

if TYPE_CHECKING:  # torch and torchvision load in the runs that train, not in every run of the code location
    from labeling_assets.core.training.loop import EpochStats, FitResult


def _training_labels(labels: Any, classes: list[str], kind: TaskKind) -> Any:
    """What the kind's training head reads: class indices, or the (n, K) 0/1 label sets of a multi-label project."""
    try:
        return kind.encode(labels, classes)
    except datasets.UnknownLabels as exc:
        raise dg.Failure(str(exc)) from exc


# --- training_tensors ----------------------------------------------------------------------------


class TrainingTensorsConfig(dg.Config):
    image_size: int = 32  # the demo digits; use 224 (and channels=3) for photographs
    channels: int = 1  # 1 grayscale, 3 RGB
    workers: int | None = None  # decoding threads (default: min(8, cores))
    rebuild: bool = False  # decode again even when the cache of this version and size exists
    # Caches of other dataset versions are never used again (trained_model checks the version), and at
    # 224 px they take ~150 KB per image: delete them once the new cache is complete.
    prune_old_caches: bool = True


@stage.asset(GROUP_TRAIN, deps=["dataset_splits"], kinds={"python", "numpy"})
def training_tensors(
    context: dg.AssetExecutionContext,
    config: TrainingTensorsConfig,
    label_store: LabelStoreResource,
    project: ProjectSettings,
) -> dg.MaterializeResult[None]:
    """The train and val images of the current dataset version, decoded once into a memory-mapped uint8 cache."""
    dataset = lineage.current_dataset(context.instance, label_store.get_store())
    lineage.refuse_failed_dataset(context.instance, dataset.version, refused="not trained on", step="train")
    if task_kind(project.task_type).trainer is not None:
        why = f"none: a {project.task_type} model is trained by its kind's own trainer, which decodes its images itself"
        context.log.info(f"No tensor cache for dataset {dataset.version}: {why}")
        return dg.MaterializeResult(metadata={
            "dataset_version": dg.MetadataValue.text(dataset.version),
            "tensor_cache": dg.MetadataValue.text(why),
            "train_images": dg.MetadataValue.int(len(dataset.split("train"))),
            "val_images": dg.MetadataValue.int(len(dataset.split("val"))),
        })  # fmt: skip
    classes = list(project.classes)
    root = project.data_path / "tensors"
    folder = cache.cache_folder(root, dataset.version, config.image_size, config.channels)
    meta = cache.read_cache_meta(folder)
    started = time.perf_counter()
    failures: dict[str, list[DecodeFailure]] = {}
    same_task = meta is not None and meta.get("task_type", SINGLE_LABEL) == project.task_type
    if (
        meta is not None
        and meta.get("dataset_version") == dataset.version
        and same_task
        and not config.rebuild
    ):
        context.log.info(f"Tensor cache for dataset {dataset.version} already at {folder}: reusing it")
    else:
        meta, failures = _write_cache(context, dataset, folder, classes, config, project.task_type)
    seconds = time.perf_counter() - started
    cache.write_cache_pointer(root, dataset.version, folder)
    pruned = cache.prune_caches(folder) if config.prune_old_caches else []
    if pruned:
        context.log.info(f"Deleted {len(pruned)} tensor caches of other dataset versions or sizes: {pruned}")
    return dg.MaterializeResult(
        metadata=_tensors_metadata(dataset, folder, meta, classes, config, failures, seconds)
    )


def _write_cache(
    context: dg.AssetExecutionContext,
    dataset: datasets.DatasetSnapshot,
    folder: Path,
    classes: list[str],
    config: TrainingTensorsConfig,
    task_type: str,
) -> tuple[dict[str, Any], dict[str, list[DecodeFailure]]]:
    kind = task_kind(task_type)
    parts: dict[str, tuple[list[str], Any, list[str]]] = {}
    for name in ("train", "val"):
        part = dataset.split(name)
        parts[name] = (
            part["uri"].astype(str).tolist(),
            _training_labels(part["label"], classes, kind),
            part["item_id"].astype(str).tolist(),
        )
    if not parts["train"][0]:
        raise dg.Failure(f"dataset {dataset.version} has no training items")
    n = sum(len(p[0]) for p in parts.values())
    context.log.info(
        f"Decoding {n} images of dataset {dataset.version} to {config.image_size}px into {folder}"
    )
    meta, failures = cache.write_tensor_cache(
        folder,
        parts,
        image_size=config.image_size,
        channels=config.channels,
        classes=classes,
        # A multi-label cache says so (its labels are (n, K) sets); a single-label meta stays as it was.
        extra_meta={"dataset_version": dataset.version, **({"task_type": task_type} if task_type != SINGLE_LABEL else {})},
        workers=config.workers,
    )
    for name, bad in failures.items():
        for failure in bad[:5]:
            context.log.warning(f"{name}: cannot decode {failure.path}: {failure.error}")
    return meta, failures


def _tensors_metadata(
    dataset: datasets.DatasetSnapshot,
    folder: Path,
    meta: dict[str, Any],
    classes: list[str],
    config: TrainingTensorsConfig,
    failures: dict[str, list[DecodeFailure]],
    seconds: float,
) -> dict[str, Any]:
    counts = meta["counts"]
    return {
        "dataset_version": dg.MetadataValue.text(dataset.version),
        "cache_folder": dg.MetadataValue.path(str(folder)),
        "image_size": dg.MetadataValue.int(config.image_size),
        "channels": dg.MetadataValue.int(config.channels),
        "train_images": dg.MetadataValue.int(int(counts.get("train", 0))),
        "val_images": dg.MetadataValue.int(int(counts.get("val", 0))),
        "cache_mib": dg.MetadataValue.float(round(cache.cache_bytes(folder) / 2**20, 2)),
        "decode_failures": dg.MetadataValue.int(sum(len(v) for v in failures.values())),
        "items_without_stored_copy": dg.MetadataValue.int(dataset.dropped),
        "seconds": dg.MetadataValue.float(round(seconds, 2)),
        "class_counts": dg.MetadataValue.md(cache.class_counts_markdown(meta, classes)),
    }


# --- trained_model -------------------------------------------------------------------------------


class TrainedModelConfig(dg.Config):
    """The run's settings; every default is core's ``TrainConfig`` default (one source of truth)."""

    backbone: Backbone = DEFAULTS.backbone
    head: HeadKind = Field(
        default=DEFAULTS.head,
        description="attention: multi-head self-attention over the final feature map instead of the pooled "
        "linear layer (backbone efficientnet_b0 only; docs/model.md).",
    )
    epochs: int = DEFAULTS.epochs
    batch_size: int = Field(default=DEFAULTS.batch_size, description="Lowered for small training sets.")
    lr: float = DEFAULTS.lr
    weight_decay: float = DEFAULTS.weight_decay
    patience: int = Field(default=DEFAULTS.patience, description="Epochs without a better val macro-F1.")
    loss: LossKind = DEFAULTS.loss
    sampler: SamplerKind = DEFAULTS.sampler
    class_weighted_loss: bool = DEFAULTS.class_weighted_loss
    device: str = Field(default=DEFAULTS.device, description="auto: CUDA when present, else CPU.")
    compile: CompileMode = DEFAULTS.compile
    weights_path: str | None = Field(default=DEFAULTS.weights_path, description="Local state_dict only.")
    # Off: a flip changes the meaning of many images (left/right, letters, digits).
    hflip: bool = DEFAULTS.augment.hflip
    seed: int = DEFAULTS.seed
    cpu_threads: int | None = None  # cap torch's CPU threads (shared machines)
    nproc_per_node: int = Field(
        default=1,
        description="Processes (one GPU each) on this node; above 1 the step launches torchrun and trains "
        "under DistributedDataParallel (batch_size stays the global batch).",
    )
    # soft: train on the consensus class probabilities stored per item (the Dawid-Skene posterior, or
    # majority vote shares); hard: on the labels; auto: soft when every training item has a stored
    # Dawid-Skene posterior (benchmarks/noisy_crowd_quality.py measures that gain; vote shares are
    # unmeasured, so auto keeps hard labels for them). Validation is always on the hard labels.
    targets: datasets.TargetsMode = "auto"
    # Multi-label projects only (ProjectSettings.task_type multi_label): the sigmoid loss and its pos_weight.
    multi_label_loss: MultiLabelLoss = DEFAULTS.multi_label_loss
    pos_weight: PosWeightKind = Field(
        default=DEFAULTS.pos_weight,
        description="Multi-label: BCE pos_weight from the training prevalence (negatives/positives, or "
        "Cui et al.'s effective numbers); ignored with the weighted (rarest-label) sampler.",
    )
    multi_label_sampler: SamplerKind = Field(
        default=DEFAULTS.multi_label_sampler,
        description="Multi-label: weighted = each item drawn by its rarest label (replaces pos_weight); "
        "shuffle = plain epochs with pos_weight. `sampler` is the single-label one.",
    )
    # A kind with its own trainer (boxes): every field above is the image classifier's and is not read.
    tier_weights: dict[str, float] = Field(
        default={},
        description="Per label tier (verified, consensus, machine; docs/tiers.md) a training weight, e.g. "
        "{machine: 0.5}: 0 leaves the tier out, another weight draws its items that much as often (the image "
        "classifier: weighted draws when the cache is resident; a kind's own trainer: its item weights). Empty: all 1.",
    )
    trainer_settings: dict[str, Any] = Field(
        default={},
        description="A kind with its own trainer (boxes): its settings, e.g. {epochs: 20, backbone: "
        "mobilenet_v3_320}; unset ones take the trainer's defaults (docs/boxes.md). The fields above are the "
        "image classifier's.",
    )

    def train_config(self, meta: dict[str, Any], n_train: int) -> TrainConfig:
        """Core's settings for a cache (classes and image shape from its meta, batch fitted to its size)."""
        return config_for_cache(meta, self, batch_size=effective_batch_size(self.batch_size, n_train),
                                tier_weights=dict(self.tier_weights) or None)  # fmt: skip


@stage.asset(GROUP_TRAIN, deps=[training_tensors], kinds={"pytorch", "mlflow"}, pool=GPU_POOL)
def trained_model(
    context: dg.AssetExecutionContext,
    config: TrainedModelConfig,
    project: ProjectSettings,
    label_store: LabelStoreResource,
    mlflow: MLflowResource,
) -> dg.MaterializeResult[None]:
    """The image classifier (or a kind's own model) trained on the current dataset version, registered as an MLflow
    model version."""
    store = label_store.get_store()
    # The version this run's training_tensors decoded: a collect run may make a newer one current between the
    # two steps (issue 26's long run failed a train run that way); the next retrain takes the newer one.
    built = lineage.materialized_in_run(context.instance, context.run.run_id, "training_tensors").get("dataset_version")
    current = str(built) if built else lineage.current_dataset(context.instance, store).version
    lineage.refuse_failed_dataset(context.instance, current, refused="not trained on", step="train")
    if (trainer := task_kind(project.task_type).trainer) is not None:  # the kind's own model (boxes: a detector)
        return _train_kind_model(context, config, trainer, project, store, mlflow, current)
    folder, meta = _current_cache(project, current)
    kind = _cache_task(meta, project)
    train, val, item_weights = _splits_by_tier(store, current, folder, config.tier_weights)
    _cap_threads(config.cpu_threads)
    train_config = config.train_config(meta, len(train))
    if train_config.batch_size != config.batch_size:
        context.log.info(
            f"batch size {config.batch_size} -> {train_config.batch_size}: {len(train)} training images "
            f"would give fewer than {MIN_STEPS_PER_EPOCH} steps per epoch"
        )
    classes = list(meta["classes"])
    stored = None if config.targets == "hard" else kind.stored_targets(store, train.item_ids, train.labels, classes)
    targets = datasets.resolve_targets(config.targets, stored)
    context.log.info(
        f"targets={config.targets}: training on {targets} targets{stored.note() if stored else ''}"
    )
    device = resolve_device(train_config.device)
    context.log.info(
        f"Training on {len(train)} images ({len(val)} val) of dataset {current} on {device}"
        + ("" if device.type == "cuda" else " (no CUDA: CPU fallback)")
    )
    tags = {"dagster_run_id": context.run.run_id, "dataset_version": current, "asset": "trained_model"}
    with mlflow.start_run(run_name=f"train-{current}", tags=tags) as run:
        ml = mlflow.module()
        ml.log_params(
            _run_params(train_config, current, len(train), len(val), classes, config.targets, targets, stored)
        )
        result = _fit(
            context,
            config,
            train_config,
            folder,
            (train, val),
            _epoch_logger(context, ml, train_config.epochs),
            stored.targets if targets == "soft" and stored is not None else None,
            item_weights,
        )
        curves = _curves_png(result.history)
        version = _log_result(context, mlflow, result, train_config, meta, current, curves)
        run_id = str(run.info.run_id)
        _log_lineage(mlflow, store, current)
    history.record_model_training(
        store,
        dataset_version=current,
        model_name=mlflow.registered_model_name,
        model_version=version,
        mlflow_run_id=run_id,
        dagster_run_id=context.run.run_id,
    )
    return dg.MaterializeResult(
        metadata=_model_metadata(mlflow, result, current, version, run_id, targets, curves, classes)
    )


def _train_kind_model(
    context: dg.AssetExecutionContext,
    config: TrainedModelConfig,
    trainer: KindTrainer,
    project: ProjectSettings,
    store: LabelStore,
    mlflow: MLflowResource,
    current: str,
) -> dg.MaterializeResult[None]:
    """Fit the kind's own model on the version's train and val rows (each with its consensus confidence), log the
    run to MLflow and register its torch-only checkpoint as a model version tagged with the task type."""
    dataset = datasets.current_dataset(store, current)
    train, val = (datasets.with_consensus_confidence(store, dataset.split(name)) for name in ("train", "val"))
    train = _tier_rows(store, current, train, config.tier_weights)
    if train.empty:
        raise dg.Failure(f"dataset {current} has no training items")
    classes = list(project.classes)
    _cap_threads(config.cpu_threads)
    settings = {**trainer.default_settings(), **config.trainer_settings}
    context.log.info(f"Training a {trainer.model_name} ({project.task_type}) on {len(train)} items ({len(val)} val) "
                     f"of dataset {current}: {settings}")  # fmt: skip
    tags = {"dagster_run_id": context.run.run_id, "dataset_version": current, "asset": "trained_model"}
    with mlflow.start_run(run_name=f"train-{current}", tags=tags) as run:
        ml = mlflow.module()
        ml.log_params({**{k: str(v) for k, v in settings.items()}, "dataset_version": current, "n_train": len(train),
                       "n_val": len(val), "classes": ",".join(classes), "task_type": project.task_type,
                       "model": trainer.model_name})  # fmt: skip

        def on_epoch(report: EpochReport) -> None:
            ml.log_metrics(report.metrics, step=report.epoch)
            shown = ", ".join(f"{k} {v:.4f}" for k, v in report.metrics.items())
            context.log.info(f"epoch {report.epoch}: {shown}")

        try:
            fitted = trainer.fit(train, val, classes, config.trainer_settings, log=context.log.info, on_epoch=on_epoch)
        except TrainerSettingsError as exc:
            raise dg.Failure(str(exc)) from exc
        ml.log_metrics(fitted.metrics)
        ml.set_tags({"device": fitted.device, "model": trainer.model_name})
        curves = _kind_curves_png(fitted)
        mlflow.log_artifact_bytes("training_curves.png", curves)
        version_tags = {
            TASK_TYPE_TAG: project.task_type, "dataset_version": current, "classes": classes,
            "model": trainer.model_name, "dagster_run_id": context.run.run_id,
            **{k: str(v) for k, v in fitted.metrics.items() if k.startswith("best_")},
            **{k: str(fitted.settings[k]) for k in ("backbone",) if k in fitted.settings},
        }  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = Path(tmp) / "model.pt"
            trainer.save(fitted, checkpoint)
            version = mlflow.register_checkpoint(checkpoint, version_tags)
        run_id = str(run.info.run_id)
        _log_lineage(mlflow, store, current)
    history.record_model_training(store, dataset_version=current, model_name=mlflow.registered_model_name,
                                  model_version=version, mlflow_run_id=run_id, dagster_run_id=context.run.run_id)  # fmt: skip
    name = mlflow.registered_model_name
    metadata: dict[str, Any] = {
        "dataset_version": dg.MetadataValue.text(current),
        "task_type": dg.MetadataValue.text(project.task_type),
        "model": dg.MetadataValue.text(trainer.model_name),
        "model_version": dg.MetadataValue.text(f"{name}/{version}"),
        "mlflow_run_id": dg.MetadataValue.text(run_id),
        "mlflow_run": dg.MetadataValue.url(mlflow.run_url(run_id)),
        "model_uri": dg.MetadataValue.text(f"models:/{name}/{version}"),
        "device": dg.MetadataValue.text(fitted.device),
        "settings": dg.MetadataValue.json({k: v for k, v in fitted.settings.items() if v is not None}),
        "training_curves": dg.MetadataValue.md(img.markdown_image(curves, "training curves")),
        **{k: dg.MetadataValue.float(round(v, 4)) for k, v in fitted.metrics.items()},
    }
    return dg.MaterializeResult(metadata=metadata)


def _kind_curves_png(fitted: FittedModel) -> bytes:
    """Every per-epoch metric of a trainer kind's fit, one line each."""
    epochs = [float(r.epoch) for r in fitted.history]
    names = [name for name in fitted.history[0].metrics if not name.endswith("_per_s")] if fitted.history else []
    series = {name: (epochs, [float(r.metrics.get(name, float("nan"))) for r in fitted.history]) for name in names}
    return plots.lines_png(series, "Training", xlabel="epoch")


def _cap_threads(cpu_threads: int | None) -> None:
    if cpu_threads:
        import torch

        torch.set_num_threads(cpu_threads)


def _cache_task(meta: dict[str, Any], project: ProjectSettings) -> TaskKind:
    """The kind of task the cache holds labels of; a cache of another task type than the project's is refused."""
    cached = meta.get("task_type", SINGLE_LABEL)
    if cached != project.task_type:
        raise dg.Failure(
            f"the tensor cache holds {cached} labels but the project is {project.task_type}: "
            "materialize training_tensors again"
        )
    return task_kind(cached)


def _fit(
    context: dg.AssetExecutionContext,
    config: TrainedModelConfig,
    train_config: TrainConfig,
    folder: str,
    splits: tuple[cache.CacheSplit, cache.CacheSplit],
    on_epoch: Callable[["EpochStats"], None],
    soft_targets: Any,
    item_weights: Any = None,
) -> "FitResult":
    """Train in this process, or launch torchrun with ``nproc_per_node`` DDP processes (rank 0 writes the
    checkpoint, this process relays its epochs to MLflow and registers the model)."""
    from labeling_assets.core.training.launch import fit_with_torchrun
    from labeling_assets.core.training.loop import fit

    if config.nproc_per_node > 1:
        if config.tier_weights:  # the torchrun ranks read the whole cache themselves
            raise dg.Failure("tier_weights are not applied with nproc_per_node > 1: drop one of them", allow_retries=False)
        return fit_with_torchrun(
            folder,
            train_config,
            nproc_per_node=config.nproc_per_node,
            train_targets=soft_targets,
            on_epoch=on_epoch,
            log=context.log.info,
        )
    train, val = splits
    return fit(
        train.images,
        train.labels,
        val.images if len(val) else None,
        val.labels if len(val) else None,
        train_config,
        on_epoch=on_epoch,
        log=context.log.info,
        train_targets=soft_targets,
        item_weights=item_weights,
    )


def _splits_by_tier(
    store: LabelStore, version: str, folder: str, tier_weights: Mapping[str, float]
) -> tuple[cache.CacheSplit, cache.CacheSplit, Any]:
    """The cache's train split without the items of tiers weighted 0, its val split, and the train items' weights
    (None: all 1)."""
    train, val = cache.load_cache_split(folder, "train"), cache.load_cache_split(folder, "val")
    if not tier_weights:
        return train, val, None
    tiers = tier_frame(manifest_document(store, version))["tier"]
    try:
        weights = item_weights([tiers.get(i) for i in train.item_ids], tier_weights)
    except ValueError as exc:
        raise dg.Failure(str(exc), allow_retries=False) from None
    keep = weights > 0
    if not keep.all():
        train = cache.CacheSplit(train.images[keep], train.labels[keep], [i for i, k in zip(train.item_ids, keep, strict=True) if k])
        weights = weights[keep]
    return train, val, None if (weights == 1).all() else weights


def _tier_rows(store: LabelStore, version: str, rows: pd.DataFrame, tier_weights: Mapping[str, float]) -> pd.DataFrame:
    """A kind trainer's rows by tier: a machine label's confidence is the model's (it has no consensus), each item's
    weight (``confidence``) times its tier's weight, and the rows of tiers weighted 0 left out."""
    tiers = tier_frame(manifest_document(store, version))
    if tiers.empty:
        return rows
    ids = rows["item_id"].astype(str)
    confidence = rows["confidence"].fillna(ids.map(tiers["tier_confidence"]).astype(float))
    try:
        weights = item_weights(ids.map(tiers["tier"]).where(ids.isin(tiers.index), None).tolist(), tier_weights)
    except ValueError as exc:
        raise dg.Failure(str(exc), allow_retries=False) from None
    out = rows.assign(confidence=confidence.to_numpy() * weights)
    return out[weights > 0].reset_index(drop=True)


def _log_lineage(mlflow: MLflowResource, store: LabelStore, dataset_version: str) -> None:
    """The dataset version's tags and its diff against the version before it, on the active MLflow run."""
    diff = history.diff_versions(store, history.previous_version_of(store, dataset_version), dataset_version)
    tags = history.tags_of(store, dataset_version)
    mlflow.module().set_tags(
        {
            "dataset_tags": ",".join(tags),
            "dataset_previous_version": diff.old_version or "",
            **{f"dataset_items_{name}": str(n) for name, n in diff.counts().items()},
        }
    )
    mlflow.log_artifact_bytes("dataset_diff.md", render_diff(diff).encode("utf-8"))
    mlflow.log_artifact_bytes(
        "dataset_diff.json", json.dumps(diff.as_json(), default=str, indent=1).encode("utf-8")
    )


def _current_cache(project: ProjectSettings, current: str) -> tuple[str, dict[str, Any]]:
    """The tensor cache of dataset ``current`` (folder, meta), or a failure naming what to materialize."""
    pointer = cache.read_cache_pointer(project.data_path / "tensors")
    if pointer is None:
        raise dg.Failure("no tensor cache yet: materialize training_tensors first")
    if pointer["dataset_version"] != current:
        raise dg.Failure(
            f"the tensor cache holds dataset {pointer['dataset_version']} but the current version is {current}: "
            "materialize training_tensors first"
        )
    meta = cache.read_cache_meta(pointer["folder"])
    if meta is None:
        raise dg.Failure(
            f"tensor cache {pointer['folder']} is incomplete: materialize training_tensors again"
        )
    return pointer["folder"], meta


def _run_params(
    train_config: TrainConfig,
    dataset_version: str,
    n_train: int,
    n_val: int,
    classes: list[str],
    targets_config: str,
    targets: str,
    stored: datasets.StoredTargets | None,
) -> dict[str, Any]:
    params = {k: v for k, v in tracked_params(train_config).items() if k != "class_weights"}
    params.update(
        dataset_version=dataset_version,
        n_train=n_train,
        n_val=n_val,
        classes=",".join(classes),
        targets=targets,
        targets_config=targets_config,
    )
    if stored is not None:
        params.update(
            items_without_probabilities=stored.missing, items_without_posterior=stored.not_posterior
        )
    return params


def _epoch_logger(context: dg.AssetExecutionContext, ml: Any, epochs: int) -> Callable[["EpochStats"], None]:
    def on_epoch(stats: "EpochStats") -> None:
        ml.log_metrics(stats.metrics(), step=stats.epoch)
        context.log.info(
            f"epoch {stats.epoch}/{epochs}: loss {stats.train_loss:.4f}, "
            f"val macro-F1 {stats.val_macro_f1 if stats.val_macro_f1 is not None else float('nan'):.4f}, "
            f"{stats.train_images_per_s:.0f} img/s"
        )

    return on_epoch


def _log_result(
    context: dg.AssetExecutionContext,
    mlflow: MLflowResource,
    result: "FitResult",
    train_config: TrainConfig,
    meta: dict[str, Any],
    dataset_version: str,
    curves: bytes,
) -> int:
    """Summary metrics, tags, curves and the registered model version of the active run."""
    ml = mlflow.module()
    summary: dict[str, float] = {
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "stopped_early": int(result.stopped_early),
    }
    if result.best_val_macro_f1 is not None:
        summary["best_val_macro_f1"] = result.best_val_macro_f1
    if result.best_val_macro_auc is not None:
        summary["best_val_macro_auc"] = result.best_val_macro_auc
    ml.log_metrics(summary)
    ml.set_tags(
        {
            "device": result.device,
            "backbone": result.backbone,
            "compiled": str(result.compiled),
            "processes": str(result.world_size),
        }
    )
    mlflow.log_artifact_bytes("training_curves.png", curves)
    version_tags = {
        "dataset_version": dataset_version,
        "image_size": str(meta["image_size"]),
        "channels": str(meta["channels"]),
        "classes": meta["classes"],
        "backbone": result.backbone,
        "best_val_macro_f1": str(result.best_val_macro_f1),
        "dagster_run_id": context.run.run_id,
    }
    if result.thresholds is not None:  # multi-label: what turns the sigmoids into a set (prelabels, review)
        version_tags["task_type"] = train_config.task_kind
        version_tags["thresholds"] = dict(zip(meta["classes"], result.thresholds, strict=True))
    return mlflow.register_model(result, train_config, list(meta["classes"]), version_tags)


def _model_metadata(
    mlflow: MLflowResource,
    result: "FitResult",
    dataset_version: str,
    version: int,
    run_id: str,
    targets: str,
    curves: bytes,
    classes: list[str],
) -> dict[str, Any]:
    throughput = [s.train_images_per_s for s in result.history[1:]] or [result.history[0].train_images_per_s]
    name = mlflow.registered_model_name
    metadata: dict[str, Any] = {
        "dataset_version": dg.MetadataValue.text(dataset_version),
        "model_version": dg.MetadataValue.text(f"{name}/{version}"),
        "mlflow_run_id": dg.MetadataValue.text(run_id),
        "mlflow_run": dg.MetadataValue.url(mlflow.run_url(run_id)),
        "model_uri": dg.MetadataValue.text(f"models:/{name}/{version}"),
        "device": dg.MetadataValue.text(result.device),
        "backbone": dg.MetadataValue.text(result.backbone),
        "compiled": dg.MetadataValue.bool(result.compiled),
        "processes": dg.MetadataValue.int(result.world_size),
        "targets": dg.MetadataValue.text(targets),
        "best_epoch": dg.MetadataValue.int(result.best_epoch),
        "epochs_run": dg.MetadataValue.int(len(result.history)),
        "stopped_early": dg.MetadataValue.bool(result.stopped_early),
        "train_images_per_s": dg.MetadataValue.float(round(float(np.median(throughput)), 1)),
        "training_curves": dg.MetadataValue.md(img.markdown_image(curves, "training curves")),
    }
    if result.best_val_macro_f1 is not None:
        metadata["best_val_macro_f1"] = dg.MetadataValue.float(round(result.best_val_macro_f1, 4))
    if result.best_val_macro_auc is not None:
        metadata["best_val_macro_auc"] = dg.MetadataValue.float(round(result.best_val_macro_auc, 4))
    if result.thresholds is not None:
        # By class name: a bare list of ten numbers says nothing about which class each one decides.
        metadata["thresholds"] = dg.MetadataValue.json(
            {str(c): round(t, 4) for c, t in zip(classes, result.thresholds, strict=True)}
        )
    return metadata


def _curves_png(history: list["EpochStats"]) -> bytes:
    epochs = [float(s.epoch) for s in history]
    series = {"train loss": (epochs, [s.train_loss for s in history])}
    if history and history[0].val_macro_f1 is not None:
        series["val loss"] = (epochs, [float(s.val_loss or 0.0) for s in history])
        series["val macro-F1"] = (epochs, [float(s.val_macro_f1 or 0.0) for s in history])
    if history and history[0].val_macro_auc is not None:
        series["val macro-AUC"] = (epochs, [float(s.val_macro_auc or 0.0) for s in history])
    return plots.lines_png(series, "Training", xlabel="epoch")
