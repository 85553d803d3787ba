"""Audio segment datasets exported for the tools that read them: JSONL and RTTM, one file of each per split.

- ``<split>.jsonl``: one JSON object a line per item, ``{"item_id", "uri", "duration", "regions": [{"start",
  "end", "label"}], "split"}`` (``uri`` the stored copy of the audio; ``duration`` its seconds, None where the audio
  cannot be read; ``regions`` ``[]`` for an item without any).
- ``<split>.rttm``: NIST RTTM (``core/speech/rttm.py``), one ``SPEAKER`` line per region, the item id as the file
  id and the label in the speaker field, so pyannote and the diarization tools read a version's regions as
  "speakers" per recording. An item without regions has no line (RTTM cannot say "nothing here"): the JSONL lists
  every item.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from labeling_assets.core.speech.regions import Region
from labeling_assets.core.speech.rttm import write_rttm

EXPORT_FORMATS = ("jsonl", "rttm")


@dataclass(frozen=True)
class SegmentRecord:
    """One item of a dataset version: its audio, its regions (``()``: none) and its split."""

    item_id: str
    uri: str
    duration: float | None
    regions: tuple[Region, ...]
    split: str


@dataclass
class SegmentExport:
    """What an export wrote: the files per format (names under the export folder)."""

    files: dict[str, list[str]] = field(default_factory=dict)


def to_jsonl(records: Sequence[SegmentRecord]) -> str:
    """One JSON object a line (module docstring), in the order given."""
    return "".join(
        json.dumps({"item_id": r.item_id, "uri": r.uri, "duration": r.duration,
                    "regions": [{"start": x.start, "end": x.end, "label": x.label} for x in r.regions],
                    "split": r.split}, ensure_ascii=False) + "\n"
        for r in records
    )  # fmt: skip


def export_segments(
    records: Sequence[SegmentRecord], classes: Sequence[str], folder: Path, formats: Sequence[str] = EXPORT_FORMATS
) -> SegmentExport:
    """Every format asked for under ``folder``, one file per split; a region of a label not in ``classes`` or an
    unknown format is refused."""
    unknown = sorted({x.label for r in records for x in r.regions} - {str(c) for c in classes})
    if unknown:
        raise ValueError(f"regions of labels not in the project: {unknown}")
    bad = sorted(set(formats) - set(EXPORT_FORMATS))
    if bad:
        raise ValueError(f"unknown audio segment export formats {bad}; choose from {', '.join(EXPORT_FORMATS)}")
    folder.mkdir(parents=True, exist_ok=True)
    splits: dict[str, list[SegmentRecord]] = {}
    for record in sorted(records, key=lambda r: (r.split, r.item_id)):
        splits.setdefault(record.split, []).append(record)
    written = SegmentExport()
    for split, rows in splits.items():
        if "jsonl" in formats:
            (folder / f"{split}.jsonl").write_text(to_jsonl(rows), encoding="utf-8")
            written.files.setdefault("jsonl", []).append(f"{split}.jsonl")
        if "rttm" in formats:
            (folder / f"{split}.rttm").write_text(write_rttm({r.item_id: r.regions for r in rows}), encoding="utf-8")
            written.files.setdefault("rttm", []).append(f"{split}.rttm")
    return written
