"""Stage 1, ingest: raw images, content-hashed, decode-verified, stored immutably."""

import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from labeling_assets import stage
from labeling_assets.constants import GROUP_INGEST
from labeling_assets.core.ingest.scan import (
    QUARANTINED,
    IngestReport,
    SourceError,
    StoreWriteError,
    ingest_source,
)
from labeling_assets.core.ingest.summary import (
    folders_table,
    gold_problems_table,
    item_counts_by_status,
    preview_markdown,
    quarantine_table,
    warnings,
)
from labeling_assets.core.store.phashes import ensure_phashes
from labeling_assets.core.store.schema import LabelStore
from labeling_assets.resources.image_source import ImageSourceResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource


class IngestConfig(dg.Config):
    batch_size: int = 500


@stage.asset(GROUP_INGEST, kinds={"python", "sql"})
def raw_images(
    context: dg.AssetExecutionContext,
    config: IngestConfig,
    label_store: LabelStoreResource,
    image_source: ImageSourceResource,
    project: ProjectSettings,
) -> dg.MaterializeResult[None]:
    """Every usable raw image of the source, by content hash, with a quarantine of the files that are not."""
    store = label_store.get_store()
    try:
        uri = image_source.check()
        context.log.info(f"Scanning {uri}")
        report = ingest_source(
            store,
            uri,
            raw_dir=project.data_path / "raw",
            quarantine_dir=project.data_path / "quarantine",
            options=image_source.ingest_options(
                uri,
                batch_size=config.batch_size,
                classes=project.classes,
                task_type=project.task_type,
                allow_empty_set=project.allow_empty_set,
                text=project.text_options(),
                audio=project.audio_options(),
            ),
            progress=_progress_logger(context),
        )
    except (SourceError, StoreWriteError) as exc:  # a bad source or setting, a full store: one line naming it
        raise dg.Failure(str(exc), allow_retries=False) from None
    context.log.info(
        f"Ingested {len(report.outcomes)} files from {report.source} in {report.seconds:.1f}s: {report.counts}; "
        f"quarantined by reason {report.quarantined_by_reason or '{}'}"
    )
    for line in warnings(report):
        context.log.warning(line)
    # Perceptual hashes of the new items, for near-duplicate groups in the splits (a copy that does not decode
    # gets a row with the reason, never a failed run).
    hashed = ensure_phashes(store, report.new_item_ids) if report.new_item_ids else 0
    metadata = _ingest_metadata(store, report, project.data_path / "quarantine")
    metadata["perceptual_hashes_computed"] = dg.MetadataValue.int(hashed)
    return dg.MaterializeResult(metadata=metadata)


def _progress_logger(context: dg.AssetExecutionContext) -> Callable[[int, int, IngestReport], None]:
    started = time.perf_counter()

    def progress(done: int, total: int, report: IngestReport) -> None:
        rate = done / max(time.perf_counter() - started, 1e-9)
        context.log.info(f"ingest {done}/{total} changed files read ({rate:.0f} files/s); so far {report.counts}")

    return progress


def _ingest_metadata(store: LabelStore, report: IngestReport, quarantine_dir: Path) -> dict[str, dg.MetadataValue]:
    totals = item_counts_by_status(store)
    metadata: dict[str, dg.MetadataValue] = {
        "source": dg.MetadataValue.text(report.source),
        **{f"files_{name}": dg.MetadataValue.int(n) for name, n in report.counts.items()},
        "files_read": dg.MetadataValue.int(report.files_read),
        "files_rehashed": dg.MetadataValue.int(report.files_rehashed),
        "seconds": dg.MetadataValue.float(round(report.seconds, 3)),
        "active_items": dg.MetadataValue.int(totals.get("active", 0)),
        "quarantined_items": dg.MetadataValue.int(totals.get(QUARANTINED, 0)),
        "missing_items": dg.MetadataValue.int(totals.get("missing", 0)),
        "gold_items": dg.MetadataValue.int(report.gold_items),
        "gold_problems": dg.MetadataValue.int(len(report.gold_problems)),
        "gold_problem_entries": dg.MetadataValue.md(gold_problems_table(report)),
        "folders_not_scanned": dg.MetadataValue.int(len(report.folders_not_scanned)),
        "folders_not_scanned_list": dg.MetadataValue.md(folders_table(report)),
        "quarantined_by_reason": dg.MetadataValue.json(report.quarantined_by_reason),
        "quarantined_files": dg.MetadataValue.md(quarantine_table(report)),
        "quarantine_folder": dg.MetadataValue.path(str(quarantine_dir)),
    }
    preview = preview_markdown(store, report.new_item_ids)
    if preview:
        metadata["preview"] = dg.MetadataValue.md(preview)
    return metadata
