"""Stage train: the decoded tensor cache of the current dataset version and the trained classifier.

``training_tensors`` decodes the train and val images ONCE into a memory-mapped uint8 cache at training
resolution (DESIGN §6: per-epoch PNG decoding is the bottleneck to design away). ``trained_model``
trains on it (GPU when present, CPU otherwise), with early stopping on validation macro-F1, logs the run
to MLflow and registers a model version. The test split is never read here (only model_evaluation).
"""

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import dagster as dg
import numpy as np
import pandas as pd
import sqlalchemy as sa

from labeling_assets.constants import GPU_POOL, GROUP_TRAIN, OWNERS
from labeling_assets.core import images as img
from labeling_assets.core.dataset.splits import manifest_from_json, normalize_label
from labeling_assets.core.reporting import plots
from labeling_assets.core.store.schema import (
    LabelStore,
    dataset_versions_table,
    items_table,
    latest_consensus_query,
    splits_table,
)
from labeling_assets.core.training import train as core_train
from labeling_assets.resources.mlflow import CHECKPOINT_ARTIFACT, MLflowResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

CACHE_POINTER = "latest.json"


# --- the current dataset (shared with evaluate.py) -----------------------------------------------


@dataclass(frozen=True)
class DatasetSnapshot:
    """The current dataset version: one row per item with item_id, label, split, uri."""

    version: str
    frame: pd.DataFrame
    dropped: int  # manifest rows without a readable stored copy

    def split(self, name: str) -> pd.DataFrame:
        return self.frame[self.frame["split"] == name].sort_values("item_id", kind="stable")


def current_dataset(store: LabelStore, instance: dg.DagsterInstance | None = None) -> DatasetSnapshot:
    """The dataset version of the latest ``dataset_splits`` materialization, joined with the items' copies.

    Versions are content hashes: when labels flip back, the current version is an older row, so the
    newest row by time is not necessarily current; the materialization says which one is. Without an
    instance (or before any materialization) the newest row is used.

    The version's own manifest (item, label, split) is used when stored, so training sees exactly the
    labels that were versioned; otherwise the splits table joined with the newest consensus labels.

    Raises:
        dg.Failure: no dataset version exists yet.
    """
    from labeling_assets.assets.dataset import current_dataset_version

    version = current_dataset_version(instance) if instance is not None else None
    query = sa.select(dataset_versions_table)
    if version is not None:
        query = query.where(dataset_versions_table.c.dataset_version == version)
    rows = store.fetch(query.order_by(dataset_versions_table.c.created_at.desc()).limit(1))
    if not rows:
        raise dg.Failure("no dataset version in the label store yet: materialize dataset_splits first")
    row = rows[0]
    manifest = None
    if isinstance(row.get("manifest"), dict | str):
        try:
            manifest = manifest_from_json(row["manifest"])
        except (KeyError, ValueError):
            manifest = None
    if manifest is None or manifest.empty:
        manifest = _manifest_from_tables(store)
    located = pd.DataFrame(
        store.fetch(sa.select(items_table.c.item_id, items_table.c.uri).where(items_table.c.status == "active")),
        columns=["item_id", "uri"],
    )
    frame = manifest.merge(located, on="item_id", how="left")
    missing = frame["uri"].isna()
    return DatasetSnapshot(
        version=str(row["dataset_version"]),
        frame=frame[~missing].reset_index(drop=True),
        dropped=int(missing.sum()),
    )


def _manifest_from_tables(store: LabelStore) -> pd.DataFrame:
    latest = latest_consensus_query().subquery()
    query = sa.select(splits_table.c.item_id, splits_table.c.split, latest.c.label).join(
        latest, latest.c.item_id == splits_table.c.item_id
    )
    frame = pd.DataFrame(store.fetch(query), columns=["item_id", "split", "label"])
    frame["label"] = frame["label"].map(normalize_label)
    return frame


def label_indices(labels: pd.Series, classes: list[str]) -> np.ndarray:
    """Class indices of ``labels``; a label outside the class list is a clear error."""
    index = {name: k for k, name in enumerate(classes)}
    unknown = sorted(set(labels.astype(str)) - set(index))
    if unknown:
        raise dg.Failure(f"labels not in the project's class list {classes}: {unknown[:10]}")
    return labels.astype(str).map(index).to_numpy(dtype=np.int64)


def cache_folder(project: ProjectSettings, version: str, image_size: int, channels: int) -> Path:
    return project.data_path / "tensors" / f"{version}-{image_size}px-{channels}c"


