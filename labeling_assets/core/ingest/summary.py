"""What a person wants to see after an ingest: item totals, the quarantined files, thumbnails of new items."""

import json
from collections.abc import Sequence

import sqlalchemy as sa

from labeling_assets.core import images as img
from labeling_assets.core.display import md_code, md_text
from labeling_assets.core.ingest.edits import EDIT_FORMAT
from labeling_assets.core.ingest.scan import MISSING, QUARANTINED, IngestReport
from labeling_assets.core.ingest.text_scan import TEXT_FORMAT
from labeling_assets.core.store.schema import LabelStore, items_table

PREVIEW_COUNT = 8
TEXT_PREVIEW_CHARS = 120
QUARANTINE_TABLE_ROWS = 20


def item_counts_by_status(store: LabelStore) -> dict[str, int]:
    """Stored items per status (active, quarantined, superseded), whatever run ingested them."""
    rows = store.fetch(sa.select(items_table.c.status, sa.func.count().label("n")).group_by(items_table.c.status))
    return {row["status"]: int(row["n"]) for row in rows}


def quarantine_table(report: IngestReport, *, max_rows: int = QUARANTINE_TABLE_ROWS) -> str:
    """The files this run quarantined, as a Markdown table (file, reason, detail)."""
    rows = [(row.rel_path, row.reason, row.detail) for row in report.of(QUARANTINED)]
    return _path_table("| file | reason | detail |", rows, empty="No file was quarantined in this run.", max_rows=max_rows)


def _path_table(
    head: str, rows: Sequence[tuple[str, str | None, str | None]], *, empty: str, max_rows: int | None = None
) -> str:
    """(path, reason, detail) rows as a Markdown table under ``head`` (``empty`` when there is none); past
    ``max_rows``, one row counts the rest."""
    if not rows:
        return empty
    shown = rows if max_rows is None else rows[:max_rows]
    lines = [head, "|---|---|---|"]
    lines += [f"| {md_code(path, 300)} | {reason} | {md_text(detail or '')} |" for path, reason, detail in shown]
    if len(rows) > len(shown):
        lines.append(f"| … {len(rows) - len(shown)} more | | |")
    return "\n".join(lines)


def preview_markdown(store: LabelStore, new_ids: list[str], *, count: int = PREVIEW_COUNT) -> str:
    """Inline thumbnails of a few new items (of the newest stored ones when nothing is new), a text item's first
    line instead (a text_edits item's machine output; an audio item's format and length); "" when none."""
    query = sa.select(items_table.c.item_id, items_table.c.uri, items_table.c.format, items_table.c.duration_s).where(
        items_table.c.status == "active"
    )
    if new_ids:
        query = query.where(items_table.c.item_id.in_(new_ids[:count]))
    else:
        query = query.order_by(items_table.c.ingested_at.desc())
    thumbs, texts = [], []
    for row in store.fetch(query.limit(count)):
        if row["duration_s"] is not None:  # audio: nothing to draw
            texts.append(f"- {row['format']} {row['duration_s']:.1f} s {md_code(row['item_id'][:12])}")
            continue
        try:
            with open(row["uri"], "rb") as fh:
                data = fh.read()
            if row["format"] == TEXT_FORMAT:
                texts.append(f"- {md_text(data.decode('utf-8').strip(), TEXT_PREVIEW_CHARS)}")
            elif row["format"] == EDIT_FORMAT:
                texts.append(f"- {md_text(str(json.loads(data)['machine']).strip(), TEXT_PREVIEW_CHARS)}")
            else:
                thumbs.append(img.markdown_image(img.thumbnail_png(data), alt=row["item_id"][:12]))
        except (OSError, ValueError, KeyError):  # a copy that vanished is the readable-copy check's business
            continue
    return "\n".join([" ".join(thumbs)] * bool(thumbs) + texts)


def folders_table(report: IngestReport) -> str:
    """The folders this run could not (or would not) scan, as a Markdown table (folder, reason, detail)."""
    rows = [(f.rel_path + "/", f.reason, f.detail) for f in report.folders_not_scanned]
    return _path_table("| folder | reason | detail |", rows, empty="Every folder of the source was scanned.")


def gold_problems_table(report: IngestReport) -> str:
    """Gold-file entries refused (class not in the class list) or naming no usable image, as Markdown."""
    rows = [(p.path, p.problem, p.detail) for p in report.gold_problems]
    empty = "Every gold-file entry names an ingested image and a class of the class list."
    return _path_table("| gold-file entry | problem | detail |", rows, empty=empty)


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
