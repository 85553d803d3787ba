"""Ingest of a text project: .txt files and JSONL/CSV rows become items by the hash of their normalised text; what
cannot be an item is quarantined with its reason and the file and row it came from; an edited text supersedes.

Runs against a real SQLite store and a real PostgreSQL store (the ``store`` fixture).
"""

import json
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from labeling_assets.core.ingest.scan import (
    CHANGED,
    DUPLICATE,
    MISSING,
    NEW,
    QUARANTINED,
    UNCHANGED,
    IngestOptions,
    IngestReport,
    SourceError,
    ingest_source,
)
from labeling_assets.core.ingest.summary import preview_markdown
from labeling_assets.core.ingest.text import TextOptions, text_item_id
from labeling_assets.core.ingest.text_scan import entry_file
from labeling_assets.core.store.schema import LabelStore, items_table, source_files_table


class TextSource:
    def __init__(self, root: Path) -> None:
        self.dir = root / "texts"
        self.dir.mkdir()
        self.raw = root / "raw"

    def write(self, name: str, data: bytes | str) -> Path:
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        return path

    def jsonl(self, name: str, rows: list[dict[str, object]]) -> Path:
        return self.write(name, "".join(json.dumps(r) + "\n" for r in rows))

    def ingest(self, store: LabelStore, text: TextOptions | None = None, **options: object) -> IngestReport:
        return ingest_source(
            store,
            str(self.dir),
            raw_dir=self.raw,
            quarantine_dir=self.dir.parent / "quarantine",
            options=IngestOptions(text=text or TextOptions(), **options),  # type: ignore[arg-type]
        )


@pytest.fixture
def source(tmp_path: Path) -> TextSource:
    return TextSource(tmp_path)


def outcomes(report: IngestReport) -> dict[str, tuple[str, str | None]]:
    return {o.rel_path: (o.outcome, o.reason) for o in report.outcomes}


def item(store: LabelStore, item_id: str) -> dict:
    [row] = store.fetch(sa.select(items_table).where(items_table.c.item_id == item_id))
    return row


def test_a_txt_file_and_jsonl_and_csv_rows_become_items_stored_as_their_normalised_text(
    store: LabelStore, source: TextSource
) -> None:
    source.write("notes/a.txt", b"\xef\xbb\xbfCafe\xcc\x81 opens\r\nat nine.\r\n")  # BOM, NFD, Windows lines
    source.jsonl("batch.jsonl", [{"id": 1, "text": "Alice met Bob."}, {"id": "b", "text": "Paris."}])
    source.write("sheet.csv", 'id,text\nx,"Two\nlines"\n')
    report = source.ingest(store)

    assert outcomes(report) == {
        "notes/a.txt": (NEW, None), "batch.jsonl#1": (NEW, None), "batch.jsonl#b": (NEW, None),
        "sheet.csv#x": (NEW, None),
    }  # fmt: skip
    stored = item(store, text_item_id("Café opens\nat nine.\n"))
    assert Path(stored["uri"]).read_text(encoding="utf-8") == "Café opens\nat nine.\n"
    assert Path(stored["uri"]).suffix == ".txt" and stored["format"] == "TXT" and stored["status"] == "active"
    assert stored["source_path"].endswith("/notes/a.txt")
    row = item(store, text_item_id("Alice met Bob."))
    assert row["source_path"].endswith("/batch.jsonl#1") and row["n_bytes"] == len(b"Alice met Bob.")
    assert Path(item(store, text_item_id("Two\nlines"))["uri"]).read_bytes() == b"Two\nlines"


def test_the_same_text_twice_is_one_item_whatever_its_line_ends(store: LabelStore, source: TextSource) -> None:
    source.write("unix.txt", "One text.\n")
    source.write("windows.txt", "One text.\r\n")
    source.jsonl("rows.jsonl", [{"id": "r1", "text": "One text.\n"}, {"id": "r2", "text": "One text.\r\n"}])
    report = source.ingest(store)
    assert sorted(o.outcome for o in report.outcomes) == [DUPLICATE, DUPLICATE, DUPLICATE, NEW]
    assert {o.item_id for o in report.outcomes} == {text_item_id("One text.\n")}
    assert store.fetch(sa.select(sa.func.count()).select_from(items_table))[0] == {"count_1": 1}


