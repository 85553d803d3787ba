"""The table of contents: one ``dg.Definitions`` built from each stage's module, listed by hand."""

import dagster as dg

from labeling_assets.env import build_resources

defs = dg.Definitions(
    assets=[],
    asset_checks=[],
    jobs=[],
    sensors=[],
    resources=build_resources(),
)
