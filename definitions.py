"""The only Dagster entry point (workspace.yaml loads this file)."""

from labeling_assets.definitions import defs

__all__ = ["defs"]
