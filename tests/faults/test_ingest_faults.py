"""Ingest under faults (issue 12): odd files, hostile links, files that vanish or change behind a restored
mtime, unreadable folders, bad gold files, a missing or relative source. After each, every file has one
outcome, nothing was read that must not be, and nothing that was ingested is lost.

Reasons and outcomes are compared as the strings the store and the metadata hold (a public interface).
Against real SQLite and PostgreSQL stores (the ``store`` fixture).
"""

import io
import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from PIL import Image

from labeling_assets.assets.ingest import raw_images
from labeling_assets.core import images as img
from labeling_assets.core.ingest.scan import IngestOptions, IngestReport, ingest_source
from labeling_assets.core.store.schema import LabelStore, items_table, source_files_table
from labeling_assets.resources.image_source import ImageSourceResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from tests.core.test_ingest import Source, as_nobody, item, open_store, outcome_of, png_bytes  # noqa: F401

# The values the store and the metadata hold.
NEW, UNCHANGED, DUPLICATE, CHANGED, QUARANTINED = "new", "unchanged", "duplicate", "changed", "quarantined"
MISSING, RESTORED = "missing", "restored"
NOT_A_REGULAR_FILE, LINK_OUTSIDE_SOURCE, LINK_NOT_FOLLOWED = "not_a_regular_file", "link_outside_source", "link_not_followed"


@pytest.fixture
def source(tmp_path: Path) -> Source:
    return Source(tmp_path)


def raw_png(value: int, side: int = 16) -> bytes:
    """An uncompressed PNG: its size depends only on its dimensions, so two values make a same-size edit."""
    buffer = io.BytesIO()
    Image.new("L", (side, side), color=value).save(buffer, format="PNG", compress_level=0)
    return buffer.getvalue()


def status_of(store: LabelStore, data: bytes) -> str:
    return str(item(store, img.sha256_hex(data))["status"])


def manifest_row(store: LabelStore, path: str) -> dict:
    [row] = store.fetch(sa.select(source_files_table).where(source_files_table.c.path == path))
    return row


def every_stored_byte(*folders: Path) -> Iterator[bytes]:
    for folder in folders:
        if folder.exists():
            yield from (p.read_bytes() for p in folder.rglob("*") if p.is_file())


# --- only regular files are read ------------------------------------------------------------------------


def ingest_watching(store: LabelStore, source: Source, fifo: Path, **options: object) -> IngestReport:
    """Ingest in a thread; if it blocks (a reader waiting on the FIFO), unblock it and fail the test."""
    result: list[IngestReport] = []
    worker = threading.Thread(target=lambda: result.append(source.ingest(store, **options)), daemon=True)
    worker.start()
    worker.join(timeout=60)
    if worker.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # a writer that closes at once: the reader sees EOF
        worker.join(timeout=60)
        pytest.fail(f"ingest blocked opening the FIFO {fifo.name}")
    return result[0]


def test_a_fifo_named_like_an_image_is_never_opened_and_the_run_finishes(store: LabelStore, source: Source) -> None:
    source.write("good.png", png_bytes(1))
    os.mkfifo(source.dir / "pipe.png")
    report = ingest_watching(store, source, source.dir / "pipe.png")
    assert outcome_of(report, "pipe.png") == (QUARANTINED, NOT_A_REGULAR_FILE)
    assert "FIFO" in manifest_row(store, "pipe.png")["detail"]
    assert outcome_of(report, "good.png")[0] == NEW
    assert report.files_read == 1


