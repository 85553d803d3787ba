"""The speech demo's source folders (``core.speech.demo_source``): what each project's ingest reads (WAV files, the
sidecar of machine output, a hidden gold file) agrees with the truth kept apart, and the files are the same bytes
each time."""

import csv
import json
import shutil
from pathlib import Path

import pytest

from labeling_assets.core.speech.demo_source import (
    AUDIO_DIR,
    GOLD_FILE,
    SIDECAR,
    TRANSCRIPT,
    TRANSLATION,
    make_demo,
    read_truth,
    write_edit_source,
    write_segment_source,
    write_truth,
)
from labeling_assets.core.speech.synth import read_wav

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (scripts/test installs it)")


def _gold(folder: Path) -> dict[str, str]:
    with open(folder / GOLD_FILE, newline="") as fh:
        return {row["filename"]: row["label"] for row in csv.DictReader(fh)}


def test_the_source_folders_hold_the_audio_sidecar_and_gold_that_the_truth_describes(tmp_path: Path) -> None:
    utterances, wavs = make_demo(12, seed=3, cache_dir=tmp_path / "cache")
    segments, edits, truth_file = tmp_path / "segments", tmp_path / "edits", tmp_path / "truth.jsonl"
    write_segment_source(segments, utterances, wavs, gold_every=5)
    write_edit_source(edits, utterances, wavs, gold_every=5)
    write_truth(truth_file, utterances)
    truth = read_truth(truth_file)
    assert truth == utterances  # the truth reads back as written (regions at 3 decimals)
    assert truth_file.parent not in (segments, edits)  # the pipeline's folders hold no truth but the hidden gold

    # Segments: one WAV per utterance, its length the truth's duration, every region inside it.
    assert sorted(p.name for p in segments.iterdir()) == sorted([u.file for u in utterances] + [GOLD_FILE])
    for u in truth:
        audio, rate = read_wav(segments / u.file)
        assert audio.size / rate == pytest.approx(u.duration, abs=1e-3)
        assert all(0 <= r.start < r.end <= u.duration for r in u.regions) and {r.label for r in u.regions} <= {"en", "vi", "noise"}
        assert (edits / AUDIO_DIR / u.file).read_bytes() == (segments / u.file).read_bytes()
    assert any(u.regions[0].label != u.regions[-1].label for u in truth)  # code-switched
    # Gold: every 5th utterance's regions, as the stored answer's JSON list.
    assert _gold(segments) == {u.file: json.dumps([{"start": r.start, "end": r.end, "label": r.label} for r in u.regions])
                               for u in truth[::5]}  # fmt: skip

    # Edits: a transcript row with its audio, a translation row with its source sentence, grouped by the utterance.
    rows = [json.loads(line) for line in (edits / SIDECAR).read_text().splitlines()]
    assert len(rows) == 2 * len(truth)
    for u, transcript, translation in zip(truth, rows[::2], rows[1::2], strict=True):
        assert transcript == {"id": f"{u.id}_{TRANSCRIPT}", "machine": u.machine_transcript,
                              "audio": f"{AUDIO_DIR}/{u.file}", "group": u.id}  # fmt: skip
        assert translation == {"id": f"{u.id}_{TRANSLATION}", "machine": u.machine_translation,
                               "source": u.transcript, "group": u.id}  # fmt: skip
    machine = [(u.machine_transcript, u.transcript) for u in truth] + [(u.machine_translation, u.translation) for u in truth]
    assert sum(m != t for m, t in machine) >= len(machine) // 2  # the machine output has errors to correct
    assert _gold(edits) == {f"{SIDECAR}#{r['id']}": (next(u for u in truth if u.id == r["group"]).transcript if
                            r["id"].endswith(TRANSCRIPT) else next(u for u in truth if u.id == r["group"]).translation)
                            for r in rows[::5]}  # fmt: skip

    # The same seed writes the same bytes, and an unchanged file is not rewritten (the ingest's fingerprint stays).
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file() and "cache" not in p.parts}
    again, again_wavs = make_demo(12, seed=3, cache_dir=tmp_path / "cache")
    write_segment_source(segments, again, again_wavs, gold_every=5)
    write_edit_source(edits, again, again_wavs, gold_every=5)
    write_truth(truth_file, again)
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in before} == before
