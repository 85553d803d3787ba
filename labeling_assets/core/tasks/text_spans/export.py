"""Span datasets exported for the tools that train on them: JSONL, CSV and Parquet tables, CoNLL (IOB2), spaCy
``DocBin``, Hugging Face.

One file (or dataset) per split. The CSV and Parquet tables are long, as pandas reads entities: one row per span
(``item_id, split, start, end, label, span_text``), and one row with empty ``start``, ``end`` and ``label`` for an
item without an entity, so every item of the version is there. Tokens are ours (:func:`~.spans.tokenize`) in CoNLL and the Hugging Face
dataset, where a tag belongs to a token; the spaCy ``Doc`` is made by ``spacy.blank(language)``'s tokenizer, so
that ``doc.text`` is the stored text exactly, and each span becomes an entity by its character offsets. A span
that does not fall on that tokenizer's token boundaries (``Dr`` of ``Dr.``, which spaCy keeps whole) is widened to
the tokens it touches, and counted. spaCy and ``datasets`` are imported only when their export runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from labeling_assets.core.tasks.text_spans.spans import Span, bio_tags, flat_spans, tag_names, tokenize

EXPORT_FORMATS = ("jsonl", "csv", "parquet", "conll", "spacy", "hf_datasets")
TABLE_COLUMNS = ("item_id", "split", "start", "end", "label", "span_text")
DOC_DELIMITER = "-DOCSTART- -X- O O"  # CoNLL-2003's document line: one document per item


@dataclass(frozen=True)
class SpanRecord:
    """One item of a dataset version: its text, its spans (``()``: no entity) and its split."""

    item_id: str
    text: str
    spans: tuple[Span, ...]
    split: str


@dataclass
class ExportReport:
    """What an export wrote: files per format, the spans spaCy's tokens made wider, and the overlapping spans left
    out of the formats that cannot hold them (CoNLL's and ``ner_tags``' BIO tags, spaCy's ``doc.ents``)."""

    files: dict[str, list[str]] = field(default_factory=dict)
    widened: int = 0
    flattened: int = 0

    def notes(self) -> list[str]:
        """One line per adaptation a reader should know of."""
        if not self.flattened:
            return []
        return [f"{self.flattened} spans overlap an earlier or longer one: left out of conll, spaCy's doc.ents and "
                "hf_datasets' ner_tags (BIO tags and ents cannot overlap); kept in jsonl, csv, parquet, "
                "doc.spans['sc'] and hf_datasets' span columns"]  # fmt: skip


def _by_split(records: Sequence[SpanRecord]) -> dict[str, list[SpanRecord]]:
    splits: dict[str, list[SpanRecord]] = {}
    for record in sorted(records, key=lambda r: (r.split, r.item_id)):
        splits.setdefault(record.split, []).append(record)
    return splits


def to_jsonl(records: Sequence[SpanRecord]) -> str:
    """One JSON object a line: id, text, spans as ``{start, end, label}``."""
    return "".join(
        json.dumps({"id": r.item_id, "text": r.text,
                    "spans": [{"start": s.start, "end": s.end, "label": s.label} for s in r.spans]},
                   ensure_ascii=False) + "\n"
        for r in records
    )  # fmt: skip


def span_table(records: Sequence[SpanRecord]) -> pd.DataFrame:
    """One row per span (:data:`TABLE_COLUMNS`, offsets as nullable integers), one with ``<NA>`` offsets and
    label for an item without a span."""
    rows: list[tuple[object, ...]] = []
    for r in records:
        rows += [(r.item_id, r.split, s.start, s.end, s.label, r.text[s.start : s.end]) for s in r.spans] or [
            (r.item_id, r.split, None, None, None, None)]  # fmt: skip
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    return table.astype({"start": "Int64", "end": "Int64", "label": "string", "span_text": "string"})


def to_conll(records: Sequence[SpanRecord]) -> str:
    """CoNLL-2003 style: a document line per item (in the order given), then ``token TAG`` lines. An item without
    a token cannot be written and is left out (ingest refuses empty texts)."""
    blocks = []
    for record in records:
        tokens = tokenize(record.text)
        if tokens:
            tags = bio_tags(flat_spans(record.spans)[0], tokens)  # BIO cannot overlap
            lines = [f"{record.text[s:e]} {tag}" for (s, e), tag in zip(tokens, tags, strict=True)]
            blocks.append(f"{DOC_DELIMITER}\n\n" + "\n".join(lines) + "\n")
    return "\n".join(blocks)


def write_docbin(records: Sequence[SpanRecord], path: Path, language: str = "en") -> int:
    """A ``.spacy`` file of ``records`` (each doc's ``user_data["item_id"]`` is its id); returns how many spans
    were widened to spaCy's tokens. ``doc.ents`` cannot overlap: they are :func:`~.spans.flat_spans` of the spans,
    and ``doc.spans["sc"]`` (spaCy's default span group, what ``spancat`` reads) holds every span."""
    import spacy
    from spacy.tokens import DocBin

    nlp = spacy.blank(language)
    docs = DocBin(store_user_data=True)
    widened = 0
    for record in records:
        doc = nlp.make_doc(record.text)
        every = {}
        for span in record.spans:
            ent = doc.char_span(span.start, span.end, label=span.label, alignment_mode="strict")
            if ent is None:
                ent = doc.char_span(span.start, span.end, label=span.label, alignment_mode="expand")
                widened += 1
            if ent is not None:
                every[span] = ent
        flat = set(flat_spans(record.spans)[0])
        doc.set_ents([ent for span, ent in every.items() if span in flat])
        doc.spans["sc"] = list(every.values())
        doc.user_data["item_id"] = record.item_id
        docs.add(doc)
    path.parent.mkdir(parents=True, exist_ok=True)
    docs.to_disk(path)
    return widened


def write_hf_dataset(records: Sequence[SpanRecord], types: Sequence[str], path: Path) -> None:
    """A Hugging Face ``DatasetDict`` (one dataset per split) saved with ``save_to_disk``: ``id``, ``text``,
    ``tokens`` and ``ner_tags`` (``Sequence(ClassLabel)`` over the IOB2 tags), and the spans as character offsets
    with a ``ClassLabel`` type each (``span_start``, ``span_end``, ``span_label``)."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
    from datasets import Sequence as HfSequence

    tags = tag_names(types)
    features = Features({
        "id": Value("string"), "text": Value("string"),
        "tokens": HfSequence(Value("string")), "ner_tags": HfSequence(ClassLabel(names=tags)),
        "span_start": HfSequence(Value("int32")), "span_end": HfSequence(Value("int32")),
        "span_label": HfSequence(ClassLabel(names=list(types))),
    })  # fmt: skip
    tag_index = {t: i for i, t in enumerate(tags)}
    type_index = {t: i for i, t in enumerate(types)}
    splits = {}
    for split, rows in _by_split(records).items():
        columns: dict[str, list[object]] = {name: [] for name in features}
        for r in rows:
            tokens = tokenize(r.text)
            columns["id"].append(r.item_id)
            columns["text"].append(r.text)
            columns["tokens"].append([r.text[s:e] for s, e in tokens])
            columns["ner_tags"].append([tag_index[t] for t in bio_tags(flat_spans(r.spans)[0], tokens)])
            columns["span_start"].append([s.start for s in r.spans])
            columns["span_end"].append([s.end for s in r.spans])
            columns["span_label"].append([type_index[s.label] for s in r.spans])
        splits[split] = Dataset.from_dict(columns, features=features)
    DatasetDict(splits).save_to_disk(str(path))


def export_spans(records: Sequence[SpanRecord], types: Sequence[str], folder: Path,
                 formats: Sequence[str] = EXPORT_FORMATS) -> ExportReport:  # fmt: skip
    """Every format asked for under ``folder``: ``<split>.jsonl``, ``.csv``, ``.parquet``, ``.conll``, ``.spacy`` and the
    ``hf_dataset`` folder. A span of a type not in ``types`` is refused (the dataset's types are the project's)."""
    unknown = sorted({s.label for r in records for s in r.spans} - set(types))
    if unknown:
        raise ValueError(f"spans of types not in the project: {unknown}")
    bad = sorted(set(formats) - set(EXPORT_FORMATS))
    if bad:
        raise ValueError(f"unknown span export formats {bad}; choose from {', '.join(EXPORT_FORMATS)}")
    folder.mkdir(parents=True, exist_ok=True)
    report = ExportReport(flattened=sum(flat_spans(r.spans)[1] for r in records))
    tables: dict[str, Callable[[pd.DataFrame, Path], None]] = {
        "csv": lambda t, p: t.to_csv(p, index=False), "parquet": lambda t, p: t.to_parquet(p, index=False)}
    for split, rows in _by_split(records).items():
        for fmt, write in (("jsonl", to_jsonl), ("conll", to_conll)):
            if fmt in formats:
                (folder / f"{split}.{fmt}").write_text(write(rows), encoding="utf-8")
                report.files.setdefault(fmt, []).append(f"{split}.{fmt}")
        for fmt, write_table in tables.items():
            if fmt in formats:
                write_table(span_table(rows), folder / f"{split}.{fmt}")
                report.files.setdefault(fmt, []).append(f"{split}.{fmt}")
        if "spacy" in formats:
            report.widened += write_docbin(rows, folder / f"{split}.spacy")
            report.files.setdefault("spacy", []).append(f"{split}.spacy")
    if "hf_datasets" in formats:
        write_hf_dataset(records, types, folder / "hf_dataset")
        report.files["hf_datasets"] = ["hf_dataset"]
    return report
