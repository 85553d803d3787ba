"""One module per pipeline stage; thin wrappers around labeling_assets.core."""
