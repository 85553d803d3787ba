"""Ingest of files nobody vetted (issue 28): huge and sparse files, names that are not UTF-8, images whose
pixels need care (EXIF orientation, 16 bits, palettes, several frames), files rewritten while they are read,
and a raw store that fills up. After each, the rest of the source is stored, memory stays bounded, nothing
half-written is stored, and a failure is one line naming what to fix.

Against real SQLite and PostgreSQL stores (the ``store`` fixture), real files and a real kernel: sparse files,
an address-space limit, a tmpfs that is really full, rewrites done on disk while the scan reads.
"""

import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from PIL import Image

from labeling_assets.core import images as img
from labeling_assets.core.dataset.near_duplicates import hamming, phash_bytes
from labeling_assets.core.store.schema import LabelStore, items_table
from labeling_assets.core.training.decode import decode_image_file
from tests.core.test_ingest import Source, item, outcome_of, png_bytes
from tests.faults.test_ingest_faults import materialize, metadata

NEW, QUARANTINED = "new", "quarantined"
FILE_TOO_LARGE, FILE_NAME_NOT_UTF8, MULTI_FRAME = "file_too_large", "file_name_not_utf8", "multi_frame"
CHANGED_WHILE_READ = "changed_while_read"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def source(tmp_path: Path) -> Source:
    return Source(tmp_path)


def items(store: LabelStore) -> list[dict[str, object]]:
    return store.fetch(sa.select(items_table))


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def noise_png(seed: int, side: int = 64, mode: str = "RGB") -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format="PNG", compress_level=0)
    return buffer.getvalue()


# --- finding 3: a size limit checked from stat; memory bounded for any file -------------------------------


def test_a_file_over_the_size_limit_is_quarantined_by_reference_never_read_nor_copied(
    store: LabelStore, source: Source
) -> None:
    big = noise_png(1)  # a valid image, only too large for this project's limit
    source.write("big.png", big)
    source.write("small.png", png_bytes(3))
    report = source.ingest(store, max_file_bytes=len(big) - 1)
    assert outcome_of(report, "big.png") == (QUARANTINED, FILE_TOO_LARGE)
    [row] = report.of(QUARANTINED)
    assert row.item_id is None and f"{len(big)} bytes > limit {len(big) - 1}" in (row.detail or "")
    assert report.bytes_read == len(png_bytes(3))  # big.png was never read
    assert files_under(source.quarantine) == []  # by reference: the file stays only in the source
    assert outcome_of(report, "small.png") == (NEW, None)
    # Raising the limit ingests it (a quarantined file without an item is looked at again every run).
    assert outcome_of(source.ingest(store, max_file_bytes=len(big)), "big.png") == (NEW, None)


def test_the_default_size_limit_is_256_mib_and_a_nonsense_limit_is_refused(store: LabelStore, source: Source) -> None:
    from labeling_assets.core.ingest.scan import IngestOptions, SourceError

    assert IngestOptions().max_file_bytes == 256 * 1024 * 1024
    source.write("one.png", png_bytes(1))
    with pytest.raises(SourceError, match="max_file_bytes=0"):
        source.ingest(store, max_file_bytes=0)


BOUNDED_INGEST = r"""
import json, resource, sys
from collections.abc import Callable
from pathlib import Path
limit = 1536 * 2**20  # 1.5 GiB of address space for the whole process
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from labeling_assets.core.ingest.scan import ingest_source
from labeling_assets.core.store.schema import LabelStore
root = Path(sys.argv[1])
store = LabelStore(f"sqlite:///{root / 'labels.db'}")
store.migrate()
report = ingest_source(store, str(root / "source"), raw_dir=root / "raw", quarantine_dir=root / "quarantine")
print(json.dumps({
    "outcomes": {o.rel_path: [o.outcome, o.reason] for o in report.outcomes},
    "bytes_read": report.bytes_read,
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so it would report the forking pytest's size.
    "max_rss_mib": next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) // 1024,
}))
"""


