"""Where raw images come from: a local folder or any fsspec URI; by default the bundled demo set."""

import os
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
from pydantic import Field

from labeling_assets import env
from labeling_assets.core.images import DEFAULT_MAX_PIXELS, MULTI_FRAME_REFUSE
from labeling_assets.core.ingest.audio import GROUPS_FILE, AudioOptions, load_groups
from labeling_assets.core.ingest.demo_data import render_digits
from labeling_assets.core.ingest.gold import load_label_csv
from labeling_assets.core.ingest.scan import IngestOptions, parse_rehash
from labeling_assets.core.ingest.source import (
    DEFAULT_MAX_FILE_BYTES,
    FOLLOW_INSIDE,
    SourceError,
    absolute_uri,
    check_source,
    open_source,
)
from labeling_assets.core.ingest.text import TextOptions
from labeling_assets.core.label_sets import SINGLE_LABEL


class ImageSourceResource(dg.ConfigurableResource["ImageSourceResource"]):  # the resource is its own value
    """An image source. Leave ``uri`` empty for ``$LABELING_ASSETS_IMAGE_SOURCE`` (read when a run scans), or
    the bundled demo set when that is unset too (rendered on first use). A relative local path is resolved
    against the working folder of the process that runs the scan, and shown absolute."""

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
    max_file_bytes: int = Field(
        default=DEFAULT_MAX_FILE_BYTES,
        description="Larger files (256 MiB by default) are quarantined from their size alone: never read, never "
        "copied (the manifest keeps their path and the reason).",
    )
    multi_frame: str = Field(
        default=MULTI_FRAME_REFUSE,
        description="Animated GIF/WebP/PNG and multi-page TIFF: 'refuse' = quarantined with the reason "
        "'multi_frame'; 'first_frame' = labelled, trained and hashed on their first frame.",
    )
    follow_symlinks: str = Field(
        default=FOLLOW_INSIDE,
        description="Symbolic links: 'inside' = followed only when they resolve inside the source folder; "
        "'never'; 'always'. A link not followed is quarantined with its reason, never read.",
    )
    on_missing: str = Field(
        default="retire",
        description="A file gone from the source: 'retire' = its item becomes 'missing' (not deleted; active "
        "again if the same bytes come back), 'keep' = the item stays active. Both record the outcome.",
    )
    rehash: str = Field(
        default="never",
        description="Re-read files whose size, mtime, ctime and inode are unchanged: 'never', 'always' (reads "
        "the whole source every run), or 'every N runs' (the least recently read 1/N of the files each run).",
    )

    def resolve_uri(self) -> str:
        """The source to scan, absolute (renders the demo set when none is configured)."""
        uri = self.uri or env.image_source()
        if uri:
            return absolute_uri(uri)
        demo = Path(self.demo_dir) if self.demo_dir else env.demo_dir()
        render_digits(demo)
        return absolute_uri(str(demo))

    def listing_uri(self) -> str:
        """The source a sensor tick lists: :meth:`resolve_uri`, except that the demo set is rendered only when
        it is not there yet, so an idle tick writes and reads no file (raw_data_sensor)."""
        uri = self.uri or env.image_source()
        if uri:
            return absolute_uri(uri)
        demo = Path(self.demo_dir) if self.demo_dir else env.demo_dir()
        if not (demo / "gold.csv").is_file():  # demo_data.GOLD_FILE: render_digits writes it last
            render_digits(demo)
        return absolute_uri(str(demo))

    def check(self) -> str:
        """The source to scan, absolute, once it is known to be an existing folder.

        Raises ``SourceError`` (a ``ConfigurationError``) in one line naming the absolute path and the setting.
        """
        uri = self.resolve_uri()
        try:
            check_source(*open_source(uri))
        except SourceError as exc:
            setting = "the image_source resource's uri" if self.uri else "LABELING_ASSETS_IMAGE_SOURCE"
            raise SourceError(f"{exc}: fix {setting}") from None
        return uri

    def ingest_options(
        self,
        uri: str,
        *,
        batch_size: int = 500,
        classes: Sequence[str] | None = None,
        task_type: str = SINGLE_LABEL,
        allow_empty_set: bool = True,
        text: TextOptions | None = None,
        audio: AudioOptions | None = None,
    ) -> IngestOptions:
        """How to ingest ``uri`` (from :meth:`resolve_uri`); gold labels are read as the kind of task ``task_type``
        names reads them (``TaskKind.parse_gold``) and checked against ``classes``. ``text``: a text project's
        settings (its ``.txt``, ``.jsonl`` and ``.csv`` files are read as texts, the gold file among them left out).
        ``audio``: an audio project's settings (its audio files, and text_edits' sidecar rows, are the items; a
        ``groups.csv`` in the source folder names each file's group).

        Raises ``SourceError`` for a setting that cannot be used, naming it (and the absolute path).
        """
        gold_csv = absolute_uri(self.gold_labels_csv) if self.gold_labels_csv else None
        if gold_csv is None and "://" not in uri and (Path(uri) / "gold.csv").is_file():
            gold_csv = str(Path(uri) / "gold.csv")
        if gold_csv is not None and not Path(gold_csv).is_file():
            raise SourceError(f"gold labels file {gold_csv} does not exist")
        groups_csv = Path(uri) / GROUPS_FILE if audio is not None and "://" not in uri else None
        try:
            gold = load_label_csv(gold_csv) if gold_csv else None
            groups = load_groups(groups_csv) if groups_csv is not None and groups_csv.is_file() else None
        except ValueError as exc:
            raise SourceError(str(exc)) from exc
        return IngestOptions(
            max_pixels=self.max_pixels,
            max_file_bytes=self.max_file_bytes,
            multi_frame=self.multi_frame,
            group_key_regex=self.group_key_regex,
            gold_labels=gold,
            batch_size=batch_size,
            classes=list(classes) if classes is not None else None,
            task_type=task_type,
            allow_empty_set=allow_empty_set,
            follow_symlinks=self.follow_symlinks,
            on_missing=self.on_missing,
            rehash_every=parse_rehash(self.rehash),
            text=text,
            audio=audio,
            groups=groups,
            skip_paths=frozenset({os.path.realpath(gold_csv)}) if gold_csv else frozenset(),
        )
