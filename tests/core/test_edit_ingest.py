"""Ingest of a text_edits project: each row of a sidecar JSONL (a machine transcript with its audio, or a source
sentence with its machine translation) is an item; its audio is ingested as an item of its own (status media,
never queued); a bad row is refused with its reason and nothing else is lost; re-ingest changes nothing.

Runs against a real SQLite store and a real PostgreSQL store (the ``store`` fixture).
"""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from labeling_assets.core.ingest.audio import AUDIO_TOO_LONG, read_audio
from labeling_assets.core.ingest.edits import (
    AUDIO_MISSING,
    AUDIO_QUARANTINED,
    BAD_FIELD,
    NO_MACHINE,
    read_edit_item,
)
from labeling_assets.core.ingest.scan import MISSING, NEW, QUARANTINED, UNCHANGED, IngestReport
from labeling_assets.core.ingest.summary import preview_markdown
from labeling_assets.core.ingest.text import DUPLICATE_ID, NO_ID, NOT_JSON
from labeling_assets.core.store.schema import LabelStore, items_table
from tests.core.test_audio_ingest import AudioSource, encode, outcomes, tone


@pytest.fixture
def source(tmp_path: Path) -> AudioSource:
    src = AudioSource(tmp_path)
    src.write("rec1/utt1.wav", encode(tone(1.0), "WAV", "PCM_16"))
    src.write("rec1/utt2.flac", encode(tone(1.0, hz=300), "FLAC", "PCM_16"))
    src.write("long.wav", encode(tone(3.0), "WAV", "PCM_16"))
    return src


