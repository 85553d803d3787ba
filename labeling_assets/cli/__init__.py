"""The ``labeling-assets`` command (entry point: :func:`labeling_assets.cli.main.main`)."""
