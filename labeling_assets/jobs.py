"""Jobs: named selections of assets (their checks come along)."""

import dagster as dg

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.assets("raw_images"),
    description="Scan the image source and ingest new or changed files.",
)
