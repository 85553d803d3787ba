"""The table of contents: one ``dg.Definitions`` built from each stage's module, listed by hand."""

import dagster as dg

from labeling_assets.assets import dataset, ingest
from labeling_assets.checks import dataset as dataset_checks
from labeling_assets.checks import ingest as ingest_checks
from labeling_assets.env import build_resources
from labeling_assets.jobs import ingest_job

defs = dg.Definitions(
    assets=[ingest.raw_images, dataset.dataset_splits, dataset.dataset_export],
    asset_checks=[
        ingest_checks.content_hashes_unique,
        ingest_checks.active_items_have_readable_copy,
        dataset_checks.dataset_splits_no_hash_in_two_splits,
        dataset_checks.dataset_splits_no_group_in_two_splits,
        dataset_checks.dataset_splits_class_proportions_within_tolerance,
        dataset_checks.dataset_splits_frozen_assignments_unchanged,
        dataset_checks.dataset_splits_every_class_in_every_split,
    ],
    jobs=[ingest_job],
    sensors=[],
    resources=build_resources(),
)
