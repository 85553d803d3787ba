"""Stage sweep: a grid of training configurations (core/training/sweep.py) trained as the partitions of one asset, off
the default loop's path (its own jobs; the retrain sensor and train_job never run it).

``sweep_plan`` reads the grid's TOML file, makes one ``sweep_cells`` partition per cell and opens the parent MLflow run
of the sweep on the current dataset version. ``sweep_cell`` trains one cell (plain, or distilled from the champion
with the Hinton loss) as a child run of it, its checkpoint logged but not registered. ``sweep_summary`` compares the
cells on validation, registers the winner as a model version and shows the comparison; model_evaluation
(sweep_evaluation_job) then scores that one model on the test split, once, and applies the champion rule.
"""

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field

from labeling_assets import lineage, stage
from labeling_assets.constants import GPU_POOL, GROUP_SWEEP
from labeling_assets.core import images as img
from labeling_assets.core.reporting import plots
from labeling_assets.core.store import datasets, history
from labeling_assets.core.tasks import task_kind
from labeling_assets.core.tasks.registry import tracked_params
from labeling_assets.core.training import cache
from labeling_assets.core.training.sweep import (
    Cell,
    CellResult,
    SweepError,
    SweepPlan,
    cell_config,
    choose_winner,
    comparison_table,
    read_plan,
    score_name,
    targets_mode,
)
from labeling_assets.partitions import SWEEP_CELLS, sweep_cells
from labeling_assets.resources.mlflow import CHECKPOINT_ARTIFACT, MLflowResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

if TYPE_CHECKING:
    from labeling_assets.core.training.loop import FitResult
    from labeling_assets.core.training.models import Classifier

PARENT_TAG = "mlflow.parentRunId"  # MLflow's own tag: the UI nests a cell's run under the sweep's


class SweepPlanConfig(dg.Config):
    settings_file: str | None = Field(
        default=None, description="The sweep's TOML grid; empty = the project's sweep_file ($LABELING_ASSETS_SWEEP)."
    )


@stage.asset(GROUP_SWEEP, deps=["training_tensors"], kinds={"python", "mlflow"})
def sweep_plan(
    context: dg.AssetExecutionContext,
    config: SweepPlanConfig,
    project: ProjectSettings,
    label_store: LabelStoreResource,
    mlflow: MLflowResource,
) -> dg.MaterializeResult[None]:
    """The cells of the training sweep's grid on the current dataset version: one sweep_cells partition each, and the
    sweep's parent MLflow run."""
    path = config.settings_file or project.sweep_file
    if not path:
        raise dg.Failure("no sweep file: set LABELING_ASSETS_SWEEP (or sweep_plan's settings_file) to a TOML grid "
                         "(docs/model.md, \"Sweeps\")")  # fmt: skip
    try:
        plan = read_plan(path)
    except SweepError as exc:
        raise dg.Failure(str(exc)) from exc
    version = lineage.current_dataset(context.instance, label_store.get_store()).version
    _tensor_cache(project, version)  # refuses early: every cell trains on it
    stale = set(context.instance.get_dynamic_partitions(SWEEP_CELLS)) - set(plan.keys)
    for key in sorted(stale):
        context.instance.delete_dynamic_partition(SWEEP_CELLS, key)
    context.instance.add_dynamic_partitions(SWEEP_CELLS, plan.keys)
    tags = {"dagster_run_id": context.run.run_id, "dataset_version": version, "asset": "sweep_plan", "sweep": plan.name}
    with mlflow.start_run(run_name=f"sweep-{plan.name}-{version}", tags=tags) as run:
        mlflow.module().log_params({"sweep": plan.name, "dataset_version": version, "cells": len(plan.cells),
                                    **{f"grid_{k}": ",".join(map(str, v)) for k, v in plan.grid.items()}})  # fmt: skip
        parent = str(run.info.run_id)
    context.log.info(f"Sweep {plan.name!r}: {len(plan.cells)} cells on dataset {version}: {', '.join(plan.keys)}")
    return dg.MaterializeResult(metadata={
        "sweep": dg.MetadataValue.text(plan.name),
        "settings_file": dg.MetadataValue.path(str(Path(path).resolve())),
        "dataset_version": dg.MetadataValue.text(version),
        "parent_run_id": dg.MetadataValue.text(parent),
        "mlflow_run": dg.MetadataValue.url(mlflow.run_url(parent)),
        "n_cells": dg.MetadataValue.int(len(plan.cells)),
        "cells": dg.MetadataValue.json([cell.as_json() for cell in plan.cells]),
        "removed_partitions": dg.MetadataValue.json(sorted(stale)),
    })  # fmt: skip


