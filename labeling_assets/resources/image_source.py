"""Where raw images come from: a local folder or any fsspec URI; by default the bundled demo set."""

from pathlib import Path

import dagster as dg
from pydantic import Field

from labeling_assets.core.images import DEFAULT_MAX_PIXELS
from labeling_assets.core.ingest.demo_data import render_digits
from labeling_assets.core.ingest.scan import IngestOptions, load_label_csv


class ImageSourceResource(dg.ConfigurableResource):
    """An image source. Leave ``uri`` empty for the bundled demo set (rendered on first use)."""

    uri: str | None = Field(default=None, description="Folder or fsspec URI; empty = bundled demo digits.")
    demo_dir: str = Field(description="Where the demo set is rendered when uri is empty.")
    gold_labels_csv: str | None = Field(
        default=None,
        description="CSV 'filename,label' of the hidden gold set (paths relative to the source). "
        "Empty = gold.csv inside a local source folder when present.",
    )
    group_key_regex: str | None = Field(
        default=None, description="Regex with a named group 'group' over the relative path (no split leakage)."
    )
    max_pixels: int = Field(default=DEFAULT_MAX_PIXELS, description="Larger images are quarantined unread.")

    def resolve_uri(self) -> str:
        """The source to scan (renders the demo set when none is configured)."""
        if self.uri:
            return self.uri
        render_digits(Path(self.demo_dir))
        return self.demo_dir

    def ingest_options(self, *, batch_size: int = 500) -> IngestOptions:
        gold_csv = self.gold_labels_csv
        if gold_csv is None:
            candidate = Path(self.resolve_uri()) / "gold.csv"
            gold_csv = str(candidate) if candidate.is_file() else None
        return IngestOptions(
            max_pixels=self.max_pixels,
            group_key_regex=self.group_key_regex,
            gold_labels=load_label_csv(gold_csv) if gold_csv else None,
            batch_size=batch_size,
        )
