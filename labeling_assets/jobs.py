"""Jobs: named selections of assets (their checks come along), and the store backup (an op: not data)."""

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition
from pydantic import Field

from labeling_assets import env
from labeling_assets.constants import (
    GROUP_COLLECT,
    GROUP_CONSENSUS,
    GROUP_EVALUATE,
    GROUP_QUALITY,
    GROUP_QUEUE,
    GROUP_REVIEW,
    GROUP_SWEEP,
    GROUP_TRAIN,
)
from labeling_assets.core import automation
from labeling_assets.core.store import backup
from labeling_assets.local import stack_backup
from labeling_assets.partitions import labelers, sweep_cells
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource


def _assets_job(name: str, assets: list[str], description: str) -> UnresolvedAssetJobDefinition:
    """A job that materializes these assets (their checks come along)."""
    return dg.define_asset_job(name, selection=dg.AssetSelection.assets(*assets), description=description)


ingest_job = _assets_job(
    "ingest_job", ["raw_images"], "Scan the image source and ingest new or changed files."
)

# Annotations and what follows from them (consensus, splits, exports), as far as the definitions hold it.
# Not the quality group: labeler_stats is partitioned per labeler, and an unpartitioned run cannot
# materialize it (the run fails). Not training/evaluation either: that is an explicit job. Not the review group
# (spot checks): sampling answers for a reviewer need not follow each annotation, and every step here delays the
# next annotation's consensus (spot_check_job, hourly).
# Groups, not keys: a selection by a key that some Definitions lack fails to resolve.
collect_job = dg.define_asset_job(
    "collect_job",
    selection=(
        dg.AssetSelection.assets("annotations").downstream()
        - dg.AssetSelection.groups(GROUP_QUALITY, GROUP_REVIEW, GROUP_TRAIN, GROUP_EVALUATE, GROUP_SWEEP)
    ),
    description="Pull new, edited and deleted Label Studio annotations into the store, then refresh what depends on them.",
)

# What an annotation's consensus needs, for the tasks Label Studio's webhooks named (touched_tasks_sensor): the
# sync and the consensus, nothing after. Adjudications (a read of the review project), splits and exports take
# seconds each and no annotation's consensus waits on them: they follow on annotation_sensor's collect_job, which
# the same change in Label Studio launches at the next poll. By group, as collect_job: Definitions without
# consensus_labels (tests of the sync alone) resolve it to the annotations step.
webhook_collect_job = dg.define_asset_job(
    "webhook_collect_job",
    selection=dg.AssetSelection.assets("annotations").downstream(depth=1)
    & dg.AssetSelection.groups(GROUP_COLLECT, GROUP_CONSENSUS),
    description="Sync just the Label Studio tasks the webhooks named and refresh consensus (expert reviews, splits "
    "and exports follow on collect_job's poll).",
)

# The queue group downstream of labeling_tasks (labeling_guidelines where the definitions hold it): a selection by
# the guidelines' key would fail to resolve in Definitions without it.
queue_job = dg.define_asset_job(
    "queue_job",
    selection=dg.AssetSelection.assets("labeling_tasks").downstream() & dg.AssetSelection.groups(GROUP_QUEUE),
    description="Push the next batch of items (uncertain first, gold hidden among them) to Label Studio, and the "
    "labeling guidelines to its projects' instructions when they changed.",
)

# By group: Definitions without the spot-check asset resolve it to nothing instead of failing.
spot_check_job = dg.define_asset_job(
    "spot_check_job",
    selection=dg.AssetSelection.groups(GROUP_REVIEW),
    description="Read the reviewers' spot-check verdicts (a fix becomes an expert answer) and sample each labeler's "
    "new answers into the spot-check project.",
)

dataset_job = _assets_job(
    "dataset_job",
    ["dataset_splits", "dataset_export"],
    "Assign new consensus-labeled items to frozen splits, version the dataset, write its card and exports.",
)

# Training runs from this explicit job (not eagerly): it holds the "gpu" pool while it trains.
train_job = _assets_job(
    "train_job",
    ["training_tensors", "trained_model", "model_evaluation"],
    "Decode the current dataset version into the tensor cache, train and register a model, evaluate it on the test split.",
)

