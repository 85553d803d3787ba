"""Dagster metadata from the plain reports core services return (shared by assets and checks)."""

from collections.abc import Mapping
from typing import Any

import dagster as dg

from labeling_assets.core.tasks.kind import Json, Markdown


def as_metadata(report: Mapping[str, Any]) -> dict[str, dg.MetadataValue]:
    """A core report's plain values as Dagster metadata: Markdown as md, text, int, float (None: a float not
    defined), ``Json`` and anything else as JSON."""
    out: dict[str, dg.MetadataValue] = {}
    for key, value in report.items():
        if isinstance(value, Json):
            out[key] = dg.MetadataValue.json(value.value)
        elif isinstance(value, Markdown):
            out[key] = dg.MetadataValue.md(str(value))
        elif isinstance(value, str):
            out[key] = dg.MetadataValue.text(value)
        elif isinstance(value, bool):
            out[key] = dg.MetadataValue.bool(value)
        elif isinstance(value, int):
            out[key] = dg.MetadataValue.int(value)
        elif value is None or isinstance(value, float):
            out[key] = dg.FloatMetadataValue(value)
        else:
            out[key] = dg.MetadataValue.json(value)
    return out
