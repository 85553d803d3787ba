"""Jobs: named selections of assets (their checks come along)."""

import dagster as dg

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.assets("raw_images"),
    description="Scan the image source and ingest new or changed files.",
)

# Everything downstream of annotations that the definitions hold (consensus, stats, splits, ...).
collect_job = dg.define_asset_job(
    "collect_job",
    selection=dg.AssetSelection.assets("annotations").downstream(),
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
