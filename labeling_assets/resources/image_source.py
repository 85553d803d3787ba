"""Where raw images come from: a local folder or any fsspec URI; by default the bundled demo set."""

from pathlib import Path

import dagster as dg
from pydantic import Field

from labeling_assets import env
from labeling_assets.core.images import DEFAULT_MAX_PIXELS
from labeling_assets.core.ingest.demo_data import render_digits
from labeling_assets.core.ingest.scan import IngestOptions, load_label_csv


class ImageSourceResource(dg.ConfigurableResource["ImageSourceResource"]):  # the resource is its own value
    """An image source. Leave ``uri`` empty for ``$LABELING_ASSETS_IMAGE_SOURCE`` (read when a run scans), or
    the bundled demo set when that is unset too (rendered on first use)."""

    uri: str | None = Field(
        default=None,
        description="Folder or fsspec URI; empty = $LABELING_ASSETS_IMAGE_SOURCE, else the bundled demo digits.",
    )
    demo_dir: str | None = Field(
        default=None, description="Where the demo set is rendered when there is no source; empty = <data>/demo/digits."
    )
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
        uri = self.uri or env.image_source()
        if uri:
            return uri
        demo = Path(self.demo_dir) if self.demo_dir else env.demo_dir()
        render_digits(demo)
        return str(demo)

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