# A training sweep (docs/model.md, "Sweeps"): four jobs in order, never started by a sensor or schedule (the loop's
# train_job stays one model per dataset version). `labeling-assets sweep` runs them one after the other.
sweep_plan_job = _assets_job(
    "sweep_plan_job",
    ["sweep_plan"],
    "Read the sweep's TOML grid ($LABELING_ASSETS_SWEEP) and make one sweep_cells partition per cell.",
)
sweep_cells_job = dg.define_asset_job(
    "sweep_cells_job",
    selection=dg.AssetSelection.assets("sweep_cell"),
    partitions_def=sweep_cells,
    description="Train one cell of the sweep (a partition; a backfill trains them all), logged under the sweep's run.",
)
sweep_summary_job = _assets_job(
    "sweep_summary_job",
    ["sweep_summary"],
    "Compare the sweep's cells on validation and register the winner as a model version.",
)
# Its own job: after sweep_summary registered the winner (no asset edge orders them inside one job).
sweep_evaluation_job = _assets_job(
    "sweep_evaluation_job",
    ["model_evaluation"],
    "Score the newest registered model (a sweep's winner) on the test split once and apply the champion rule.",
)

prelabel_job = _assets_job(
    "prelabel_job",
    ["prelabels"],
    "Class probabilities for every item from the champion model (or the pixel baseline).",
)

# Labeler partitions; many in one run (labeler_stats backfills in a single run: the daily schedule asks for all).
labeler_stats_job = dg.define_asset_job(
    "labeler_stats_job",
    selection=dg.AssetSelection.assets("labeler_stats"),
    partitions_def=labelers,
    description="Gold accuracy, kappa vs consensus, throughput and time per label of one labeler.",
)

quality_job = dg.define_asset_job(
    "quality_job",
    selection=dg.AssetSelection.groups(GROUP_QUALITY) - dg.AssetSelection.assets("labeler_stats"),
    description="Roll-ups over labelers and items: leaderboard, label issues, QA report.",
)


class StoreBackupConfig(dg.Config):
    keep: int | None = Field(
        default=None,
        ge=1,
        description=f"Backups kept under <data>/backups; empty = ${automation.BACKUP_KEEP_VAR} or "
        f"{automation.Thresholds().backup_keep}.",
    )
    whole_stack: bool | None = Field(
        default=None,
        description="Also a whole-stack bundle (Label Studio, MLflow, Dagster storage, raw copies; docs/operations.md); "
        "empty = when LABELING_ASSETS_DEPLOYMENT is local.",
    )
    raw: bool = Field(default=True, description="Whole-stack bundle: include the raw copies (<data>/raw).")


@dg.op(description="A compressed, verified backup of the label store under <data>/backups; older ones pruned.")
def store_backup(
    context: dg.OpExecutionContext,
    config: StoreBackupConfig,
    label_store: LabelStoreResource,
    project: ProjectSettings,
) -> dg.Output[str]:
    keep = config.keep or automation.thresholds_from(env.variable).backup_keep
    store = label_store.get_store()
    try:
        made = backup.backup_store(store, project.data_path / "backups", keep=keep)
    except backup.BackupError as exc:
        raise dg.Failure(f"backup of {store!r} failed: {exc}") from exc
    context.log.info(f"backed up {store!r} to {made.path} in {made.seconds:.1f}s; removed {len(made.removed)} old")
    whole = config.whole_stack if config.whole_stack is not None else env.deployment() == env.LOCAL
    stack: dict[str, dg.MetadataValue] = {}
    if whole:
        try:
            bundle = stack_backup.backup_stack(project.data_path / "backups", keep=keep, raw=config.raw,
                                               stack=stack_backup.discover(project.data_path, store.url))  # fmt: skip
        except backup.BackupError as exc:
            raise dg.Failure(f"whole-stack backup failed: {exc}") from exc
        parts = {p.name: p.status if p.status == "ok" else f"skipped: {p.reason}" for p in bundle.manifest.parts}
        context.log.info(f"whole-stack bundle {bundle.bundle} ({bundle.size:,} bytes, {bundle.seconds:.1f}s): {parts}")
        stack = {
            "stack_bundle": dg.MetadataValue.path(str(bundle.bundle)),
            "stack_bytes": dg.MetadataValue.int(bundle.size),
            "stack_seconds": dg.MetadataValue.float(round(bundle.seconds, 3)),
            "stack_parts": dg.MetadataValue.json(parts),
        }
    return dg.Output(
        str(made.path),
        metadata={
            **stack,
            "path": dg.MetadataValue.path(str(made.path)),
            "bytes": dg.MetadataValue.int(made.size),
            "seconds": dg.MetadataValue.float(round(made.seconds, 3)),
            "annotations": dg.MetadataValue.int(made.summary.tables.get("annotations", 0)),
            "annotations_sha256": dg.MetadataValue.text(made.summary.annotations_sha256),
            "removed": dg.MetadataValue.json([p.name for p in made.removed]),
            "kept": dg.MetadataValue.int(keep),
        },
    )


@dg.job(description="Back up the label store (SQLite online backup or pg_dump), keeping the newest N; on a local "
        "stack also the whole-stack bundle (Label Studio, MLflow, Dagster storage).")
def store_backup_job() -> None:
    store_backup()
