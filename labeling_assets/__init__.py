"""labeling-assets: an ML labeling operation as Dagster software-defined assets."""

__version__ = "0.1.0"
