"""Stage 1, ingest: raw images, content-hashed, decode-verified, stored immutably."""

import time

import dagster as dg
import sqlalchemy as sa

from labeling_assets.constants import GROUP_INGEST, OWNERS
from labeling_assets.core import images as img
from labeling_assets.core.ingest.scan import QUARANTINED, IngestReport, ingest_source
from labeling_assets.core.store.schema import LabelStore, items_table
from labeling_assets.resources.image_source import ImageSourceResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

PREVIEW_COUNT = 8
QUARANTINE_TABLE_ROWS = 20


class IngestConfig(dg.Config):
    batch_size: int = 500


@dg.asset(
    group_name=GROUP_INGEST,
    kinds={"python", "sql"},
    owners=OWNERS,
)
def raw_images(
    context: dg.AssetExecutionContext,
    config: IngestConfig,
    label_store: LabelStoreResource,
    image_source: ImageSourceResource,
    project: ProjectSettings,
) -> dg.MaterializeResult:
    """Every usable raw image of the source, by content hash, with a quarantine of the files that are not."""
    store = label_store.get_store()
    uri = image_source.resolve_uri()
    started = time.perf_counter()

    def progress(done: int, total: int, report: IngestReport) -> None:
        rate = done / max(time.perf_counter() - started, 1e-9)
        context.log.info(f"ingest {done}/{total} changed files read ({rate:.0f} files/s); so far {report.counts}")

    context.log.info(f"Scanning {uri}")
    report = ingest_source(
        store,
        uri,
        raw_dir=project.data_path / "raw",
        quarantine_dir=project.data_path / "quarantine",
        options=image_source.ingest_options(batch_size=config.batch_size),
        progress=progress,
    )
    counts = report.counts
    context.log.info(
        f"Ingested {len(report.outcomes)} files from {report.source} in {report.seconds:.1f}s: {counts}; "
        f"quarantined by reason {report.quarantined_by_reason or '{}'}"
    )
    totals = _store_totals(store)
    metadata: dict[str, dg.MetadataValue] = {
        "source": dg.MetadataValue.text(report.source),
        **{f"files_{name}": dg.MetadataValue.int(n) for name, n in counts.items()},
        "files_read": dg.MetadataValue.int(report.files_read),
        "seconds": dg.MetadataValue.float(round(report.seconds, 3)),
        "active_items": dg.MetadataValue.int(totals.get("active", 0)),
        "quarantined_items": dg.MetadataValue.int(totals.get(QUARANTINED, 0)),
        "gold_items": dg.MetadataValue.int(report.gold_items),
        "quarantined_by_reason": dg.MetadataValue.json(report.quarantined_by_reason),
        "quarantined_files": dg.MetadataValue.md(_quarantine_table(report)),
        "quarantine_folder": dg.MetadataValue.path(str(project.data_path / "quarantine")),
    }
    preview = _preview(store, report.new_item_ids)
    if preview:
        metadata["preview"] = dg.MetadataValue.md(preview)
    return dg.MaterializeResult(metadata=metadata)


def _store_totals(store: LabelStore) -> dict[str, int]:
    rows = store.fetch(sa.select(items_table.c.status, sa.func.count().label("n")).group_by(items_table.c.status))
    return {row["status"]: int(row["n"]) for row in rows}


def _quarantine_table(report: IngestReport) -> str:
    rows = report.of(QUARANTINED)
    if not rows:
        return "No file was quarantined in this run."
    lines = ["| file | reason | detail |", "|---|---|---|"]
    for row in rows[:QUARANTINE_TABLE_ROWS]:
        detail = (row.detail or "").replace("|", "\\|")[:120]
        lines.append(f"| `{row.rel_path}` | {row.reason} | {detail} |")
    if len(rows) > QUARANTINE_TABLE_ROWS:
        lines.append(f"| … {len(rows) - QUARANTINE_TABLE_ROWS} more | | |")
    return "\n".join(lines)


def _preview(store: LabelStore, new_ids: list[str]) -> str:
    """Thumbnails of a few new items (or of the newest stored ones when nothing is new)."""
    query = sa.select(items_table.c.item_id, items_table.c.uri).where(items_table.c.status == "active")
    if new_ids:
        query = query.where(items_table.c.item_id.in_(new_ids[:PREVIEW_COUNT]))
    else:
        query = query.order_by(items_table.c.ingested_at.desc()).limit(PREVIEW_COUNT)
    thumbs = []
    for row in store.fetch(query.limit(PREVIEW_COUNT)):
        try:
            with open(row["uri"], "rb") as fh:
                thumbs.append(img.markdown_image(img.thumbnail_png(fh.read()), alt=row["item_id"][:12]))
        except OSError:
            continue
    return " ".join(thumbs)
