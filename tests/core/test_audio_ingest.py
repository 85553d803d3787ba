"""Ingest of an audio project: WAV, FLAC, OGG and MP3 files become items by the hash of their bytes, measured
(duration, sample rate, channels, format) on the store; what cannot be heard is quarantined with its reason;
re-ingest changes nothing; read_audio gives every later stage float32 mono samples.

Runs against a real SQLite store and a real PostgreSQL store (the ``store`` fixture).
"""

import io
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
import sqlalchemy as sa

from labeling_assets.core.ingest.audio import (
    AUDIO_EMPTY,
    AUDIO_TOO_LONG,
    AUDIO_UNREADABLE,
    AudioOptions,
    read_audio,
    verify_audio,
)
from labeling_assets.core.ingest.scan import (
    CHANGED,
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
from labeling_assets.core.store.audio_schema import AUDIO_COLUMNS, m019_audio_items
from labeling_assets.core.store.schema import LabelStore, items_table

RATE = 16_000
# (file name, soundfile format, subtype, channels): the four containers Label Studio's player takes
FILES = [("a.wav", "WAV", "PCM_16", 1), ("b.flac", "FLAC", "PCM_16", 2), ("c.ogg", "OGG", "VORBIS", 1),
         ("d.mp3", "MP3", "MPEG_LAYER_III", 1)]  # fmt: skip


def tone(seconds: float, channels: int = 1, hz: float = 440.0, rate: int = RATE) -> npt.NDArray[np.float32]:
    t = np.arange(int(seconds * rate)) / rate
    wave = (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    return np.stack([wave] * channels, axis=1)


def encode(samples: npt.NDArray[np.float32], fmt: str, subtype: str, rate: int = RATE) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


class AudioSource:
    def __init__(self, root: Path) -> None:
        self.dir = root / "audio"
        self.dir.mkdir()
        self.raw = root / "raw"

    def write(self, name: str, data: bytes) -> Path:
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def ingest(self, store: LabelStore, max_seconds: float = 600.0, task_type: str = "audio_segments") -> IngestReport:
        options = IngestOptions(audio=AudioOptions(task_type=task_type, max_seconds=max_seconds))
        return ingest_source(store, str(self.dir), raw_dir=self.raw, quarantine_dir=self.dir.parent / "q", options=options)


@pytest.fixture
def source(tmp_path: Path) -> AudioSource:
    return AudioSource(tmp_path)


def outcomes(report: IngestReport) -> dict[str, tuple[str, str | None]]:
    return {o.rel_path: (o.outcome, o.reason) for o in report.outcomes}


def items(store: LabelStore) -> dict[str, dict[str, Any]]:
    return {r["source_path"].rsplit("/", 1)[-1]: r for r in store.fetch(sa.select(items_table))}


def test_wav_flac_ogg_and_mp3_become_items_measured_on_the_store(store: LabelStore, source: AudioSource) -> None:
    for name, fmt, subtype, channels in FILES:
        source.write(name, encode(tone(1.5, channels), fmt, subtype))
    source.write("notes.txt", b"not listed")  # an audio project lists audio files only

    report = source.ingest(store)

    assert outcomes(report) == {name: (NEW, None) for name, *_ in FILES}
    rows = items(store)
    for name, fmt, _, channels in FILES:
        row = rows[name]
        assert (row["format"], row["sample_rate"], row["channels"], row["status"]) == (fmt, RATE, channels, "active")
        assert row["duration_s"] == pytest.approx(1.5, abs=0.06)  # MP3 pads a frame or two
        assert Path(row["uri"]).suffix == Path(name).suffix  # the player goes by the extension
        samples, rate = read_audio(row["uri"])
        assert (samples.dtype == np.float32, samples.ndim, rate) == (True, 1, RATE)
        assert len(samples) == pytest.approx(1.5 * RATE, abs=0.06 * RATE)
        assert 0.2 < float(np.abs(samples).max()) < 0.4
    assert rows["a.wav"]["duration_s"] == 1.5  # exact for a lossless file
    assert f"- WAV 1.5 s `{rows['a.wav']['item_id'][:12]}`" in preview_markdown(store, report.new_item_ids)


def test_empty_garbage_truncated_and_too_long_files_are_quarantined_with_their_reason(
    store: LabelStore, source: AudioSource
) -> None:
    flac, wav = encode(tone(2.0), "FLAC", "PCM_16"), encode(tone(2.0), "WAV", "PCM_16")
    source.write("empty.wav", b"")
    source.write("no_frames.wav", encode(np.zeros((0, 1), np.float32), "WAV", "PCM_16"))
    source.write("garbage.mp3", b"\x00\x01 this is no audio at all " * 40)
    source.write("truncated.flac", flac[: len(flac) // 2])
    source.write("truncated.wav", wav[: len(wav) // 2])
    source.write("long.wav", encode(tone(3.0), "WAV", "PCM_16"))
    source.write("ok.flac", flac)

    report = source.ingest(store, max_seconds=2.5)

    assert outcomes(report) == {
        "empty.wav": (QUARANTINED, AUDIO_EMPTY), "no_frames.wav": (QUARANTINED, AUDIO_EMPTY),
        "garbage.mp3": (QUARANTINED, AUDIO_UNREADABLE), "truncated.flac": (QUARANTINED, AUDIO_UNREADABLE),
        "truncated.wav": (QUARANTINED, AUDIO_UNREADABLE),
        "long.wav": (QUARANTINED, AUDIO_TOO_LONG), "ok.flac": (NEW, None),
    }  # fmt: skip
    details = {o.rel_path: o.detail or "" for o in report.outcomes}
    assert "3.0 s, over the limit of 2.5 s" in details["long.wav"]
    assert details["truncated.wav"] == "truncated: its data chunk declares 64000 bytes, 31978 are there"
    assert details["truncated.flac"] == "soundfile cannot decode it: Error : flac decoder lost sync."
    assert "\n" not in details["garbage.mp3"] and "BytesIO" not in details["garbage.mp3"]
    rows = items(store)
    assert rows["long.wav"]["status"] == QUARANTINED and rows["ok.flac"]["duration_s"] == 2.0


def test_re_ingest_is_idempotent_and_an_edited_or_deleted_file_is_followed(store: LabelStore, source: AudioSource) -> None:
    source.write("a.wav", encode(tone(1.0), "WAV", "PCM_16"))
    source.write("b.ogg", encode(tone(1.0, hz=220), "OGG", "VORBIS"))
    first = source.ingest(store)
    again = source.ingest(store)
    assert outcomes(again) == {"a.wav": (UNCHANGED, None), "b.ogg": (UNCHANGED, None)}
    assert len(items(store)) == 2

    source.write("a.wav", encode(tone(2.0), "WAV", "PCM_16"))
    (source.dir / "b.ogg").unlink()
    third = source.ingest(store)

    assert outcomes(third) == {"a.wav": (CHANGED, None), "b.ogg": (MISSING, None)}
    by_id = {r["item_id"]: r for r in store.fetch(sa.select(items_table))}
    old_a, old_b = (o.item_id for o in sorted(first.outcomes, key=lambda o: o.rel_path))
    assert (by_id[old_a]["status"], by_id[old_b]["status"]) == ("superseded", "missing")
    assert by_id[third.outcomes[0].item_id]["duration_s"] == 2.0


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_speech_written_by_espeak_ng_is_an_item(sqlite_store: LabelStore, source: AudioSource) -> None:
    # --stdout cannot seek back: its header declares a placeholder size of 2 GiB, which is no truncation
    wav = subprocess.run(["espeak-ng", "-v", "vi", "--stdout", "xin chào"], capture_output=True, check=True).stdout
    source.write("vi.wav", wav)
    report = source.ingest(sqlite_store)
    assert outcomes(report) == {"vi.wav": (NEW, None)}
    row = items(sqlite_store)["vi.wav"]
    assert (row["format"], row["sample_rate"], row["channels"]) == ("WAV", 22050, 1) and row["duration_s"] > 0.3


def test_verify_audio_measures_without_a_store() -> None:
    info = verify_audio(encode(tone(0.5, 2, rate=8000), "WAV", "PCM_16", rate=8000))
    assert (info.duration_s, info.sample_rate, info.channels, info.format) == (0.5, 8000, 2, "WAV")  # type: ignore[union-attr]


def test_migration_19_adds_the_audio_columns_to_an_older_items_table(store: LabelStore) -> None:
    with store.begin() as conn:
        for name in AUDIO_COLUMNS:
            conn.exec_driver_sql(f"ALTER TABLE items DROP COLUMN {name}")
    with store.begin() as conn:
        m019_audio_items(conn)
        m019_audio_items(conn)  # twice: nothing to do the second time
    with store.engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("items")}
    assert set(AUDIO_COLUMNS) <= columns


def test_a_groups_csv_names_each_recording_s_group_so_splits_keep_it_whole(store: LabelStore, source: AudioSource) -> None:
    from labeling_assets.resources.image_source import ImageSourceResource

    for name in ("s1/a.wav", "s1/b.wav", "c.wav"):
        source.write(name, encode(tone(0.5, hz=200 + 100 * len(name) + ord(name[-5])), "WAV", "PCM_16"))
    source.write("groups.csv", b"filename,group\ns1/a.wav,speaker-1\ns1/b.wav,speaker-1\n")
    options = ImageSourceResource(uri=str(source.dir), group_key_regex=r"^(?P<group>[^/]+)/").ingest_options(
        str(source.dir), audio=AudioOptions())
    assert options.groups == {"s1/a.wav": "speaker-1", "s1/b.wav": "speaker-1"}

    ingest_source(store, str(source.dir), raw_dir=source.raw, quarantine_dir=source.dir.parent / "q", options=options)

    assert {name: row["group_key"] for name, row in items(store).items()} == {
        "a.wav": "speaker-1", "b.wav": "speaker-1", "c.wav": None}  # c.wav: neither the file nor the pattern
    source.write("groups.csv", b"file,speaker\n")
    with pytest.raises(SourceError, match="expected a CSV with columns 'filename,group'"):
        ImageSourceResource(uri=str(source.dir)).ingest_options(str(source.dir), audio=AudioOptions())


@pytest.mark.parametrize("task_type", ["audio_segments", "text_edits"])
def test_an_audio_project_s_settings_say_how_its_source_reads(task_type: str) -> None:
    from labeling_assets.core.label_sets import TASK_TYPES
    from labeling_assets.resources.project import ProjectSettings

    assert ProjectSettings(task_type="single_label").audio_options() is None
    if task_type not in TASK_TYPES:
        pytest.skip(f"{task_type} is not a registered task type yet")
    options = ProjectSettings.model_validate({"task_type": task_type, "max_audio_seconds": 30}).audio_options()
    assert options == AudioOptions(task_type=task_type, max_seconds=30.0)
    assert (".jsonl" in options.extensions) == (options.task_type == "text_edits") and ".mp3" in options.extensions