def write_rows(source: AudioSource, rows: list[object], name: str = "rows.jsonl") -> None:
    source.write(name, "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode())


def ingest(store: LabelStore, source: AudioSource) -> IngestReport:
    return source.ingest(store, max_seconds=2.5, task_type="text_edits")


def rows_by_status(store: LabelStore) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in store.fetch(sa.select(items_table).order_by(items_table.c.source_path)):
        out.setdefault(r["status"], []).append(r)
    return out


GOOD = [
    {"id": "u1", "machine": "xin chao the world", "audio": "rec1/utt1.wav", "group": "speaker-7"},
    {"id": 2, "machine": "hello", "audio": "utt2.flac"},  # relative to the sidecar's folder (rec1/)
    {"id": "t1", "machine": "I eat rice", "source": "Tôi ăn cơm"},  # a translation: no audio
]


def test_rows_become_items_that_show_their_audio_and_source(store: LabelStore, source: AudioSource) -> None:
    write_rows(source, GOOD, "rec1/rows.jsonl")

    report = ingest(store, source)

    got = outcomes(report)
    assert {k: v for k, v in got.items() if "#" in k} == {
        "rec1/rows.jsonl#u1": (NEW, None), "rec1/rows.jsonl#2": (NEW, None), "rec1/rows.jsonl#t1": (NEW, None)}
    assert got["rec1/utt1.wav"] == (NEW, None) and got["long.wav"] == (QUARANTINED, AUDIO_TOO_LONG)
    by_status = rows_by_status(store)
    media = {Path(r["source_path"]).name: r for r in by_status["media"]}  # the audio: stored, measured, never queued
    assert set(media) == {"utt1.wav", "utt2.flac"} and media["utt1.wav"]["duration_s"] == 1.0
    edits = {read_edit_item(r["uri"]).source_id: (r, read_edit_item(r["uri"])) for r in by_status["active"]}
    assert set(edits) == {"u1", "2", "t1"}
    row, item = edits["u1"]
    assert (row["format"], row["group_key"], row["uri"].endswith(".edit.json")) == ("EDIT", "speaker-7", True)
    assert (item.item_id, item.machine, item.source, item.audio_item_id) == (
        row["item_id"], "xin chao the world", None, media["utt1.wav"]["item_id"])
    samples, rate = read_audio(str(item.audio_uri))
    assert rate == 16_000 and len(samples) == 16_000 and samples.dtype == np.float32
    assert edits["2"][0]["group_key"] == "utt2"  # no group: the audio file's stem
    assert (edits["t1"][1].source, edits["t1"][1].audio_uri, edits["t1"][0]["group_key"]) == ("Tôi ăn cơm", None, None)
    preview = preview_markdown(store, report.new_item_ids).splitlines()  # the run's preview: machine output
    assert sorted(preview) == ["- I eat rice", "- hello", "- xin chao the world"]


def test_bad_rows_are_refused_with_their_reason_and_the_good_rows_stay(sqlite_store: LabelStore, source: AudioSource) -> None:
    write_rows(source, [
        GOOD[0],
        "{not json",
        {"machine": "no id"},
        {"id": "u1", "machine": "again"},
        {"id": "m", "text": "no machine field"},
        {"id": "s", "machine": "x", "source": 5},
        {"id": "gone", "machine": "x", "audio": "rec1/nowhere.wav"},
        {"id": "out", "machine": "x", "audio": "../outside.wav"},
        {"id": "long", "machine": "x", "audio": "long.wav"},
    ])  # fmt: skip

    report = ingest(sqlite_store, source)

    rows = {k: v for k, v in outcomes(report).items() if k.startswith("rows.jsonl")}
    assert rows == {
        "rows.jsonl#u1": (NEW, None), "rows.jsonl@2": (QUARANTINED, NOT_JSON), "rows.jsonl@3": (QUARANTINED, NO_ID),
        "rows.jsonl@4": (QUARANTINED, DUPLICATE_ID), "rows.jsonl#m": (QUARANTINED, NO_MACHINE),
        "rows.jsonl#s": (QUARANTINED, BAD_FIELD), "rows.jsonl#gone": (QUARANTINED, AUDIO_MISSING),
        "rows.jsonl#out": (QUARANTINED, AUDIO_MISSING), "rows.jsonl#long": (QUARANTINED, AUDIO_QUARANTINED),
    }  # fmt: skip
    detail = {o.rel_path: o.detail or "" for o in report.outcomes}
    assert "audio_too_long" in detail["rows.jsonl#long"] and "outside the source" in detail["rows.jsonl#out"]
    assert len(rows_by_status(sqlite_store)["active"]) == 1


def test_re_ingest_is_idempotent_and_a_row_whose_audio_goes_is_retired(store: LabelStore, source: AudioSource) -> None:
    write_rows(source, GOOD, "rec1/rows.jsonl")
    first = ingest(store, source)
    n_items = len(store.fetch(sa.select(items_table)))
    again = ingest(store, source)
    assert {o.outcome for o in again.outcomes if o.outcome != QUARANTINED} == {UNCHANGED}
    assert len(store.fetch(sa.select(items_table))) == n_items == 6  # 3 rows, 2 audio files, 1 quarantined
    assert sum(o.outcome == NEW for o in first.outcomes) == 5 and not again.new_item_ids

    (source.dir / "rec1/utt1.wav").unlink()
    third = outcomes(ingest(store, source))

    assert third["rec1/utt1.wav"] == (MISSING, None)
    assert third["rec1/rows.jsonl#u1"] == (QUARANTINED, AUDIO_MISSING)
    u1 = next(o.item_id for o in first.outcomes if o.rel_path == "rec1/rows.jsonl#u1")
    [status] = store.fetch(sa.select(items_table.c.status).where(items_table.c.item_id == u1))
    assert status["status"] == "missing"  # retired, never deleted: its answers stay


def test_an_edit_items_id_is_its_content_wherever_the_data_folder_lives(tmp_path: Path) -> None:
    # the same sidecar and audio under two data folders are the same items (the id once hashed the audio copy's
    # absolute path: a moved or restored data folder, or another clone's demo, got other ids and another order)
    ids = []
    for where in ("one", "elsewhere/two"):
        (tmp_path / where).mkdir(parents=True)
        src = AudioSource(tmp_path / where)
        src.write("rec1/utt1.wav", encode(tone(1.0), "WAV", "PCM_16"))
        write_rows(src, [GOOD[0], GOOD[2]])  # a transcript with its audio, a translation
        store = LabelStore(f"sqlite:///{tmp_path / where / 'labels.db'}")
        store.migrate()
        ingest(store, src)
        active = store.fetch(sa.select(items_table.c.item_id, items_table.c.uri).where(items_table.c.status == "active"))
        ids.append(sorted(r["item_id"] for r in active))
        with_audio = [read_edit_item(r["uri"]) for r in active if read_edit_item(r["uri"]).audio_item_id]
        assert with_audio and all(read_audio(str(i.audio_uri))[1] == 16_000 for i in with_audio)  # still found
        store.dispose()
    assert ids[0] == ids[1] and len(ids[0]) == 2