# --- training_tensors ----------------------------------------------------------------------------


class TrainingTensorsConfig(dg.Config):
    image_size: int = 32  # the demo digits; use 224 (and channels=3) for photographs
    channels: int = 1  # 1 grayscale, 3 RGB
    workers: int | None = None  # decoding threads (default: min(8, cores))
    rebuild: bool = False  # decode again even when the cache of this version and size exists
    # Caches of other dataset versions are never used again (trained_model checks the version), and at
    # 224 px they take ~150 KB per image: delete them once the new cache is complete.
    prune_old_caches: bool = True


@dg.asset(
    group_name=GROUP_TRAIN,
    deps=["dataset_splits"],
    kinds={"python", "numpy"},
    owners=OWNERS,
)
def training_tensors(
    context: dg.AssetExecutionContext,
    config: TrainingTensorsConfig,
    label_store: LabelStoreResource,
    project: ProjectSettings,
) -> dg.MaterializeResult:
    """The train and val images of the current dataset version, decoded once into a memory-mapped uint8 cache."""
    dataset = current_dataset(label_store.get_store(), context.instance)
    classes = list(project.classes)
    folder = cache_folder(project, dataset.version, config.image_size, config.channels)
    meta = core_train.read_cache_meta(folder)
    started = time.perf_counter()
    failures: dict[str, list[core_train.DecodeFailure]] = {}
    if meta is not None and meta.get("dataset_version") == dataset.version and not config.rebuild:
        context.log.info(f"Tensor cache for dataset {dataset.version} already at {folder}: reusing it")
    else:
        parts: dict[str, tuple[list[str], list[int], list[str]]] = {}
        for name in ("train", "val"):
            part = dataset.split(name)
            parts[name] = (
                part["uri"].astype(str).tolist(),
                label_indices(part["label"], classes).tolist(),
                part["item_id"].astype(str).tolist(),
            )
        if not parts["train"][0]:
            raise dg.Failure(f"dataset {dataset.version} has no training items")
        n = sum(len(p[0]) for p in parts.values())
        context.log.info(
            f"Decoding {n} images of dataset {dataset.version} to {config.image_size}px into {folder}"
        )
        meta, failures = core_train.write_tensor_cache(
            folder,
            parts,
            image_size=config.image_size,
            channels=config.channels,
            classes=classes,
            extra_meta={"dataset_version": dataset.version},
            workers=config.workers,
        )
        for name, bad in failures.items():
            for failure in bad[:5]:
                context.log.warning(f"{name}: cannot decode {failure.path}: {failure.error}")
    seconds = time.perf_counter() - started
    pointer = {"dataset_version": dataset.version, "folder": str(folder)}
    (project.data_path / "tensors" / CACHE_POINTER).write_text(json.dumps(pointer))
    pruned = _prune_caches(folder) if config.prune_old_caches else []
    if pruned:
        context.log.info(f"Deleted {len(pruned)} tensor caches of other dataset versions or sizes: {pruned}")
    counts = meta["counts"]
    n_bytes = sum(p.stat().st_size for p in folder.glob("*.images.npy"))
    class_table = ["| class | train | val |", "|---|---:|---:|"] + [
        f"| {name} | {meta['class_counts']['train'][k]} | {meta['class_counts'].get('val', [0] * len(classes))[k]} |"
        for k, name in enumerate(classes)
    ]
    return dg.MaterializeResult(
        metadata={
            "dataset_version": dg.MetadataValue.text(dataset.version),
            "cache_folder": dg.MetadataValue.path(str(folder)),
            "image_size": dg.MetadataValue.int(config.image_size),
            "channels": dg.MetadataValue.int(config.channels),
            "train_images": dg.MetadataValue.int(int(counts.get("train", 0))),
            "val_images": dg.MetadataValue.int(int(counts.get("val", 0))),
            "cache_mib": dg.MetadataValue.float(round(n_bytes / 2**20, 2)),
            "decode_failures": dg.MetadataValue.int(sum(len(v) for v in failures.values())),
            "items_without_stored_copy": dg.MetadataValue.int(dataset.dropped),
            "seconds": dg.MetadataValue.float(round(seconds, 2)),
            "class_counts": dg.MetadataValue.md("\n".join(class_table)),
        }
    )


def _prune_caches(keep: Path) -> list[str]:
    """Delete every complete cache folder beside ``keep`` (in-progress ``.tmp`` folders are left alone)."""
    removed = []
    for other in keep.parent.iterdir():
        if other == keep or not other.is_dir() or other.name.startswith("."):
            continue
        if core_train.read_cache_meta(other) is not None:
            shutil.rmtree(other, ignore_errors=True)
            removed.append(other.name)
    return removed