@pytest.mark.slow  # a fresh Python in a subprocess
def test_a_sparse_10_gb_file_is_refused_from_its_size_and_the_batch_is_stored_under_a_memory_cap(
    tmp_path: Path,
) -> None:
    source = Source(tmp_path)
    for k in range(3):
        source.write(f"ok{k}.png", png_bytes(k * 50))
    big = source.write("big.png", png_bytes(9))  # a real PNG header, then 10 GB of holes
    os.truncate(big, 10 * 2**30)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    run = subprocess.run(
        [sys.executable, "-c", BOUNDED_INGEST, str(tmp_path)], capture_output=True, text=True, env=env, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["outcomes"]["big.png"] == [QUARANTINED, FILE_TOO_LARGE]
    assert [result["outcomes"][f"ok{k}.png"][0] for k in range(3)] == [NEW] * 3
    assert result["bytes_read"] < 10_000 and result["max_rss_mib"] < 1024
    assert files_under(source.quarantine) == []  # no 10 GB copy


# --- finding 4: a name that is not UTF-8 ---------------------------------------------------------------


def write_bytes_name(folder: Path, name: bytes, data: bytes) -> None:
    fd = os.open(os.fsencode(folder) + b"/" + name, os.O_WRONLY | os.O_CREAT, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


@pytest.mark.slow
def test_a_file_name_that_is_not_utf8_is_quarantined_with_its_bytes_escaped_and_the_rest_ingests(
    store: LabelStore, source: Source
) -> None:
    write_bytes_name(source.dir, b"caf\xe9.png", png_bytes(1))  # Latin-1 "café"
    os.mkdir(os.fsencode(source.dir) + b"/d\xff")
    write_bytes_name(source.dir / os.fsdecode(b"d\xff"), b"in.png", png_bytes(2))
    source.write("good.png", png_bytes(3))
    for _ in range(2):  # every rerun too
        report = source.ingest(store)
        assert outcome_of(report, "caf\\xe9.png") == (QUARANTINED, FILE_NAME_NOT_UTF8)
        assert outcome_of(report, "d\\xff/in.png") == (QUARANTINED, FILE_NAME_NOT_UTF8)
        [bad] = [o for o in report.outcomes if o.rel_path == "caf\\xe9.png"]
        assert "b'caf\\xe9.png'" in (bad.detail or "")
    assert [row["status"] for row in items(store)] == ["active"]  # good.png
    assert item(store, img.sha256_hex(png_bytes(3)))["source_path"].endswith("good.png")


def test_a_run_over_a_name_that_is_not_utf8_succeeds_without_a_traceback(
    store: LabelStore, data_dir: Path, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    write_bytes_name(photos, b"bad\x80.png", png_bytes(1))
    (photos / "good.png").write_bytes(png_bytes(2))
    result = materialize(store, data_dir, uri=str(photos))
    assert result.success
    meta = metadata(result)
    assert (meta["files_new"], meta["files_quarantined"]) == (1, 1)
    assert "bad\\x80.png" in str(meta["quarantined_files"])


# --- finding 5: one decoder, as the labeler sees the picture --------------------------------------------


def jpeg(image: Image.Image, orientation: int | None = None) -> bytes:
    buffer = io.BytesIO()
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    image.save(buffer, format="JPEG", quality=95, exif=exif.tobytes())
    return buffer.getvalue()


def test_exif_orientation_is_applied_for_the_store_training_previews_and_hashes(
    store: LabelStore, source: Source
) -> None:
    upright = Image.new("L", (32, 64), 0)  # portrait: a bright top half, a dark bottom half, a bright stripe
    upright.paste(255, (0, 0, 32, 32))
    upright.paste(160, (20, 32, 28, 64))
    # A camera stores the pixels sideways and says "rotate 90 degrees clockwise" (orientation 6).
    sideways = jpeg(upright.transpose(Image.Transpose.ROTATE_90), orientation=6)
    plain = jpeg(upright)
    source.write("sideways.jpg", sideways)
    source.write("upright.jpg", plain)
    source.ingest(store)
    row = item(store, img.sha256_hex(sideways))
    assert (row["width"], row["height"]) == (32, 64)
    assert int(hamming(np.array([phash_bytes(sideways)], np.uint64), np.array([phash_bytes(plain)], np.uint64))[0]) <= 4
    a, b = (decode_image_file(source.dir / name, 32, 1).float() for name in ("sideways.jpg", "upright.jpg"))
    assert float((a - b).abs().mean()) < 4.0  # the same picture to the model, within JPEG noise
    assert Image.open(io.BytesIO(img.thumbnail_png(sideways))).size == (32, 64)


def sixteen_bit_png(values: np.ndarray[Any, Any]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(values.astype(np.uint16)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_16_bit_images_keep_their_picture_in_hashes_previews_and_training() -> None:
    ramp = np.linspace(0, 65535, 64)
    across = sixteen_bit_png(np.tile(ramp, (64, 1)))  # dark left, bright right
    assert Image.open(io.BytesIO(across)).mode.startswith("I")
    # Two unrelated 16-bit pictures (8x8 random blocks, full 16-bit range) are not near duplicates.
    a, b = (np.kron(np.random.default_rng(s).integers(0, 65536, (8, 8)), np.ones((8, 8))) for s in (1, 2))
    distance = hamming(np.array([phash_bytes(sixteen_bit_png(a))], np.uint64), np.array([phash_bytes(sixteen_bit_png(b))], np.uint64))
    assert int(distance[0]) > 16
    preview = np.asarray(Image.open(io.BytesIO(img.thumbnail_png(across))).convert("L"))
    assert preview[:, 0].max() < 20 and preview[:, -1].min() > 235  # a ramp, not white
    shown = np.asarray(img.decode(across))
    assert shown.dtype == np.uint8 and abs(int(shown[0, 32]) - round(ramp[32] / 257)) <= 1


def test_a_palette_image_with_transparency_decodes_through_its_palette() -> None:
    picture = Image.new("P", (8, 8), 1)
    picture.putpalette([0, 0, 0, 200, 30, 30] + [0] * 762)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", transparency=0)
    assert img.decode(buffer.getvalue()).getpixel((0, 0)) == (200, 30, 30)


def frames_file(fmt: str, n: int = 3) -> bytes:
    frames = [Image.new("RGB", (16, 16), (60 * k, 0, 255 - 60 * k)) for k in range(n)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format=fmt, save_all=True, append_images=frames[1:], duration=100)
    return buffer.getvalue()


@pytest.mark.parametrize(("name", "fmt"), [("anim.gif", "GIF"), ("anim.webp", "WEBP"), ("pages.tif", "TIFF")])
def test_a_file_of_several_frames_is_refused_with_a_reason_unless_first_frame_is_chosen(
    store: LabelStore, source: Source, name: str, fmt: str
) -> None:
    data = frames_file(fmt)
    source.write(name, data)
    report = source.ingest(store)
    assert outcome_of(report, name) == (QUARANTINED, MULTI_FRAME)
    assert "3 frames" in (report.of(QUARANTINED)[0].detail or "") and "multi_frame=first_frame" in (
        report.of(QUARANTINED)[0].detail or ""
    )
    assert items(store) == [] and files_under(source.quarantine) == []  # refused by a setting: no item, no copy
    # The explicit setting ingests it on the next run; its first frame is the picture, for training too.
    assert outcome_of(source.ingest(store, multi_frame="first_frame"), name) == (NEW, None)
    tensor = decode_image_file(source.dir / name, 16, 3)
    assert tensor[:, 8, 8].tolist() == pytest.approx([0, 0, 255], abs=3)


# --- finding 6: a file that changes while it is read ----------------------------------------------------


def bmp(value: int, side: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (side, side), value).save(buffer, format="BMP")
    return buffer.getvalue()


def when_read(monkeypatch: pytest.MonkeyPatch, path: Path, writer: Callable[[], None]) -> None:
    """Run ``writer`` (a real write to ``path`` on disk) right after the scan's first read of that file."""
    real_read, target, done = os.read, str(path.resolve()), list[bool]()

    def read(fd: int, n: int) -> bytes:
        chunk = real_read(fd, n)
        if not done and os.readlink(f"/proc/self/fd/{fd}") == target:
            done.append(True)
            writer()
        return chunk

    monkeypatch.setattr(os, "read", read)


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def test_a_file_rewritten_in_place_while_the_scan_reads_it_is_not_stored_and_is_read_again_next_scan(
    store: LabelStore, source: Source, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A smaller picture written over a larger one, not yet truncated: the bytes decode (the old file's tail
    # is ignored) and were stored as an active item. The writer's truncate lands while the scan reads.
    final = bmp(200, 24)
    path = source.write("x.bmp", final + bmp(10, 40)[len(final) :])
    when_read(monkeypatch, path, lambda: os.truncate(path, len(final)))
    report = source.ingest(store)
    assert outcome_of(report, "x.bmp") == (QUARANTINED, CHANGED_WHILE_READ)
    assert "next scan" in (report.of(QUARANTINED)[0].detail or "")
    assert items(store) == [] and files_under(source.raw) == [] and files_under(source.quarantine) == []
    monkeypatch.undo()
    assert outcome_of(source.ingest(store), "x.bmp") == (NEW, None)
    assert [(row["item_id"], row["status"]) for row in items(store)] == [(img.sha256_hex(final), "active")]


def test_a_file_that_fails_to_decode_only_because_it_was_still_being_written_is_read_again(
    store: LabelStore, source: Source, monkeypatch: pytest.MonkeyPatch
) -> None:
    final = png_bytes(90, size=(40, 40))
    path = source.write("late.png", final[:-30])  # the writer's last bytes arrive while the scan decodes
    real_verify = img.verify_image

    def verify(data: bytes, **kwargs: object) -> object:
        append(path, final[-30:])
        return real_verify(data, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(img, "verify_image", verify)
    report = source.ingest(store)
    assert outcome_of(report, "late.png") == (QUARANTINED, CHANGED_WHILE_READ)
    assert items(store) == [] and files_under(source.quarantine) == []  # no "corrupt" item, no copy
    monkeypatch.undo()
    assert outcome_of(source.ingest(store), "late.png") == (NEW, None)


# --- finding 10: a full raw store -----------------------------------------------------------------------

FULL_STORE_RUN = r"""
import json, sys
from pathlib import Path
from labeling_assets.core.store.schema import LabelStore
from tests.faults.test_ingest_faults import failure_line, materialize
root = Path(sys.argv[1])
store = LabelStore(f"sqlite:///{root / 'labels.db'}")
store.migrate()
result = materialize(store, root / "data", uri=str(root / "photos"))
print(json.dumps({"success": result.success, "line": failure_line(result) if not result.success else None}))
"""


def can_mount_in_a_user_namespace() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-Urm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.slow  # a fresh Python in a subprocess
def test_a_full_raw_store_fails_the_run_with_one_line_naming_the_store(tmp_path: Path) -> None:
    if not can_mount_in_a_user_namespace():
        pytest.skip("needs unshare -Urm and a tmpfs mount (unprivileged user namespaces)")
    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(12):  # 12 x 48 KiB of incompressible pixels into a 256 KiB raw store
        (photos / f"p{k:02d}.png").write_bytes(noise_png(k, side=128))
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run = subprocess.run(
        ["unshare", "-Urm", "sh", "-c", 'mount -t tmpfs -o size=256k tmpfs "$0" && exec "$1" -c "$2" "$3"',
         str(raw), sys.executable, FULL_STORE_RUN, str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["success"] is False
    line = result["line"]
    assert line.startswith(f"raw store {raw} is full (No space left on device)"), line
    assert "\n" not in line and "then rerun" in line
