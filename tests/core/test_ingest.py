"""Ingest: every file gets one clear outcome, bad files are quarantined with a reason, nothing is lost.

Runs against a real SQLite store and a real PostgreSQL store (the ``store`` fixture).
"""

import contextlib
import importlib
import io
import os
import shutil
import struct
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image

from labeling_assets.core import images as img
from labeling_assets.core.ingest.scan import (
    CHANGED,
    DUPLICATE,
    NEW,
    QUARANTINED,
    UNCHANGED,
    FileOutcome,
    IngestOptions,
    IngestReport,
    ingest_source,
)
from labeling_assets.core.ingest.summary import item_counts_by_status, preview_markdown, quarantine_table
from labeling_assets.core.store.schema import LabelStore, items_table, source_files_table


def png_bytes(value: int = 0, size: tuple[int, int] = (16, 16), mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color=value).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(value: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), color=(value, 10, 20)).save(buffer, format="JPEG")
    return buffer.getvalue()


def huge_png_header(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG that claims enormous dimensions (a decompression bomb's shape)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


class Source:
    """A source folder plus the raw/quarantine folders of one project."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "source"
        self.dir.mkdir()
        self.raw = root / "raw"
        self.quarantine = root / "quarantine"

    def write(self, name: str, data: bytes) -> Path:
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def ingest(self, store: LabelStore, **options: object) -> IngestReport:
        return ingest_source(
            store,
            str(self.dir),
            raw_dir=self.raw,
            quarantine_dir=self.quarantine,
            options=IngestOptions(**options),  # type: ignore[arg-type]
        )


@pytest.fixture
def source(tmp_path: Path) -> Source:
    return Source(tmp_path)


def outcome_of(report: IngestReport, rel_path: str) -> tuple[str, str | None]:
    [row] = [o for o in report.outcomes if o.rel_path == rel_path]
    return row.outcome, row.reason


def item(store: LabelStore, item_id: str) -> dict:
    [row] = store.fetch(sa.select(items_table).where(items_table.c.item_id == item_id))
    return row


def test_a_good_image_becomes_an_item_keyed_by_its_content_hash(store: LabelStore, source: Source) -> None:
    data = png_bytes(7, size=(20, 10))
    source.write("a/one.png", data)
    report = source.ingest(store)
    assert report.counts[NEW] == 1
    row = item(store, img.sha256_hex(data))
    assert (row["width"], row["height"], row["n_bytes"], row["status"]) == (20, 10, len(data), "active")
    assert row["source_path"].endswith("source/a/one.png")
    assert Path(row["uri"]).read_bytes() == data  # the content-addressed copy
    assert Path(row["uri"]).parent.parent == source.raw


def test_the_source_is_never_modified(store: LabelStore, source: Source) -> None:
    path = source.write("one.png", png_bytes(1))
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    source.ingest(store)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.png", b"", img.EMPTY_FILE),
        ("truncated.png", png_bytes(3, size=(64, 64))[:60], img.CORRUPT),
        ("truncated.jpg", jpeg_bytes(5)[:200], img.CORRUPT),
        ("notes.png", b"these are meeting notes, not a picture\n" * 4, img.NOT_AN_IMAGE),
        ("bomb.png", huge_png_header(100_000, 100_000), img.TOO_LARGE),
    ],
)
def test_a_bad_file_is_quarantined_with_its_reason_and_the_run_goes_on(
    store: LabelStore, source: Source, name: str, data: bytes, reason: str
) -> None:
    source.write(name, data)
    source.write("good.png", png_bytes(9))
    report = source.ingest(store)
    assert outcome_of(report, name) == (QUARANTINED, reason)
    assert outcome_of(report, "good.png")[0] == NEW
    assert report.quarantined_by_reason == {reason: 1}
    # The reason is in the store too (item and manifest), and the evidence is kept for a person to look at.
    [manifest] = store.fetch(sa.select(source_files_table).where(source_files_table.c.path == name))
    assert (manifest["outcome"], manifest["reason"]) == (QUARANTINED, reason)
    row = item(store, img.sha256_hex(data))
    assert (row["status"], row["status_reason"]) == (QUARANTINED, reason)
    assert Path(row["uri"]).read_bytes() == data
    assert str(source.quarantine) in row["uri"]


def test_a_bomb_is_rejected_without_decoding_its_pixels(store: LabelStore, source: Source) -> None:
    source.write("small-limit.png", png_bytes(1, size=(100, 100)))
    report = source.ingest(store, max_pixels=50 * 50)
    assert outcome_of(report, "small-limit.png") == (QUARANTINED, img.TOO_LARGE)


@contextlib.contextmanager
def as_nobody() -> Iterator[None]:
    """Act as an unprivileged user (root reads files whatever their mode, so the test drops to nobody)."""
    if os.geteuid() != 0:
        yield
        return
    # Modules imported lazily live in a venv that nobody may not read: import them while still root.
    Image.init()
    importlib.import_module("fsspec.implementations.chained")
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def open_store(request: pytest.FixtureRequest) -> Iterator[tuple[LabelStore, Source]]:
    """A store and a source in a world-writable folder, usable while the test acts as nobody."""
    base = Path(tempfile.mkdtemp(prefix="la-unreadable-"))
    base.chmod(0o777)
    store = (
        request.getfixturevalue("postgres_store")
        if request.param == "postgres"
        else LabelStore(f"sqlite:///{base}/labels.db")
    )
    store.migrate()
    src = Source(base)
    for folder in (src.dir, src.raw, src.quarantine):
        folder.mkdir(exist_ok=True)
        folder.chmod(0o777)
    for db_file in base.glob("labels.db*"):
        db_file.chmod(0o666)
    yield store, src
    if request.param == "sqlite":
        store.dispose()
    shutil.rmtree(base, ignore_errors=True)


def test_an_unreadable_file_is_quarantined_and_read_once_it_is_fixed(
    open_store: tuple[LabelStore, Source],
) -> None:
    store, source = open_store
    locked = source.write("locked.png", png_bytes(4))
    locked.chmod(0o000)
    (source.dir / "gone.png").symlink_to(source.dir / "does-not-exist.png")
    (source.dir / "folder.png").mkdir()
    with as_nobody():
        report = source.ingest(store)
    assert outcome_of(report, "locked.png") == (QUARANTINED, img.UNREADABLE)
    assert outcome_of(report, "gone.png") == (QUARANTINED, img.UNREADABLE)
    assert outcome_of(report, "folder.png") == (QUARANTINED, "not_a_regular_file")  # never opened
    [manifest] = store.fetch(sa.select(source_files_table).where(source_files_table.c.path == "locked.png"))
    assert "Permission" in manifest["detail"]  # says what happened
    locked.chmod(0o644)
    with as_nobody():
        second = source.ingest(store)
    # The manifest recorded the unreadable file with its size and mtime, but it was never an item:
    # fixing the permission alone must be enough for it to be read.
    assert outcome_of(second, "locked.png")[0] == NEW
    assert (
        store.count(items_table, items_table.c.item_id == img.sha256_hex(png_bytes(4)), items_table.c.status == "active") == 1
    )


def test_duplicate_bytes_under_two_names_are_one_item(store: LabelStore, source: Source) -> None:
    data = png_bytes(5)
    source.write("a.png", data)
    source.write("copies/b.png", data)
    report = source.ingest(store)
    assert sorted(o.outcome for o in report.outcomes) == [DUPLICATE, NEW]
    assert store.count(items_table) == 1
    ids = {row["item_id"] for row in store.fetch(sa.select(source_files_table.c.item_id))}
    assert ids == {img.sha256_hex(data)}


def test_a_path_with_changed_bytes_is_a_new_item_that_supersedes_the_old(
    store: LabelStore, source: Source
) -> None:
    old, new = png_bytes(1), png_bytes(200)
    path = source.write("scan.png", old)
    source.ingest(store)
    path.write_bytes(new)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    report = source.ingest(store)
    assert outcome_of(report, "scan.png")[0] == CHANGED
    new_row = item(store, img.sha256_hex(new))
    assert new_row["supersedes"] == img.sha256_hex(old)
    old_row = item(store, img.sha256_hex(old))
    assert old_row["status"] == "superseded"  # kept, with its bytes: labels on it stay explainable
    assert Path(old_row["uri"]).read_bytes() == old


def test_reingest_reads_no_unchanged_file(store: LabelStore, source: Source) -> None:
    for i in range(5):
        source.write(f"{i}.png", png_bytes(i * 10))
    first = source.ingest(store)
    assert (first.counts[NEW], first.files_read) == (5, 5)
    second = source.ingest(store)
    assert (second.counts[UNCHANGED], second.files_read) == (5, 0)
    source.write("5.png", png_bytes(99))
    third = source.ingest(store)
    assert (third.counts[NEW], third.counts[UNCHANGED], third.files_read) == (1, 5, 1)


def test_a_crash_mid_ingest_loses_nothing_and_a_rerun_finishes_without_duplicates(
    store: LabelStore, source: Source
) -> None:
    for i in range(7):
        source.write(f"{i}.png", png_bytes(i + 1))

    def crash_after_first_batch(done: int, total: int, report: IngestReport) -> None:
        raise KeyboardInterrupt("power cut")

    with pytest.raises(KeyboardInterrupt):
        ingest_source(
            store,
            str(source.dir),
            raw_dir=source.raw,
            quarantine_dir=source.quarantine,
            options=IngestOptions(batch_size=3),
            progress=crash_after_first_batch,
        )
    assert store.count(items_table) == 3  # the first batch committed
    report = source.ingest(store, batch_size=3)
    assert (report.counts[UNCHANGED], report.counts[NEW]) == (3, 4)
    assert store.count(items_table) == 7
    assert store.count(source_files_table) == 7


def test_gold_labels_are_stored_on_their_items_only(store: LabelStore, source: Source) -> None:
    source.write("g.png", png_bytes(1))
    source.write("x.png", png_bytes(2))
    report = source.ingest(store, gold_labels={"g.png": "7", "missing.png": "1"})
    assert report.gold_items == 1
    assert item(store, img.sha256_hex(png_bytes(1)))["gold_label"] == "7"
    assert item(store, img.sha256_hex(png_bytes(2)))["gold_label"] is None


def test_multi_label_gold_sets_are_stored_as_sorted_lists_and_bad_sets_are_refused_with_the_reason(
    store: LabelStore, source: Source
) -> None:
    for n, name in enumerate(("both.png", "none.png", "alien.png", "bare.png", "mixed.png"), start=1):
        source.write(name, png_bytes(n))
    gold = {"both.png": '["7", "1"]', "none.png": "[]", "alien.png": '["1", "cat"]', "bare.png": "7",
            "mixed.png": '["None of these", "1"]'}  # fmt: skip
    report = source.ingest(store, gold_labels=gold, classes=[str(d) for d in range(10)], task_type="multi_label")
    assert item(store, img.sha256_hex(png_bytes(1)))["gold_label"] == ["1", "7"]
    assert item(store, img.sha256_hex(png_bytes(2)))["gold_label"] == []  # none of these: a gold answer too
    assert report.gold_items == 2
    problems = {p.path: p.detail for p in report.gold_problems}
    assert set(problems) == {"alien.png", "bare.png", "mixed.png"}
    assert "cat" in problems["alien.png"] and "not a label set" in problems["bare.png"]
    assert "None of these" in problems["mixed.png"]
    # a project without "none of these" refuses the empty gold set and clears the one stored before
    again = source.ingest(
        store, gold_labels={"none.png": "[]"}, classes=[str(d) for d in range(10)], task_type="multi_label",
        allow_empty_set=False,
    )  # fmt: skip
    assert [p.path for p in again.gold_problems] == ["none.png"]
    assert item(store, img.sha256_hex(png_bytes(2)))["gold_label"] is None


def test_the_group_key_comes_from_the_configured_regex(store: LabelStore, source: Source) -> None:
    source.write("patient-1/a.png", png_bytes(1))
    source.write("patient-2/b.png", png_bytes(2))
    source.write("loose.png", png_bytes(3))
    source.ingest(store, group_key_regex=r"^(?P<group>patient-\d+)/")
    keys = {row["source_path"].rsplit("/", 1)[-1]: row["group_key"] for row in store.fetch(sa.select(items_table))}
    assert keys == {"a.png": "patient-1", "b.png": "patient-2", "loose.png": None}


def test_files_without_an_image_extension_are_ignored(store: LabelStore, source: Source) -> None:
    source.write("README.txt", b"hello")
    source.write("labels.csv", b"filename,label\n")
    assert source.ingest(store).outcomes == []


def test_the_ingest_summary_counts_items_by_status_and_lists_quarantined_files(store: LabelStore, source: Source) -> None:
    source.write("good.png", png_bytes(1))
    source.write("bad.png", b"not an image")
    report = source.ingest(store)
    assert item_counts_by_status(store) == {"active": 1, QUARANTINED: 1}
    table = quarantine_table(report)
    assert "`bad.png` | not_an_image" in table and "good.png" not in table
    assert preview_markdown(store, report.new_item_ids).startswith("![")


def test_the_quarantine_table_is_capped_and_says_how_many_more() -> None:
    report = IngestReport("src", [FileOutcome(f"f{i}.png", QUARANTINED, reason="unreadable") for i in range(25)])
    table = quarantine_table(report, max_rows=20)
    assert table.count("unreadable") == 20 and "… 5 more" in table
    assert quarantine_table(IngestReport("src")) == "No file was quarantined in this run."
