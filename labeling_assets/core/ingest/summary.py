"""What a person wants to see after an ingest: item totals, the quarantined files, thumbnails of new items."""

import sqlalchemy as sa

from labeling_assets.core import images as img
from labeling_assets.core.display import md_code, md_text
from labeling_assets.core.ingest.scan import MISSING, QUARANTINED, IngestReport
from labeling_assets.core.store.schema import LabelStore, items_table

PREVIEW_COUNT = 8
QUARANTINE_TABLE_ROWS = 20


def item_counts_by_status(store: LabelStore) -> dict[str, int]:
    """Stored items per status (active, quarantined, superseded), whatever run ingested them."""
    rows = store.fetch(sa.select(items_table.c.status, sa.func.count().label("n")).group_by(items_table.c.status))
    return {row["status"]: int(row["n"]) for row in rows}


def quarantine_table(report: IngestReport, *, max_rows: int = QUARANTINE_TABLE_ROWS) -> str:
    """The files this run quarantined, as a Markdown table (file, reason, detail)."""
    rows = report.of(QUARANTINED)
    if not rows:
        return "No file was quarantined in this run."
    lines = ["| file | reason | detail |", "|---|---|---|"]
    for row in rows[:max_rows]:
        lines.append(f"| {md_code(row.rel_path, 300)} | {row.reason} | {md_text(row.detail or '')} |")
    if len(rows) > max_rows:
        lines.append(f"| … {len(rows) - max_rows} more | | |")
    return "\n".join(lines)


def preview_markdown(store: LabelStore, new_ids: list[str], *, count: int = PREVIEW_COUNT) -> str:
    """Inline thumbnails of a few new items (of the newest stored ones when nothing is new); "" when none."""
    query = sa.select(items_table.c.item_id, items_table.c.uri).where(items_table.c.status == "active")
    if new_ids:
        query = query.where(items_table.c.item_id.in_(new_ids[:count]))
    else:
        query = query.order_by(items_table.c.ingested_at.desc())
    thumbs = []
    for row in store.fetch(query.limit(count)):
        try:
            with open(row["uri"], "rb") as fh:
                thumbs.append(img.markdown_image(img.thumbnail_png(fh.read()), alt=row["item_id"][:12]))
        except OSError:  # a copy that vanished is the readable-copy check's business, not the preview's
            continue
    return " ".join(thumbs)


def folders_table(report: IngestReport) -> str:
    """The folders this run could not (or would not) scan, as a Markdown table (folder, reason, detail)."""
    if not report.folders_not_scanned:
        return "Every folder of the source was scanned."
    lines = ["| folder | reason | detail |", "|---|---|---|"]
    lines += [f"| {md_code(f.rel_path + '/', 300)} | {f.reason} | {md_text(f.detail or '')} |" for f in report.folders_not_scanned]
    return "\n".join(lines)


def gold_problems_table(report: IngestReport) -> str:
    """Gold-file entries refused (class not in the class list) or naming no usable image, as Markdown."""
    if not report.gold_problems:
        return "Every gold-file entry names an ingested image and a class of the class list."
    lines = ["| gold-file entry | problem | detail |", "|---|---|---|"]
    lines += [f"| {md_code(p.path, 300)} | {p.problem} | {md_text(p.detail or '')} |" for p in report.gold_problems]
    return "\n".join(lines)


def warnings(report: IngestReport) -> list[str]:
    """One line per thing a person should look at after this run (for the run log)."""
    lines = [
        f"folder {report.source}/{f.rel_path} not scanned ({f.reason}): {f.detail}; files the store knows "
        "under it are left as they were"
        for f in report.folders_not_scanned
    ]
    lines += [f"gold-file entry {p.path!r} not used ({p.problem}): {p.detail}" for p in report.gold_problems]
    missing = report.of(MISSING)
    if missing:
        lines.append(f"{len(missing)} files are gone from the source (outcome 'missing'), e.g. {missing[0].rel_path}")
    return lines