def read_cache_pointer(project: ProjectSettings) -> dict[str, str]:
    path = project.data_path / "tensors" / CACHE_POINTER
    if not path.is_file():
        raise dg.Failure("no tensor cache yet: materialize training_tensors first")
    return json.loads(path.read_text())


# --- trained_model -------------------------------------------------------------------------------


class TrainedModelConfig(dg.Config):
    backbone: str = "auto"  # auto | small_cnn | resnet18 | efficientnet_b0 | mobilenet_v3_small
    epochs: int = 20
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    patience: int = 5  # epochs without a better val macro-F1 before stopping
    loss: str = "ce"  # ce | focal
    sampler: str = "shuffle"  # shuffle | weighted
    class_weighted_loss: bool = True
    device: str = "auto"  # auto: CUDA when present, else CPU
    compile: str = "auto"  # auto | on | off
    weights_path: str | None = None  # local state_dict; nothing is downloaded
    hflip: bool = False  # off: a flip changes the meaning of many images (left/right, letters, digits)
    seed: int = 0
    cpu_threads: int | None = None  # cap torch's CPU threads (shared machines)
    # soft: train on the consensus class probabilities stored per item (the Dawid-Skene posterior, or
    # majority vote shares); hard: on the labels; auto: soft when every training item has a stored
    # Dawid-Skene posterior (benchmarks/noisy_crowd_quality.py measures that gain; vote shares are
    # unmeasured, so auto keeps hard labels for them). Validation is always on the hard labels.
    targets: Literal["auto", "hard", "soft"] = "auto"


# Fewer optimizer steps than this per epoch and early stopping judges a model that has barely moved
# (300 items at batch 128 = 3 steps: stopped at epoch 6 with macro-F1 0.03 in the demo).
MIN_STEPS_PER_EPOCH = 10
MIN_BATCH_SIZE = 16