def test_a_socket_and_a_device_named_like_images_are_never_opened(
    store: LabelStore, source: Source, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(source.dir)  # a relative bind keeps the socket path under the 108-byte limit
    with socket.socket(socket.AF_UNIX) as server:
        server.bind("socket.png")
        if os.geteuid() == 0:  # only root may make a device node: /dev/null's numbers
            os.mknod(source.dir / "device.png", stat.S_IFCHR | 0o600, os.makedev(1, 3))
        report = source.ingest(store)
    assert outcome_of(report, "socket.png") == (QUARANTINED, NOT_A_REGULAR_FILE)
    if os.geteuid() == 0:
        assert outcome_of(report, "device.png") == (QUARANTINED, NOT_A_REGULAR_FILE)
        assert "character device" in manifest_row(store, "device.png")["detail"]
    assert report.files_read == 0


@pytest.mark.parametrize("secret", [png_bytes(77), b"password=hunter2\n"], ids=["an image", "not an image"])
def test_a_link_to_a_private_file_outside_the_source_is_never_read_nor_copied(
    store: LabelStore, source: Source, tmp_path: Path, secret: bytes
) -> None:
    private = tmp_path / "elsewhere" / "secret.png"
    private.parent.mkdir()
    private.write_bytes(secret)
    private.chmod(0o600)
    (source.dir / "leak.png").symlink_to(private)
    report = source.ingest(store)
    assert outcome_of(report, "leak.png") == (QUARANTINED, LINK_OUTSIDE_SOURCE)
    assert str(private) in manifest_row(store, "leak.png")["detail"]  # says where the link points
    assert report.files_read == 0
    assert store.count(items_table) == 0
    assert secret not in set(every_stored_byte(source.raw, source.quarantine))


def test_a_link_that_resolves_inside_the_source_is_followed(store: LabelStore, source: Source) -> None:
    source.write("scans/real.png", png_bytes(3))
    (source.dir / "alias.png").symlink_to("scans/real.png")  # relative
    (source.dir / "scans" / "again.png").symlink_to(source.dir / "scans" / "real.png")  # absolute
    report = source.ingest(store)
    assert sorted(o.outcome for o in report.outcomes) == [DUPLICATE, DUPLICATE, NEW]  # the first in path order is new
    assert store.count(items_table) == 1 and report.files_read == 3


def test_the_link_policy_is_configurable(store: LabelStore, source: Source, tmp_path: Path) -> None:
    outside = tmp_path / "shared" / "x.png"
    outside.parent.mkdir()
    outside.write_bytes(png_bytes(9))
    source.write("real.png", png_bytes(3))
    (source.dir / "inside.png").symlink_to(source.dir / "real.png")
    (source.dir / "outside.png").symlink_to(outside)
    never = source.ingest(store, follow_symlinks="never")
    assert outcome_of(never, "inside.png") == (QUARANTINED, LINK_NOT_FOLLOWED)
    assert outcome_of(never, "outside.png") == (QUARANTINED, LINK_NOT_FOLLOWED)
    always = source.ingest(store, follow_symlinks="always")
    assert outcome_of(always, "inside.png")[0] == DUPLICATE
    assert outcome_of(always, "outside.png")[0] == NEW


def test_a_folder_link_out_of_the_source_is_reported_not_walked_and_a_link_loop_ends(
    store: LabelStore, source: Source, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "e.png").write_bytes(png_bytes(5))
    (source.dir / "mounted").symlink_to(elsewhere)
    (source.dir / "loop").symlink_to(source.dir)
    report = source.ingest(store)
    assert report.outcomes == []
    assert {(f.rel_path, f.reason) for f in report.folders_not_scanned} == {
        ("mounted", LINK_OUTSIDE_SOURCE),
        ("loop", "link_inside_source"),
    }
    walked = source.ingest(store, follow_symlinks="always")
    assert [(o.rel_path, o.outcome) for o in walked.outcomes] == [("mounted/e.png", NEW)]


# --- quarantine copies are private, raw copies stay servable -------------------------------------------


def test_a_quarantined_copy_is_readable_by_its_owner_only_and_raw_copies_stay_readable_by_label_studio(
    store: LabelStore, source: Source
) -> None:
    source.write("notes.png", b"salary review, do not share\n")
    source.write("good.png", png_bytes(1))
    old_umask = os.umask(0o022)
    try:
        source.ingest(store)
    finally:
        os.umask(old_umask)
    quarantined = Path(item(store, img.sha256_hex(b"salary review, do not share\n"))["uri"])
    assert stat.S_IMODE(quarantined.stat().st_mode) == 0o600
    assert stat.S_IMODE(quarantined.parent.stat().st_mode) == 0o700
    raw = Path(item(store, img.sha256_hex(png_bytes(1)))["uri"])
    assert stat.S_IMODE(raw.stat().st_mode) == 0o644  # as before: Label Studio serves it to labelers


def test_a_quarantine_folder_made_before_copies_were_private_becomes_private(store: LabelStore, source: Source) -> None:
    source.write("notes.png", b"not an image")
    source.ingest(store)
    copy = Path(item(store, img.sha256_hex(b"not an image"))["uri"])
    copy.chmod(0o644)  # as the old code left them
    copy.parent.chmod(0o755)
    source.quarantine.chmod(0o755)
    source.ingest(store)
    modes = [stat.S_IMODE(p.stat().st_mode) for p in (source.quarantine, copy.parent, copy)]
    assert modes == [0o700, 0o700, 0o600]


# --- files gone from the source ---------------------------------------------------------------------------


def test_a_file_gone_from_the_source_is_missing_and_its_item_retired_not_deleted(
    store: LabelStore, source: Source
) -> None:
    gone = source.write("a.png", png_bytes(1))
    source.write("b.png", png_bytes(2))
    source.ingest(store)
    gone.unlink()
    report = source.ingest(store)
    assert outcome_of(report, "a.png") == (MISSING, None)
    row = item(store, img.sha256_hex(png_bytes(1)))
    assert (row["status"], row["status_reason"]) == (MISSING, "source_missing")
    assert "a.png" in row["status_detail"] and Path(row["uri"]).read_bytes() == png_bytes(1)  # kept
    assert store.count(items_table) == 2 and status_of(store, png_bytes(2)) == "active"
    assert manifest_row(store, "a.png")["outcome"] == MISSING
    again = source.ingest(store)  # reported once, in the run that found it gone
    assert [o.outcome for o in again.outcomes] == [UNCHANGED] and again.files_read == 0


def test_a_missing_file_that_comes_back_with_the_same_bytes_is_active_again(store: LabelStore, source: Source) -> None:
    source.write("stays.png", png_bytes(9))  # a source that still holds something
    path = source.write("a.png", png_bytes(1))
    source.ingest(store)
    path.unlink()
    source.ingest(store)
    source.write("a.png", png_bytes(1))
    report = source.ingest(store)
    assert outcome_of(report, "a.png")[0] == RESTORED
    row = item(store, img.sha256_hex(png_bytes(1)))
    assert (row["status"], row["status_reason"], row["status_detail"]) == ("active", None, None)
    assert source.ingest(store).counts[UNCHANGED] == 2


def test_a_missing_file_back_with_other_bytes_is_a_new_item_and_the_old_stays_missing(
    store: LabelStore, source: Source
) -> None:
    source.write("stays.png", png_bytes(9))  # a source that still holds something
    path = source.write("a.png", png_bytes(1))
    source.ingest(store)
    path.unlink()
    source.ingest(store)
    source.write("a.png", png_bytes(2))
    report = source.ingest(store)
    assert outcome_of(report, "a.png")[0] == CHANGED
    assert item(store, img.sha256_hex(png_bytes(2)))["supersedes"] == img.sha256_hex(png_bytes(1))
    assert status_of(store, png_bytes(1)) == MISSING


def test_on_missing_keep_records_the_outcome_but_keeps_the_item_active(store: LabelStore, source: Source) -> None:
    path = source.write("a.png", png_bytes(1))
    source.write("b.png", png_bytes(2))
    source.ingest(store)
    path.unlink()
    report = source.ingest(store, on_missing="keep")
    assert outcome_of(report, "a.png") == (MISSING, None)
    assert status_of(store, png_bytes(1)) == "active"


def test_an_item_another_path_still_holds_stays_active_and_a_rename_loses_nothing(
    store: LabelStore, source: Source
) -> None:
    source.write("a.png", png_bytes(1))
    source.write("copy/a.png", png_bytes(1))
    old = source.write("old-name.png", png_bytes(2))
    source.ingest(store)
    (source.dir / "a.png").unlink()
    old.rename(source.dir / "new-name.png")
    report = source.ingest(store)
    assert outcome_of(report, "a.png")[0] == MISSING and outcome_of(report, "old-name.png")[0] == MISSING
    assert outcome_of(report, "new-name.png")[0] == DUPLICATE
    assert status_of(store, png_bytes(1)) == "active"  # copy/a.png holds it
    assert status_of(store, png_bytes(2)) == "active"  # new-name.png holds it


def test_a_source_that_suddenly_holds_no_image_fails_instead_of_retiring_every_item(
    store: LabelStore, source: Source
) -> None:
    for i in range(3):
        source.write(f"{i}.png", png_bytes(i))
    source.ingest(store)
    for path in source.dir.iterdir():
        path.unlink()  # what an unmounted disk looks like
    with pytest.raises(Exception, match=r"holds no image now, but 3 files were ingested from it before"):
        source.ingest(store)
    assert store.count(items_table, items_table.c.status == "active") == 3
    assert source.ingest(store, on_missing="keep").counts[MISSING] == 3  # when it is meant


def test_a_file_that_becomes_unreadable_retires_its_item_until_it_can_be_read_again(
    open_store: tuple[LabelStore, Source],  # noqa: F811 (the fixture imported above)
) -> None:
    store, source = open_store
    path = source.write("a.png", png_bytes(1))
    source.write("b.png", png_bytes(2))
    with as_nobody():
        source.ingest(store)
    path.chmod(0o000)
    with as_nobody():
        report = source.ingest(store)
    assert outcome_of(report, "a.png") == (QUARANTINED, img.UNREADABLE)
    row = item(store, img.sha256_hex(png_bytes(1)))
    assert (row["status"], row["status_reason"]) == (MISSING, "source_unreadable")
    path.chmod(0o644)
    with as_nobody():
        back = source.ingest(store)
    assert outcome_of(back, "a.png")[0] == RESTORED and status_of(store, png_bytes(1)) == "active"


# --- content changes behind a preserved size and mtime -----------------------------------------------------


def test_a_same_size_edit_with_the_mtime_restored_is_a_change(store: LabelStore, source: Source) -> None:
    old, new = raw_png(10), raw_png(200)
    assert len(old) == len(new)
    path = source.write("scan.png", old)
    source.ingest(store)
    before = path.stat()
    path.write_bytes(new)  # in place: same inode, same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    report = source.ingest(store)
    assert outcome_of(report, "scan.png")[0] == CHANGED
    assert status_of(store, old) == "superseded" and status_of(store, new) == "active"


def test_a_file_replaced_by_another_with_the_same_size_and_mtime_is_a_change(store: LabelStore, source: Source) -> None:
    old, new = raw_png(10), raw_png(200)
    path = source.write("scan.png", old)
    source.ingest(store)
    before = path.stat()
    replacement = source.write(".incoming", new)
    os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(replacement, path)  # what `cp -p` + `mv` or a sync tool does: a new inode
    assert source.ingest(store).counts[CHANGED] == 1


def forge_fingerprint(store: LabelStore, path: Path, rel_path: str) -> None:
    """Make the manifest hold the file's current fingerprint, as after a filesystem that reports no change
    (a network or FUSE mount that keeps ctime, bit rot under the filesystem)."""
    st = path.stat()
    with store.begin() as conn:
        conn.execute(
            source_files_table.update()
            .where(source_files_table.c.path == rel_path)
            .values(size=st.st_size, mtime_ns=st.st_mtime_ns, ctime_ns=st.st_ctime_ns, inode=st.st_ino)
        )


def test_rehash_always_finds_an_edit_that_left_no_trace_in_the_fingerprint(store: LabelStore, source: Source) -> None:
    old, new = raw_png(10), raw_png(200)
    path = source.write("scan.png", old)
    source.write("other.png", png_bytes(1))
    source.ingest(store)
    path.write_bytes(new)
    forge_fingerprint(store, path, "scan.png")
    blind = source.ingest(store)  # the default trusts the fingerprint: the cost of never reading
    assert (blind.counts[UNCHANGED], blind.files_read) == (2, 0)
    report = source.ingest(store, rehash_every=1)
    assert outcome_of(report, "scan.png")[0] == CHANGED
    assert outcome_of(report, "other.png")[0] == UNCHANGED
    assert (report.files_read, report.files_rehashed) == (2, 2)


def test_rehash_every_n_runs_reads_each_file_once_within_n_runs(store: LabelStore, source: Source) -> None:
    for i in range(6):
        source.write(f"{i}.png", png_bytes(i))
    source.ingest(store)
    first_read = {r["path"]: r["last_checked_at"] for r in store.fetch(sa.select(source_files_table))}
    for _ in range(3):
        report = source.ingest(store, rehash_every=3)
        assert (report.files_rehashed, report.files_read, report.counts[UNCHANGED]) == (2, 2, 6)
    reread = {r["path"]: r["last_checked_at"] for r in store.fetch(sa.select(source_files_table))}
    assert all(reread[path] > first_read[path] for path in first_read)


@pytest.mark.parametrize(
    ("value", "every"), [("never", 0), ("always", 1), ("every 7 runs", 7), ("3", 3), ("every 1 run", 1)]
)
def test_the_rehash_setting_reads_as_a_person_writes_it(value: str, every: int) -> None:
    from labeling_assets.core.ingest.scan import parse_rehash

    assert parse_rehash(value) == every


def test_a_rehash_setting_that_means_nothing_is_refused_by_name() -> None:
    from labeling_assets.core.ingest.scan import parse_rehash

    with pytest.raises(Exception, match=r"rehash='weekly'"):
        parse_rehash("weekly")


# --- unreadable folders -------------------------------------------------------------------------------------


def test_an_unreadable_folder_is_reported_with_its_path_and_its_known_files_are_not_marked_missing(
    open_store: tuple[LabelStore, Source],  # noqa: F811 (the fixture imported above)
) -> None:
    store, source = open_store
    source.write("ok.png", png_bytes(1))
    source.write("ward-7/a.png", png_bytes(2))
    with as_nobody():
        source.ingest(store)
    source.write("ward-7/new.png", png_bytes(3))
    (source.dir / "ward-7").chmod(0o000)
    with as_nobody():
        report = source.ingest(store)
    [folder] = report.folders_not_scanned
    assert (folder.rel_path, folder.reason) == ("ward-7", "unreadable_folder")
    assert "Permission denied" in folder.detail
    assert [(o.rel_path, o.outcome) for o in report.outcomes] == [("ok.png", UNCHANGED)]
    assert status_of(store, png_bytes(2)) == "active"
    (source.dir / "ward-7").chmod(0o755)
    with as_nobody():
        fixed = source.ingest(store)
    assert outcome_of(fixed, "ward-7/new.png")[0] == NEW and fixed.folders_not_scanned == []


# --- gold labels ------------------------------------------------------------------------------------------

DIGITS = [str(d) for d in range(10)]


def test_a_gold_label_outside_the_class_list_is_reported_and_not_stored(store: LabelStore, source: Source) -> None:
    source.write("g.png", png_bytes(1))
    source.write("h.png", png_bytes(2))
    report = source.ingest(store, gold_labels={"g.png": "7", "h.png": "cat"}, classes=DIGITS)
    assert item(store, img.sha256_hex(png_bytes(1)))["gold_label"] == "7"
    assert item(store, img.sha256_hex(png_bytes(2)))["gold_label"] is None
    assert report.gold_items == 1
    assert [(p.path, p.problem) for p in report.gold_problems] == [("h.png", "unknown_class")]
    assert "'cat' is not in the class list" in report.gold_problems[0].detail


def test_a_gold_label_stored_before_the_check_is_cleared_once_refused(store: LabelStore, source: Source) -> None:
    source.write("h.png", png_bytes(2))
    source.ingest(store, gold_labels={"h.png": "cat"})  # no class list known: stored
    assert item(store, img.sha256_hex(png_bytes(2)))["gold_label"] == "cat"
    source.ingest(store, gold_labels={"h.png": "cat"}, classes=DIGITS)
    assert item(store, img.sha256_hex(png_bytes(2)))["gold_label"] is None


def test_a_gold_entry_with_no_usable_image_is_reported(store: LabelStore, source: Source) -> None:
    source.write("g.png", png_bytes(1))
    source.write("broken.png", b"not an image")
    gone = source.write("gone.png", png_bytes(3))
    source.ingest(store)
    gone.unlink()
    gold = {"g.png": "1", "typo.png": "2", "broken.png": "3", "gone.png": "4"}
    report = source.ingest(store, gold_labels=gold, classes=DIGITS)
    problems = {p.path: (p.problem, p.detail) for p in report.gold_problems}
    assert problems == {
        "typo.png": ("no_image", "no such image file in the source"),
        "broken.png": ("no_image", "the file was quarantined (not_an_image)"),
        "gone.png": ("no_image", "the file is gone from the source"),
    }
    assert report.gold_items == 1


# --- the source itself: missing, not a folder, relative ------------------------------------------------------


def materialize(store: LabelStore, data_dir: Path, **source_config: object) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [raw_images],
        resources={
            "label_store": LabelStoreResource(url=store.url),
            "image_source": ImageSourceResource(demo_dir=str(data_dir / "demo"), **source_config),  # type: ignore[arg-type]
            "project": ProjectSettings(data_dir=str(data_dir)),
        },
        raise_on_error=False,
    )