@stage.asset(GROUP_SWEEP, deps=[sweep_plan], kinds={"pytorch", "mlflow"}, pool=GPU_POOL, partitions_def=sweep_cells)
def sweep_cell(
    context: dg.AssetExecutionContext,
    project: ProjectSettings,
    label_store: LabelStoreResource,
    mlflow: MLflowResource,
) -> dg.MaterializeResult[None]:
    """One cell of the sweep trained on the plan's dataset version (distilled from the champion when it names a
    teacher), as a child MLflow run of the sweep's with its checkpoint; not registered (sweep_summary registers the
    winner)."""
    plan, version, parent = _current_plan(context.instance)
    try:
        cell = plan.cell(context.partition_key)
    except SweepError as exc:
        raise dg.Failure(f"{exc}: materialize sweep_plan again") from exc
    folder, meta = _tensor_cache(project, version)
    train, val = cache.load_cache_split(folder, "train"), cache.load_cache_split(folder, "val")
    config = cell_config(cell, meta, len(train))
    kind = task_kind(config.task_kind)
    stored = None if targets_mode(cell) == "hard" else kind.stored_targets(
        label_store.get_store(), train.item_ids, train.labels, list(meta["classes"]))  # fmt: skip
    targets = datasets.resolve_targets(targets_mode(cell), stored)  # type: ignore[arg-type]
    teacher, teacher_label = _teacher(mlflow, cell, meta) if cell.distilled else (None, "")
    tags = {PARENT_TAG: parent, "sweep": plan.name, "sweep_cell": cell.key, "dataset_version": version,
            "dagster_run_id": context.run.run_id, "asset": "sweep_cell"}  # fmt: skip
    with mlflow.start_run(run_name=f"{plan.name}-{cell.key}", tags=tags) as run:
        ml = mlflow.module()
        params = {k: v for k, v in tracked_params(config).items() if k != "class_weights"}
        ml.log_params({**params, **cell.params(), "dataset_version": version, "targets": targets,
                       "teacher_model": teacher_label, "n_train": len(train), "n_val": len(val)})  # fmt: skip
        started = time.perf_counter()
        result = _train(context, ml, cell, config, (train, val), teacher,
                        stored.targets if targets == "soft" and stored is not None else None)  # fmt: skip
        seconds = time.perf_counter() - started
        summary = _summary_metrics(result, config.task_kind, seconds)
        ml.log_metrics(summary)
        ml.set_tags({"backbone": result.backbone, "device": result.device})
        _log_checkpoint(mlflow, result, config, list(meta["classes"]))
        run_id = str(run.info.run_id)
    shown = {k: dg.MetadataValue.float(round(v, 4)) for k, v in summary.items() if isinstance(v, float)}
    return dg.MaterializeResult(metadata={
        "sweep": dg.MetadataValue.text(plan.name), "cell": dg.MetadataValue.text(cell.key),
        "dataset_version": dg.MetadataValue.text(version), "backbone": dg.MetadataValue.text(result.backbone),
        "teacher": dg.MetadataValue.text(teacher_label or "none"), "targets": dg.MetadataValue.text(targets),
        "mlflow_run_id": dg.MetadataValue.text(run_id), "mlflow_run": dg.MetadataValue.url(mlflow.run_url(run_id)),
        "parameters": dg.MetadataValue.int(int(summary["parameters"])), **shown,
    })  # fmt: skip


