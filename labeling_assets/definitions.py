"""The table of contents: one ``dg.Definitions`` built from each stage's module, listed by hand."""

import dagster as dg

from labeling_assets.assets import ingest
from labeling_assets.checks import ingest as ingest_checks
from labeling_assets.env import build_resources
from labeling_assets.jobs import ingest_job

defs = dg.Definitions(
    assets=[ingest.raw_images],
    asset_checks=[ingest_checks.content_hashes_unique, ingest_checks.active_items_have_readable_copy],
    jobs=[ingest_job],
    sensors=[],
    resources=build_resources(),
)
