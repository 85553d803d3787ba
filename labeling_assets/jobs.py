"""Jobs: named selections of assets (their checks come along)."""

import dagster as dg

from labeling_assets.constants import GROUP_EVALUATE, GROUP_QUALITY, GROUP_TRAIN
from labeling_assets.partitions import labelers

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.assets("raw_images"),
    description="Scan the image source and ingest new or changed files.",
)

# Annotations and what follows from them (consensus, splits, exports), as far as the definitions hold it.
# Not the quality group: labeler_stats is partitioned per labeler, and an unpartitioned run cannot
# materialize it (the run fails). Not training/evaluation either: that is an explicit job.
# Groups, not keys: a selection by a key that some Definitions lack fails to resolve.
collect_job = dg.define_asset_job(
    "collect_job",
    selection=(
        dg.AssetSelection.assets("annotations").downstream()
        - dg.AssetSelection.groups(GROUP_QUALITY, GROUP_TRAIN, GROUP_EVALUATE)
    ),
    description="Pull new, edited and deleted Label Studio annotations into the store, then refresh what depends on them.",
)

queue_job = dg.define_asset_job(
    "queue_job",
    selection=dg.AssetSelection.assets("labeling_tasks"),
    description="Push the next batch of items (uncertain first, gold hidden among them) to Label Studio.",
)

dataset_job = dg.define_asset_job(
    "dataset_job",
    selection=dg.AssetSelection.assets("dataset_splits", "dataset_export"),
    description="Assign new consensus-labeled items to frozen splits, version the dataset, write its card and exports.",
)

# Training runs from this explicit job (not eagerly): it holds the "gpu" pool while it trains.
train_job = dg.define_asset_job(
    "train_job",
    selection=dg.AssetSelection.assets("training_tensors", "trained_model", "model_evaluation"),
    description="Decode the current dataset version into the tensor cache, train and register a model, evaluate it on the test split.",
)

prelabel_job = dg.define_asset_job(
    "prelabel_job",
    selection=dg.AssetSelection.assets("prelabels"),
    description="Class probabilities for every item from the latest registered model (or the pixel baseline).",
)

# One run per labeler partition (the daemon's automation or `labeling-assets demo` launches them).
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
