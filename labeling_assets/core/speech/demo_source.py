"""The speech demo's source folders, written from espeak-ng utterances (``synth``) and machine output (``crowd``).

Two projects read them (``labeling-assets demo --task speech``):

- segments (``audio_segments``): ``<folder>/utt_0000.wav`` ... one code-switched utterance each, and
  ``gold.csv``: every ``gold_every``-th utterance's true regions in the kind's gold format (the stored answer's
  JSON list of ``{"start", "end", "label"}``).
- edits (``text_edits``): the same WAV files under ``<folder>/audio/``, and ``edits.jsonl``: per utterance a
  transcript row (its audio and the machine transcript) and a translation row (the true transcript as the source
  sentence and the machine's English translation), both grouped by the utterance, so a recording never spans two
  splits. The demo's machine (``make_demo(..., systematic=SYSTEMATIC)``) also makes the errors a real ASR or MT
  system repeats (``crowd.CONFUSIONS``: tone marks dropped on frequent Vietnamese words, English homophones, literal
  term translations), each with probability ``SYSTEMATIC``, drawn from a generator of their own, so the audio, the
  regions and the random part's draws are those of ``systematic=0``; ``gold.csv``: every ``gold_every``-th row's true text, named ``edits.jsonl#<id>``.

The truth (regions, transcript, translation, and the machine output made from them) goes to a JSONL file apart from
the folder the pipeline reads; only the simulated crowd and the summary read it. Everything is seeded, and a file
whose bytes are unchanged is not rewritten (the ingest's fingerprint of it stays).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from labeling_assets.core.speech.crowd import machine_output
from labeling_assets.core.speech.regions import Region
from labeling_assets.core.speech.synth import make_utterance, write_wav

SIDECAR = "edits.jsonl"
GOLD_FILE = "gold.csv"
AUDIO_DIR = "audio"  # the edits folder's WAV files
GOLD_EVERY = 10
TRANSCRIPT, TRANSLATION = "transcript", "translation"
SYSTEMATIC = 0.8  # the demo's chance of each fixed confusion (crowd.CONFUSIONS); make_demo's default stays 0


@dataclass(frozen=True)
class DemoUtterance:
    """One utterance's truth and machine output (``file``: the WAV's name)."""

    id: str
    file: str
    duration: float
    regions: tuple[Region, ...]
    transcript: str
    translation: str
    machine_transcript: str
    machine_translation: str

    def edit_id(self, which: str) -> str:
        return f"{self.id}_{which}"

    def truth_text(self, which: str) -> str:
        return self.transcript if which == TRANSCRIPT else self.translation

    def machine_text(self, which: str) -> str:
        return self.machine_transcript if which == TRANSCRIPT else self.machine_translation


def make_demo(
    n: int, seed: int = 0, cache_dir: Path | None = None, systematic: float = 0.0
) -> tuple[list[DemoUtterance], list[bytes]]:
    """``n`` utterances (their truth and machine output) and each one's WAV bytes, the same for the same seed;
    ``systematic``: the chance of each of the machine's fixed confusions (module docstring)."""
    rng = np.random.default_rng(seed)
    confusions = np.random.default_rng([seed, 35])  # apart from rng: the audio and the random errors stay
    out: list[DemoUtterance] = []
    wavs: list[bytes] = []
    for k in range(n):
        u = make_utterance(rng, cache_dir=cache_dir)
        machine_t, machine_x = (" ".join(machine_output(text.split(), rng, systematic=systematic, systematic_rng=confusions))
                                for text in (u.transcript, u.translation))  # fmt: skip
        name = f"utt_{k:04d}"
        regions = tuple(Region(round(r.start, 3), round(r.end, 3), r.label) for r in u.regions)  # as answers are stored
        out.append(DemoUtterance(name, f"{name}.wav", round(u.duration, 4), regions, u.transcript, u.translation,
                                 machine_t, machine_x))  # fmt: skip
        wavs.append(_wav_bytes(u.audio, u.sample_rate))
    return out, wavs


def _wav_bytes(audio: npt.NDArray[np.float32], sample_rate: int) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.wav"
        write_wav(path, audio, sample_rate)
        return path.read_bytes()


def regions_json(regions: Sequence[Region]) -> str:
    """Regions as the kind stores an answer (and reads a gold entry): sorted by start, 3 decimals."""
    return json.dumps([{"start": round(r.start, 3), "end": round(r.end, 3), "label": r.label}
                       for r in sorted(regions, key=lambda r: (r.start, r.end))])  # fmt: skip


def write_segment_source(folder: Path, utterances: Sequence[DemoUtterance], wavs: Sequence[bytes],
                         gold_every: int = GOLD_EVERY) -> None:  # fmt: skip
    """The segments project's folder: one WAV per utterance and ``gold.csv`` (module docstring)."""
    for u, data in zip(utterances, wavs, strict=True):
        _write(folder / u.file, data)
    rows = [(u.file, regions_json(u.regions)) for u in utterances[::gold_every]]
    _write(folder / GOLD_FILE, _csv(rows))  # last: its presence says the folder is complete


def edit_rows(utterances: Sequence[DemoUtterance]) -> list[dict[str, str]]:
    """The sidecar's rows: a transcript row and a translation row per utterance (module docstring)."""
    rows = []
    for u in utterances:
        rows.append({"id": u.edit_id(TRANSCRIPT), "machine": u.machine_transcript, "audio": f"{AUDIO_DIR}/{u.file}",
                     "group": u.id})  # fmt: skip
        rows.append({"id": u.edit_id(TRANSLATION), "machine": u.machine_translation, "source": u.transcript,
                     "group": u.id})  # fmt: skip
    return rows


def write_edit_source(folder: Path, utterances: Sequence[DemoUtterance], wavs: Sequence[bytes],
                      gold_every: int = GOLD_EVERY) -> None:  # fmt: skip
    """The edits project's folder: the WAV files under ``audio/``, ``edits.jsonl`` and ``gold.csv``."""
    for u, data in zip(utterances, wavs, strict=True):
        _write(folder / AUDIO_DIR / u.file, data)
    rows = edit_rows(utterances)
    _write(folder / SIDECAR, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode())
    truth = {u.edit_id(w): u.truth_text(w) for u in utterances for w in (TRANSCRIPT, TRANSLATION)}
    _write(folder / GOLD_FILE, _csv([(f"{SIDECAR}#{r['id']}", truth[r["id"]]) for r in rows[::gold_every]]))


def write_truth(path: Path, utterances: Sequence[DemoUtterance]) -> None:
    lines = [json.dumps({"id": u.id, "file": u.file, "duration": u.duration, "regions": json.loads(regions_json(u.regions)),
                         "transcript": u.transcript, "translation": u.translation,
                         "machine_transcript": u.machine_transcript, "machine_translation": u.machine_translation},
                        ensure_ascii=False) + "\n" for u in utterances]  # fmt: skip
    _write(path, "".join(lines).encode())


def read_truth(path: Path) -> list[DemoUtterance]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        regions = tuple(Region(float(r["start"]), float(r["end"]), str(r["label"])) for r in row["regions"])
        out.append(DemoUtterance(row["id"], row["file"], float(row["duration"]), regions, row["transcript"],
                                 row["translation"], row["machine_transcript"], row["machine_translation"]))  # fmt: skip
    return out


def _csv(rows: Sequence[tuple[str, str]]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(("filename", "label"))
    writer.writerows(rows)
    return text.getvalue().encode()


def _write(path: Path, data: bytes) -> None:
    if path.is_file() and path.read_bytes() == data:
        return  # unchanged: the ingest's fingerprint of the file stays
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