def test_bad_texts_are_quarantined_with_their_reason_file_and_row_and_the_rest_is_ingested(
    store: LabelStore, source: TextSource
) -> None:
    source.write("latin1.txt", "caf\xe9".encode("latin-1"))
    source.write("blank.txt", "  \n\t\n")
    source.write("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    source.write("big.txt", "word " * 30)
    source.jsonl("rows.jsonl", [
        {"id": "a", "text": "Fine."}, {"text": "No id."}, {"id": "a", "text": "Same id again."},
        {"id": "e", "text": ""}, {"id": "long", "text": "x" * 200},
    ])  # fmt: skip
    source.write("wrong.csv", "key,body\n1,hello\n")
    report = source.ingest(store, text=TextOptions(max_bytes=100))

    assert outcomes(report) == {
        "latin1.txt": (QUARANTINED, "not_utf8"),
        "blank.txt": (QUARANTINED, "empty_text"),
        "image.txt": (QUARANTINED, "binary_content"),
        "big.txt": (QUARANTINED, "text_too_large"),
        "rows.jsonl#a": (NEW, None),
        "rows.jsonl@2": (QUARANTINED, "row_without_id"),
        "rows.jsonl@3": (QUARANTINED, "duplicate_id"),
        "rows.jsonl#e": (QUARANTINED, "empty_text"),
        "rows.jsonl#long": (QUARANTINED, "text_too_large"),
        "wrong.csv": (QUARANTINED, "missing_column"),
    }
    details = {o.rel_path: o.detail or "" for o in report.outcomes}
    assert "byte 3" in details["latin1.txt"] and "over the limit of 100 bytes" in details["big.txt"]
    assert details["rows.jsonl@3"].startswith("row 3: ") and "'key', 'body'" in details["wrong.csv"]
    # Recorded in the manifest with the reason (nothing dropped unseen), no item for any of them.
    manifest = {r["path"]: r for r in store.fetch(sa.select(source_files_table))}
    assert manifest["rows.jsonl@2"]["reason"] == "row_without_id" and manifest["rows.jsonl@2"]["item_id"] is None
    assert report.quarantined_by_reason == {
        "not_utf8": 1, "empty_text": 2, "binary_content": 1, "text_too_large": 2, "row_without_id": 1,
        "duplicate_id": 1, "missing_column": 1,
    }  # fmt: skip


def test_a_text_file_over_the_file_size_limit_is_never_read(store: LabelStore, source: TextSource) -> None:
    source.write("huge.jsonl", json.dumps({"id": 1, "text": "y" * 500}) + "\n")
    report = source.ingest(store, max_file_bytes=100)
    assert outcomes(report) == {"huge.jsonl": (QUARANTINED, "file_too_large")}
    assert report.files_read == 0


def test_an_edited_text_is_a_new_item_that_supersedes_the_old_one(store: LabelStore, source: TextSource) -> None:
    source.jsonl("rows.jsonl", [{"id": "1", "text": "Old wording."}, {"id": "2", "text": "Kept."}])
    source.write("note.txt", "First draft.")
    source.ingest(store)
    source.jsonl("rows.jsonl", [{"id": "1", "text": "New wording."}, {"id": "2", "text": "Kept."}])
    source.write("note.txt", "Second draft.")
    report = source.ingest(store)

    assert outcomes(report) == {
        "rows.jsonl#1": (CHANGED, None), "rows.jsonl#2": (UNCHANGED, None), "note.txt": (CHANGED, None),
    }  # fmt: skip
    for old, new in (("Old wording.", "New wording."), ("First draft.", "Second draft.")):
        assert item(store, text_item_id(old))["status"] == "superseded"
        assert item(store, text_item_id(new))["supersedes"] == text_item_id(old)
        assert item(store, text_item_id(new))["status"] == "active"
    assert item(store, text_item_id("Kept."))["status"] == "active"


def test_a_row_that_becomes_unreadable_retires_its_item_and_a_fix_brings_a_new_one(
    store: LabelStore, source: TextSource
) -> None:
    source.jsonl("rows.jsonl", [{"id": "1", "text": "Was fine."}])
    source.ingest(store)
    source.jsonl("rows.jsonl", [{"id": "1", "text": "   "}])
    assert outcomes(source.ingest(store)) == {"rows.jsonl#1": (QUARANTINED, "empty_text")}
    assert item(store, text_item_id("Was fine."))["status"] == "missing"
    source.jsonl("rows.jsonl", [{"id": "1", "text": "Fixed."}])
    assert outcomes(source.ingest(store)) == {"rows.jsonl#1": (NEW, None)}


def test_an_unchanged_file_is_not_read_again_and_a_removed_row_is_missing(
    store: LabelStore, source: TextSource
) -> None:
    source.jsonl("rows.jsonl", [{"id": "1", "text": "One."}, {"id": "2", "text": "Two."}])
    source.write("a.txt", "A.")
    source.ingest(store)
    again = source.ingest(store)
    assert again.files_read == 0
    assert outcomes(again) == {"rows.jsonl#1": (UNCHANGED, None), "rows.jsonl#2": (UNCHANGED, None),
                               "a.txt": (UNCHANGED, None)}  # fmt: skip

    source.jsonl("rows.jsonl", [{"id": "1", "text": "One."}])
    os.remove(source.dir / "a.txt")
    report = source.ingest(store)
    assert outcomes(report) == {"rows.jsonl#1": (UNCHANGED, None), "rows.jsonl#2": (MISSING, None),
                                "a.txt": (MISSING, None)}  # fmt: skip
    assert item(store, text_item_id("Two."))["status"] == "missing"
    assert item(store, text_item_id("One."))["status"] == "active"


def test_a_refused_row_is_read_again_after_the_settings_change(store: LabelStore, source: TextSource) -> None:
    source.write("sheet.csv", "key,body\nk1,Hello there.\n")
    assert outcomes(source.ingest(store)) == {"sheet.csv": (QUARANTINED, "missing_column")}
    report = source.ingest(store, text=TextOptions(id_field="key", text_field="body"))
    assert outcomes(report) == {"sheet.csv#k1": (NEW, None), "sheet.csv": (MISSING, None)}


def test_an_emptied_source_is_not_retired_wholesale(store: LabelStore, source: TextSource) -> None:
    source.write("a.txt", "A.")
    source.ingest(store)
    os.remove(source.dir / "a.txt")
    with pytest.raises(SourceError, match="text source .* holds no text now, but 1 files were ingested"):
        source.ingest(store)


def test_only_text_files_are_listed_and_the_gold_file_is_left_out(store: LabelStore, source: TextSource) -> None:
    source.write("a.txt", "A text.")
    source.write("photo.png", b"\x89PNG not a text")
    gold = source.write("gold.csv", "filename,label\na.txt,pos\n")
    report = source.ingest(store, skip_paths=frozenset({os.path.realpath(gold)}))
    assert outcomes(report) == {"a.txt": (NEW, None)}


def test_the_preview_shows_a_new_text_s_first_characters(store: LabelStore, source: TextSource) -> None:
    source.write("a.txt", "The *quick* fox.")
    report = source.ingest(store)
    assert preview_markdown(store, report.new_item_ids) == "- The \\*quick\\* fox."


def test_an_entry_belongs_to_the_listed_file_its_row_names() -> None:
    files = {"a#b.jsonl", "x.csv", "n.txt"}
    assert entry_file("a#b.jsonl#7", files) == "a#b.jsonl"
    assert entry_file("x.csv@3", files) == "x.csv"
    assert entry_file("n.txt", files) == "n.txt"
    assert entry_file("gone.jsonl#1", files) is None


def test_gold_names_a_text_by_its_entry_and_is_read_by_the_text_kind(store: LabelStore, source: TextSource) -> None:
    source.jsonl("rows.jsonl", [{"id": "1", "text": "Great match."}, {"id": "2", "text": "Rain again."}])
    gold = {"rows.jsonl#1": "sports", "rows.jsonl#2": "cooking", "gone.jsonl#9": "sports"}
    report = source.ingest(store, gold_labels=gold, task_type="text_classes", classes=["sports", "weather"])
    assert report.gold_items == 1 and item(store, text_item_id("Great match."))["gold_label"] == "sports"
    assert sorted((p.path, p.problem) for p in report.gold_problems) == [
        ("gone.jsonl#9", "no_image"), ("rows.jsonl#2", "unknown_class")]  # fmt: skip