@stage.asset(GROUP_SWEEP, deps=[sweep_cell], kinds={"mlflow"})
def sweep_summary(
    context: dg.AssetExecutionContext,
    label_store: LabelStoreResource,
    mlflow: MLflowResource,
) -> dg.MaterializeResult[None]:
    """The sweep's cells side by side on validation, and its winner registered as a model version (model_evaluation
    scores it on the test split: the only cell that is)."""
    plan, version, parent = _current_plan(context.instance)
    results = _cell_results(mlflow, parent)
    missing = [key for key in plan.keys if key not in results]
    if missing:
        context.log.warning(f"{len(missing)} cells of sweep {plan.name!r} have no run yet: {', '.join(missing)}")
    try:
        winner = choose_winner(list(results.values()))
    except SweepError as exc:
        raise dg.Failure(f"sweep {plan.name!r}: {exc}") from exc
    kind_name = str(mlflow.client().get_run(winner.run_id).data.params.get("task_kind", "single_label"))
    score = score_name(kind_name)
    table = comparison_table(list(results.values()), winner.key, score)
    chart = plots.bar_png({r.key: float(r.val_score or 0.0) for r in results.values()}, f"Sweep {plan.name}: {score}",
                          ylabel=score, size=(max(6.0, 0.9 * len(results)), 3.5))  # fmt: skip
    mlflow.log_to_run(parent, metrics={f"winner_{score}": float(winner.val_score or 0.0)}, params={},
                      files={"sweep/comparison.png": chart}, texts={"sweep/comparison.md": table})  # fmt: skip
    model_version = _register_winner(context, mlflow, winner, plan, version)
    mlflow.client().set_tag(parent, "sweep_winner", winner.key)
    history.record_model_training(label_store.get_store(), dataset_version=version,
                                  model_name=mlflow.registered_model_name, model_version=model_version,
                                  mlflow_run_id=winner.run_id, dagster_run_id=context.run.run_id)  # fmt: skip
    context.log.info(f"Sweep {plan.name!r}: {winner.key} wins on {score} {winner.val_score:.4f} of {len(results)} "
                     f"cells; registered as {mlflow.registered_model_name}/{model_version}")  # fmt: skip
    return dg.MaterializeResult(metadata={
        "sweep": dg.MetadataValue.text(plan.name), "dataset_version": dg.MetadataValue.text(version),
        "winner": dg.MetadataValue.text(winner.key), f"winner_{score}": dg.MetadataValue.float(round(winner.val_score or 0.0, 4)),
        "model_version": dg.MetadataValue.text(f"{mlflow.registered_model_name}/{model_version}"),
        "cells_compared": dg.MetadataValue.int(len(results)), "cells_missing": dg.MetadataValue.json(missing),
        "comparison": dg.MetadataValue.md(table), "comparison_chart": dg.MetadataValue.md(img.markdown_image(chart, score)),
        "mlflow_run": dg.MetadataValue.url(mlflow.run_url(parent)),
    })  # fmt: skip


# --- helpers ------------------------------------------------------------------------------------------------------


def _current_plan(instance: dg.DagsterInstance) -> tuple[SweepPlan, str, str]:
    """(the plan, its dataset version, its parent MLflow run) from sweep_plan's latest materialization."""
    meta = lineage.latest_metadata(instance, "sweep_plan")
    if not meta:
        raise dg.Failure("no sweep plan yet: materialize sweep_plan first (sweep_plan_job)")
    cells = [Cell.from_json(c) for c in meta["cells"]]
    return SweepPlan(name=str(meta["sweep"]), cells=cells), str(meta["dataset_version"]), str(meta["parent_run_id"])


def _tensor_cache(project: ProjectSettings, version: str) -> tuple[str, dict[str, Any]]:
    """The tensor cache of dataset ``version`` (folder, meta), or a failure naming what to materialize."""
    pointer = cache.read_cache_pointer(project.data_path / "tensors")
    if pointer is None or pointer["dataset_version"] != version:
        held = f"holds dataset {pointer['dataset_version']}" if pointer else "does not exist"
        raise dg.Failure(f"the tensor cache {held}, the sweep trains on {version}: materialize training_tensors "
                         "(train_job) first")  # fmt: skip
    meta = cache.read_cache_meta(pointer["folder"])
    if meta is None:
        raise dg.Failure(f"tensor cache {pointer['folder']} is incomplete: materialize training_tensors again")
    return pointer["folder"], meta


def _teacher(mlflow: MLflowResource, cell: Cell, meta: dict[str, Any]) -> tuple["Classifier", str]:
    """The champion, as the teacher of a distilled cell: an image classifier of the cache's classes and shape."""
    champion = mlflow.champion()
    if champion is None:
        raise dg.Failure(f"cell {cell.key} distils from the champion but there is none yet: run train_job first")
    loaded = mlflow.load_model(champion)
    if loaded.config is None or loaded.classes != list(meta["classes"]):
        raise dg.Failure(f"the champion {champion.label} is not an image classifier of this cache's classes")
    shape = (loaded.config.image_size, loaded.config.channels)
    if shape != (int(meta["image_size"]), int(meta["channels"])):
        raise dg.Failure(f"the champion {champion.label} reads {shape[0]} px x {shape[1]} channels, the cache holds "
                         f"{meta['image_size']} px x {meta['channels']}: it cannot teach on these images")  # fmt: skip
    return loaded.model, champion.label