def failure_line(result: dg.ExecuteInProcessResult) -> str:
    [event] = result.get_step_failure_events()
    data = event.step_failure_data
    return data.user_failure_data.description if data.user_failure_data else data.error.message


def metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    [event] = result.get_asset_materialization_events()
    return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}


def test_a_missing_source_fails_the_run_with_one_line_naming_its_absolute_path(
    store: LabelStore, data_dir: Path, tmp_path: Path
) -> None:
    result = materialize(store, data_dir, uri=str(tmp_path / "no-such-folder"))
    assert not result.success
    line = failure_line(result)
    assert line == f"image source {tmp_path / 'no-such-folder'} does not exist: fix the image_source resource's uri"


def test_a_file_given_as_the_source_fails_the_run_naming_it(store: LabelStore, data_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "images.zip").write_bytes(b"PK")
    result = materialize(store, data_dir, uri=str(tmp_path / "images.zip"))
    assert not result.success
    assert failure_line(result).startswith(f"image source {tmp_path / 'images.zip'} is not a folder")
    assert "\n" not in failure_line(result)


def test_a_relative_source_resolves_against_the_working_folder_and_is_shown_absolute(
    store: LabelStore, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.png").write_bytes(png_bytes(1))
    monkeypatch.chdir(tmp_path)
    result = materialize(store, data_dir, uri="photos")
    assert result.success
    meta = metadata(result)
    assert meta["source"] == f"file://{tmp_path / 'photos'}" and meta["files_new"] == 1
    monkeypatch.setenv("LABELING_ASSETS_IMAGE_SOURCE", "photos")
    assert ImageSourceResource().resolve_uri() == str(tmp_path / "photos")


def test_a_gold_file_that_is_not_there_fails_the_run_naming_it(
    store: LabelStore, data_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "photos").mkdir()
    result = materialize(store, data_dir, uri=str(tmp_path / "photos"), gold_labels_csv=str(tmp_path / "gold.csv"))
    assert failure_line(result) == f"gold labels file {tmp_path / 'gold.csv'} does not exist"


def test_gold_problems_and_unscanned_folders_are_in_the_materialization_metadata(
    store: LabelStore, data_dir: Path, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.png").write_bytes(png_bytes(1))
    (photos / "b.png").write_bytes(png_bytes(2))
    (photos / "gold.csv").write_text("filename,label\na.png,3\nb.png,zebra\nz.png,1\n")
    (tmp_path / "elsewhere").mkdir()
    (photos / "linked").symlink_to(tmp_path / "elsewhere")
    meta = metadata(materialize(store, data_dir, uri=str(photos)))
    assert (meta["gold_items"], meta["gold_problems"], meta["folders_not_scanned"]) == (1, 2, 1)
    assert "`b.png` | unknown_class" in str(meta["gold_problem_entries"])
    assert "`z.png` | no_image" in str(meta["gold_problem_entries"])
    assert "`linked/` | link_outside_source" in str(meta["folders_not_scanned_list"])


def test_relative_paths_given_to_the_core_resolve_against_the_working_folder(
    store: LabelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.png").write_bytes(png_bytes(1))
    monkeypatch.chdir(tmp_path)
    report = ingest_source(store, "photos", raw_dir=tmp_path / "raw", quarantine_dir=tmp_path / "q", options=IngestOptions())
    assert report.source == f"file://{tmp_path / 'photos'}" and report.counts[NEW] == 1


# --- the manifest's new columns reach every store ---------------------------------------------------------------


def test_a_store_migrated_past_migration_4_before_it_existed_gets_it_on_the_next_run(store: LabelStore) -> None:
    # Migrations 5 and 6 shipped before 4: a store migrated in between is "at 6" but lacks 4's columns.
    with store.begin() as conn:
        conn.exec_driver_sql("DELETE FROM schema_migrations WHERE version = 4")
        conn.exec_driver_sql("DROP INDEX ix_source_files_item")
        conn.exec_driver_sql("ALTER TABLE source_files DROP COLUMN ctime_ns")
        conn.exec_driver_sql("ALTER TABLE source_files DROP COLUMN inode")
    store.ensure_schema()
    columns = {c["name"] for c in sa.inspect(store.engine).get_columns("source_files")}
    assert {"ctime_ns", "inode"} <= columns