def effective_batch_size(requested: int, n_train: int) -> int:
    """``requested``, lowered for small training sets so an epoch has at least MIN_STEPS_PER_EPOCH steps."""
    return max(1, min(requested, max(MIN_BATCH_SIZE, n_train // MIN_STEPS_PER_EPOCH)))


@dataclass(frozen=True)
class StoredTargets:
    """Soft targets of a split from the latest consensus rows, in the cache's class order."""

    targets: np.ndarray  # (n, n_classes) float32 rows summing to 1
    missing: int  # items without usable stored probabilities: one-hot of their label instead
    not_posterior: int  # items whose probabilities come from a method without a posterior (majority)


# Consensus methods whose stored probabilities are a posterior over the true class.
POSTERIOR_METHODS = frozenset({"dawid_skene"})


def stored_soft_targets(
    store: LabelStore, item_ids: list[str], labels: np.ndarray, classes: list[str]
) -> StoredTargets:
    """The stored consensus probabilities of ``item_ids`` as an (n, n_classes) array.

    An item's probabilities are used only when its latest consensus label is still its dataset label
    (a later relabel, e.g. by an expert, would otherwise contradict the label it is versioned with) and
    they name only known classes; every other item gets the one-hot of its label and is counted missing.
    """
    latest = latest_consensus_query().subquery()
    rows = store.fetch(sa.select(latest.c.item_id, latest.c.label, latest.c.method, latest.c.probabilities))
    by_item = {r["item_id"]: r for r in rows}
    names = [str(c) for c in classes]
    targets = np.zeros((len(item_ids), len(classes)), dtype=np.float32)
    missing = not_posterior = 0
    for i, (item, code) in enumerate(zip(item_ids, labels.tolist(), strict=True)):
        vector = _probability_vector(by_item.get(item), names, names[int(code)])
        if vector is None:
            missing += 1
            targets[i, int(code)] = 1.0
        else:
            targets[i] = vector
            not_posterior += by_item[item]["method"] not in POSTERIOR_METHODS
    return StoredTargets(targets, missing, not_posterior)


def _probability_vector(row: dict[str, Any] | None, names: list[str], label: str) -> np.ndarray | None:
    if row is None or row.get("probabilities") is None:
        return None
    probs = row["probabilities"]
    if isinstance(probs, str):
        probs = json.loads(probs)
    try:
        if str(normalize_label(row["label"])) != label:
            return None
    except ValueError:
        return None
    if not isinstance(probs, dict) or not set(map(str, probs)) <= set(names):
        return None
    values = {str(k): v for k, v in probs.items()}
    vector = np.array([float(values.get(name, 0.0)) for name in names], dtype=np.float64)
    total = vector.sum()
    if not np.all(np.isfinite(vector)) or (vector < 0).any() or total <= 0:
        return None
    return (vector / total).astype(np.float32)


def resolve_targets(mode: str, stored: StoredTargets | None) -> str:
    """``hard`` or ``soft``: auto is soft only when every training item has a stored posterior."""
    if mode == "hard" or stored is None:
        return "hard"
    if mode == "soft":
        return "soft"
    complete = stored.missing == 0 and stored.not_posterior == 0
    return "soft" if complete and len(stored.targets) else "hard"


def _targets_note(stored: StoredTargets | None, n_train: int) -> str:
    if stored is None:
        return ""
    notes = []
    if stored.missing:
        notes.append(f"{stored.missing} have no usable stored probabilities (one-hot of their label if soft)")
    if stored.not_posterior:
        notes.append(f"{stored.not_posterior} have vote shares, not a Dawid-Skene posterior")
    return f" (of {n_train} training items: {'; '.join(notes)})" if notes else ""


def _train_config(config: TrainedModelConfig, meta: dict[str, Any], n_train: int) -> core_train.TrainConfig:
    return core_train.TrainConfig(
        num_classes=len(meta["classes"]),
        backbone=config.backbone,
        image_size=int(meta["image_size"]),
        channels=int(meta["channels"]),
        epochs=config.epochs,
        batch_size=effective_batch_size(config.batch_size, n_train),
        lr=config.lr,
        weight_decay=config.weight_decay,
        patience=config.patience,
        loss=config.loss,
        sampler=config.sampler,
        class_weighted_loss=config.class_weighted_loss,
        device=config.device,
        compile=config.compile,
        weights_path=config.weights_path,
        seed=config.seed,
        augment=core_train.AugmentConfig(hflip=config.hflip),
    )


@dg.asset(
    group_name=GROUP_TRAIN,
    deps=[training_tensors],
    pool=GPU_POOL,
    kinds={"pytorch", "mlflow"},
    owners=OWNERS,
)
def trained_model(
    context: dg.AssetExecutionContext,
    config: TrainedModelConfig,
    project: ProjectSettings,
    label_store: LabelStoreResource,
    mlflow: MLflowResource,
) -> dg.MaterializeResult:
    """The image classifier trained on the current dataset version, registered as an MLflow model version."""
    import torch

    pointer = read_cache_pointer(project)
    current = current_dataset(label_store.get_store(), context.instance).version
    if pointer["dataset_version"] != current:
        raise dg.Failure(
            f"the tensor cache holds dataset {pointer['dataset_version']} but the current version is {current}: "
            "materialize training_tensors first"
        )
    folder = pointer["folder"]
    meta = core_train.read_cache_meta(folder)
    if meta is None:
        raise dg.Failure(f"tensor cache {folder} is incomplete: materialize training_tensors again")
    train = core_train.load_cache_split(folder, "train")
    val = core_train.load_cache_split(folder, "val")
    if config.cpu_threads:
        torch.set_num_threads(config.cpu_threads)
    train_config = _train_config(config, meta, len(train))
    if train_config.batch_size != config.batch_size:
        context.log.info(
            f"batch size {config.batch_size} -> {train_config.batch_size}: {len(train)} training images "
            f"would give fewer than {MIN_STEPS_PER_EPOCH} steps per epoch"
        )
    stored = (
        None
        if config.targets == "hard"
        else stored_soft_targets(label_store.get_store(), train.item_ids, train.labels, list(meta["classes"]))
    )
    targets = resolve_targets(config.targets, stored)
    train_targets = stored.targets if targets == "soft" and stored is not None else None
    context.log.info(
        f"targets={config.targets}: training on {targets} targets{_targets_note(stored, len(train))}"
    )
    device = core_train.resolve_device(train_config.device)
    context.log.info(
        f"Training on {len(train)} images ({len(val)} val) of dataset {current} on {device}"
        + ("" if device.type == "cuda" else " (no CUDA: CPU fallback)")
    )
    tags = {"dagster_run_id": context.run.run_id, "dataset_version": current, "asset": "trained_model"}
    with mlflow.start_run(run_name=f"train-{current}", tags=tags) as run:
        ml = mlflow.module()
        ml.log_params(
            {
                **{k: v for k, v in train_config.to_params().items() if k != "class_weights"},
                "dataset_version": current,
                "n_train": len(train),
                "n_val": len(val),
                "classes": ",".join(meta["classes"]),
                "targets": targets,
                "targets_config": config.targets,
                **(
                    {
                        "items_without_probabilities": stored.missing,
                        "items_without_posterior": stored.not_posterior,
                    }
                    if stored is not None
                    else {}
                ),
            }
        )

        def on_epoch(stats: core_train.EpochStats) -> None:
            ml.log_metrics(stats.metrics(), step=stats.epoch)
            context.log.info(
                f"epoch {stats.epoch}/{train_config.epochs}: loss {stats.train_loss:.4f}, "
                f"val macro-F1 {stats.val_macro_f1 if stats.val_macro_f1 is not None else float('nan'):.4f}, "
                f"{stats.train_images_per_s:.0f} img/s"
            )

        result = core_train.fit(
            train.images,
            train.labels,
            val.images if len(val) else None,
            val.labels if len(val) else None,
            train_config,
            on_epoch=on_epoch,
            log=context.log.info,
            train_targets=train_targets,
        )
        summary = {
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "stopped_early": int(result.stopped_early),
        }
        if result.best_val_macro_f1 is not None:
            summary["best_val_macro_f1"] = result.best_val_macro_f1
        ml.log_metrics(summary)
        ml.set_tags({"device": result.device, "backbone": result.backbone, "compiled": str(result.compiled)})
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = Path(tmp) / Path(CHECKPOINT_ARTIFACT).name
            core_train.save_checkpoint(checkpoint, result, train_config, meta["classes"])
            ml.log_artifact(str(checkpoint), artifact_path=str(Path(CHECKPOINT_ARTIFACT).parent))
            curves = _curves_png(result.history)
            (Path(tmp) / "training_curves.png").write_bytes(curves)
            ml.log_artifact(str(Path(tmp) / "training_curves.png"))
        model_info = ml.pytorch.log_model(
            result.model.cpu(),
            name="model",
            registered_model_name=mlflow.registered_model_name,
            # The checkpoint above is the torch-only artifact we load; this copy is for MLflow users.
            serialization_format="pickle",
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
        )
        version = int(model_info.registered_model_version)
        mlflow.set_version_tags(
            version,
            {
                "dataset_version": current,
                "image_size": str(meta["image_size"]),
                "channels": str(meta["channels"]),
                "classes": meta["classes"],
                "backbone": result.backbone,
                "best_val_macro_f1": str(result.best_val_macro_f1),
                "dagster_run_id": context.run.run_id,
            },
        )
        run_id = run.info.run_id
    throughput = [s.train_images_per_s for s in result.history[1:]] or [result.history[0].train_images_per_s]
    metadata: dict[str, Any] = {
        "dataset_version": dg.MetadataValue.text(current),
        "model_version": dg.MetadataValue.text(f"{mlflow.registered_model_name}/{version}"),
        "mlflow_run_id": dg.MetadataValue.text(run_id),
        "mlflow_run": dg.MetadataValue.url(mlflow.run_url(run_id)),
        "model_uri": dg.MetadataValue.text(f"models:/{mlflow.registered_model_name}/{version}"),
        "device": dg.MetadataValue.text(result.device),
        "backbone": dg.MetadataValue.text(result.backbone),
        "compiled": dg.MetadataValue.bool(result.compiled),
        "targets": dg.MetadataValue.text(targets),
        "best_epoch": dg.MetadataValue.int(result.best_epoch),
        "epochs_run": dg.MetadataValue.int(len(result.history)),
        "stopped_early": dg.MetadataValue.bool(result.stopped_early),
        "train_images_per_s": dg.MetadataValue.float(round(float(np.median(throughput)), 1)),
        "training_curves": dg.MetadataValue.md(img.markdown_image(curves, "training curves")),
    }
    if result.best_val_macro_f1 is not None:
        metadata["best_val_macro_f1"] = dg.MetadataValue.float(round(result.best_val_macro_f1, 4))
    return dg.MaterializeResult(metadata=metadata)


def _curves_png(history: list[core_train.EpochStats]) -> bytes:
    epochs = [float(s.epoch) for s in history]
    series = {"train loss": (epochs, [s.train_loss for s in history])}
    if history and history[0].val_macro_f1 is not None:
        series["val loss"] = (epochs, [float(s.val_loss or 0.0) for s in history])
        series["val macro-F1"] = (epochs, [float(s.val_macro_f1 or 0.0) for s in history])
    return plots.lines_png(series, "Training", xlabel="epoch")
