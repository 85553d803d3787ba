"""Text edit datasets: JSONL (one object per item) and a Hugging Face ``DatasetDict`` with an ``Audio`` feature.

JSONL, ``dataset.jsonl``: ``item_id, machine, text`` (the corrected text: the version's consensus),
``source``, ``audio`` (the stored copy's path, or null), ``split``, ``wer_before`` (the machine output's WER
against the corrected text). The ``DatasetDict`` (``hf_dataset/``, ``save_to_disk``) has ``train``,
``validation`` and ``test`` (the version's ``val`` named as the Hub names it; a split without items is left out)
with ``id, machine, text, source, wer_before`` and ``audio``, an ``Audio()`` column holding each file's bytes
(None for a translation item).
The column is written as the bytes-and-path struct the feature stores and then cast to ``Audio()``, so writing
needs no decoder (``datasets`` 5 would encode each value through ``torchcodec``); reading decodes through
``torchcodec`` (pinned), which loads FFmpeg's shared libraries (Debian's, installed by scripts/test): a row's
``audio`` reads back as a decoder (``get_all_samples()``), or as its bytes with ``cast_column("audio",
Audio(decode=False))`` where FFmpeg is missing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from labeling_assets.core.speech.text_metrics import wer
from labeling_assets.core.tasks.text_edits.answers import normal, words

EXPORT_FORMATS = ("jsonl", "hf_datasets")
HF_SPLITS = {"train": "train", "val": "validation", "test": "test"}


@dataclass(frozen=True)
class EditRecord:
    item_id: str
    machine: str
    text: str
    source: str | None
    audio: str | None  # the stored audio copy's path
    split: str

    @property
    def wer_before(self) -> float:
        return wer([words(self.text)], [words(self.machine)])


def to_jsonl(records: Sequence[EditRecord]) -> str:
    return "".join(json.dumps({"item_id": r.item_id, "machine": r.machine, "text": normal(r.text), "source": r.source,
                               "audio": r.audio, "split": r.split, "wer_before": round(r.wer_before, 6)},
                              ensure_ascii=False) + "\n" for r in records)  # fmt: skip


def write_hf_edits(records: Sequence[EditRecord], path: Path) -> None:
    from datasets import Audio, Dataset, DatasetDict, Features, Value

    features = Features({"id": Value("string"), "machine": Value("string"), "text": Value("string"),
                         "source": Value("string"), "wer_before": Value("float32"),
                         "audio": {"bytes": Value("binary"), "path": Value("string")}})  # fmt: skip
    splits = {}
    for split, name in HF_SPLITS.items():
        rows = [r for r in records if r.split == split]
        if not rows:  # datasets 5.2.0 saves an empty split without a data file, and load_from_disk then fails on it
            continue
        audio = [{"bytes": Path(r.audio).read_bytes(), "path": Path(r.audio).name} if r.audio else None for r in rows]
        splits[name] = Dataset.from_dict({
            "id": [r.item_id for r in rows], "machine": [r.machine for r in rows],
            "text": [normal(r.text) for r in rows], "source": [r.source for r in rows],
            "wer_before": [r.wer_before for r in rows], "audio": audio}, features=features).cast_column("audio", Audio())  # fmt: skip
    DatasetDict(splits).save_to_disk(str(path))


def export_edits(records: Sequence[EditRecord], folder: Path, formats: Sequence[str] = EXPORT_FORMATS) -> dict[str, Path]:
    """Every format asked for under ``folder``; format -> what was written."""
    bad = sorted(set(formats) - set(EXPORT_FORMATS))
    if bad:
        raise ValueError(f"unknown text edit export formats {bad}; choose from {', '.join(EXPORT_FORMATS)}")
    folder.mkdir(parents=True, exist_ok=True)
    ordered = sorted(records, key=lambda r: (r.split, r.item_id))
    paths: dict[str, Path] = {}
    if "jsonl" in formats:
        paths["jsonl"] = folder / "dataset.jsonl"
        paths["jsonl"].write_text(to_jsonl(ordered), encoding="utf-8")
    if "hf_datasets" in formats:
        paths["hf_datasets"] = folder / "hf_dataset"
        write_hf_edits(ordered, paths["hf_datasets"])
    return paths