def _train(
    context: dg.AssetExecutionContext, ml: Any, cell: Cell, config: Any, splits: tuple[Any, Any], teacher: Any,
    soft: Any,
) -> "FitResult":
    """Fit the cell (distil when it has a teacher), each epoch's metrics on the active MLflow run."""
    from labeling_assets.core.training.distill import DistillSettings, distill
    from labeling_assets.core.training.loop import fit

    train, val = splits
    val_images, val_labels = (val.images, val.labels) if len(val) else (None, None)

    def on_epoch(stats: Any) -> None:
        values = stats.metrics()
        ml.log_metrics(values, step=stats.epoch)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in values.items() if k.startswith(("train_loss", "val_")))
        context.log.info(f"{cell.key} epoch {stats.epoch}: {shown}")

    if teacher is None:
        return fit(train.images, train.labels, val_images, val_labels, config, on_epoch=on_epoch,
                   log=context.log.info, train_targets=soft)  # fmt: skip
    settings = DistillSettings(temperature=float(cell.temperature or 4.0), alpha=float(cell.alpha or 0.0))
    return distill(train.images, train.labels, val_images, val_labels, config, teacher, settings,
                   train_targets=soft, on_epoch=on_epoch, log=context.log.info)  # fmt: skip


def _summary_metrics(result: "FitResult", kind_name: str, seconds: float) -> dict[str, float]:
    from labeling_assets.core.training.distill import parameter_count

    summary = {"parameters": float(parameter_count(result.model)), "epochs_run": float(len(result.history)),
               "best_epoch": float(result.best_epoch), "seconds": round(seconds, 2)}  # fmt: skip
    if result.best_val_macro_f1 is not None:
        summary["best_val_macro_f1"] = float(result.best_val_macro_f1)
    if result.best_val_macro_auc is not None:
        summary["best_val_macro_auc"] = float(result.best_val_macro_auc)
    val = result.best_val_macro_auc if score_name(kind_name) == "val_macro_auc" else result.best_val_macro_f1
    if val is not None:
        summary["sweep_val_score"] = float(val)
    return summary


def _log_checkpoint(mlflow: MLflowResource, result: "FitResult", config: Any, classes: list[str]) -> None:
    from labeling_assets.core.training.checkpoint import save_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(CHECKPOINT_ARTIFACT).name
        save_checkpoint(path, result, config, classes)
        mlflow.module().log_artifact(str(path), artifact_path=str(Path(CHECKPOINT_ARTIFACT).parent))


def _cell_results(mlflow: MLflowResource, parent: str) -> dict[str, CellResult]:
    """The newest finished run of every cell under the sweep's parent run, by cell key."""
    runs = mlflow.client().search_runs([mlflow.experiment_id()], filter_string=f"tags.`{PARENT_TAG}` = '{parent}'",
                                       order_by=["attributes.start_time DESC"])  # fmt: skip
    results: dict[str, CellResult] = {}
    for run in runs:
        key = run.data.tags.get("sweep_cell")
        if not key or key in results or run.info.status != "FINISHED":
            continue
        metrics, params = run.data.metrics, run.data.params
        results[key] = CellResult(
            key=key, val_score=metrics.get("sweep_val_score"), parameters=int(metrics.get("parameters", 0)),
            run_id=run.info.run_id, backbone=run.data.tags.get("backbone", ""), teacher=params.get("teacher", "none"),
            temperature=float(params["distill_temperature"]) if "distill_temperature" in params else None,
            alpha=float(params["distill_alpha"]) if "distill_alpha" in params else None,
            epochs_run=int(metrics.get("epochs_run", 0)), seconds=float(metrics.get("seconds", 0.0)),
        )  # fmt: skip
    return results


def _register_winner(
    context: dg.AssetExecutionContext, mlflow: MLflowResource, winner: CellResult, plan: SweepPlan, version: str
) -> int:
    """The winner's checkpoint registered as a new model version of its own run (as trained_model registers)."""
    from labeling_assets.core.training.checkpoint import load_fit_result

    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.client().download_artifacts(winner.run_id, CHECKPOINT_ARTIFACT, tmp)
        result, config, classes = load_fit_result(path)
    tags: dict[str, Any] = {
        "dataset_version": version, "image_size": str(config.image_size), "channels": str(config.channels),
        "classes": classes, "backbone": result.backbone, "best_val_macro_f1": str(result.best_val_macro_f1),
        "dagster_run_id": context.run.run_id, "sweep": plan.name, "sweep_cell": winner.key,
    }  # fmt: skip
    if result.thresholds is not None:  # multi-label: what turns the sigmoids into a set
        tags["task_type"] = config.task_kind
        tags["thresholds"] = dict(zip(classes, result.thresholds, strict=True))
    with mlflow.module().start_run(run_id=winner.run_id):
        return mlflow.register_model(result, config, classes, tags)
