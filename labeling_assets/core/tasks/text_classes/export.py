"""A text class dataset version's files: JSONL, CSV and Parquet tables of ``item_id, text, label, split``, a
Hugging Face ``DatasetDict`` (one dataset per split) with a typed label, and a spaCy ``DocBin`` per split
(``<split>.spacy``) whose docs carry the answer in ``doc.cats``.

One class per text: ``label`` is the class name (``ClassLabel`` over the class list in the ``DatasetDict``). A set
per text: JSONL keeps ``label`` as a sorted list of names, CSV and Parquet get one 0/1 column per class (named as
the image exports name them, ``core.dataset.export.indicator_columns``, the mapping in ``label_columns.json``),
and the ``DatasetDict`` a ``Sequence(ClassLabel)``. In the ``DocBin`` every class of the list is a key of
``doc.cats``, 1.0 for the answer's class (or each class of its set, as spaCy's ``textcat_multilabel`` reads them)
and 0.0 for the others. The text is read from each item's stored copy.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from labeling_assets.core.dataset.export import COLUMN_MAP_NAME, ExportReport, csv_ready, indicator_columns
from labeling_assets.core.ingest.text import read_stored_text
from labeling_assets.core.label_sets import to_indicator

TEXT_CLASS_FORMATS = ("jsonl", "csv", "parquet", "hf_datasets", "spacy")
FILE_NAMES = {"jsonl": "dataset.jsonl", "csv": "dataset.csv", "parquet": "dataset.parquet",
              "hf_datasets": "hf_dataset"}  # fmt: skip


def text_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """``export_rows``' rows (``image_path`` the stored copy) as ``item_id, text, label, split``; raises ValueError
    naming an item whose stored text cannot be read (an export must hold every item of its version)."""
    texts = []
    for item_id, path in zip(rows["item_id"], rows["image_path"], strict=True):
        try:
            texts.append(read_stored_text(str(path)))
        except (OSError, ValueError) as exc:
            raise ValueError(f"item {item_id}: its stored text {path} cannot be read ({exc})") from None
    table = pd.DataFrame({"item_id": rows["item_id"].astype(str).to_numpy(), "text": texts,
                          "label": rows["label"].to_numpy(), "split": rows["split"].astype(str).to_numpy()})  # fmt: skip
    for extra in (c for c in rows.columns if c not in ("item_id", "image_path", "label", "split")):
        table[extra] = rows[extra].to_numpy()  # the extra answer fields' columns
    return table


def write_hf_classes(table: pd.DataFrame, classes: Sequence[str], path: Path, *, multiple: bool) -> None:
    """The ``DatasetDict`` saved with ``save_to_disk``: ``id``, ``text`` and ``label`` (``ClassLabel``, or a
    ``Sequence(ClassLabel)`` for sets)."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
    from datasets import Sequence as HfSequence

    label = ClassLabel(names=list(classes))
    features = Features({"id": Value("string"), "text": Value("string"),
                         "label": HfSequence(label) if multiple else label})  # fmt: skip
    index = {c: k for k, c in enumerate(classes)}
    splits = {}
    for split, part in table.groupby("split", sort=True):
        labels = [[index[c] for c in answer] if multiple else index[str(answer)] for answer in part["label"]]
        splits[str(split)] = Dataset.from_dict(
            {"id": part["item_id"].tolist(), "text": part["text"].tolist(), "label": labels}, features=features
        )
    DatasetDict(splits).save_to_disk(str(path))


def write_class_docbins(table: pd.DataFrame, classes: Sequence[str], out_dir: Path, *, multiple: bool,
                         language: str = "en") -> dict[str, Path]:  # fmt: skip
    """One ``<split>.spacy`` per split: each doc made by ``spacy.blank(language)`` from the stored text (so
    ``doc.text`` is it exactly), ``doc.cats`` over every class, ``user_data["item_id"]`` its id."""
    import spacy
    from spacy.tokens import DocBin

    nlp = spacy.blank(language)
    paths = {}
    for split, part in table.groupby("split", sort=True):
        docs = DocBin(store_user_data=True)
        for item_id, text, answer in zip(part["item_id"], part["text"], part["label"], strict=True):
            chosen = set(answer) if multiple else {str(answer)}
            doc = nlp.make_doc(text)
            doc.cats = {c: float(c in chosen) for c in classes}
            doc.user_data["item_id"] = str(item_id)
            docs.add(doc)
        path = out_dir / f"{split}.spacy"
        docs.to_disk(path)
        paths[f"{split}_spacy"] = path
    return paths


def export_text_classes(
    rows: pd.DataFrame, out_dir: Path, formats: Sequence[str], classes: Sequence[str], *, multiple: bool
) -> ExportReport:
    """Every format asked for under ``out_dir`` (:data:`FILE_NAMES`; spaCy: ``<split>.spacy``)."""
    unknown = sorted(set(formats) - set(TEXT_CLASS_FORMATS))
    if unknown:
        raise ValueError(f"unknown text class export formats {unknown}; choose from {', '.join(TEXT_CLASS_FORMATS)}")
    table = text_rows(rows)
    if multiple:
        table["label"] = table["label"].map(lambda v: sorted(map(str, v)))
    out_dir.mkdir(parents=True, exist_ok=True)
    report = ExportReport(out_dir=out_dir)
    flat = table
    if multiple:  # CSV and Parquet: one 0/1 column per class
        columns = indicator_columns(classes)
        flags = pd.DataFrame(to_indicator(table["label"].tolist(), classes), columns=[columns[c] for c in classes])
        flat = pd.concat([table.drop(columns="label").reset_index(drop=True), flags], axis=1)
    for name in formats:
        if name == "spacy":  # one file per split, named as the span export names them
            report.paths.update(write_class_docbins(table, classes, out_dir, multiple=multiple))
            continue
        path = out_dir / FILE_NAMES[name]
        if name == "jsonl":
            lines = (json.dumps(r, ensure_ascii=False) + "\n" for r in table.to_dict(orient="records"))
            path.write_text("".join(lines), encoding="utf-8")
        elif name == "csv":
            csv_ready(flat).to_csv(path, index=False)
        elif name == "parquet":
            flat.to_parquet(path, index=False, engine="pyarrow")
        else:
            write_hf_classes(table, classes, path, multiple=multiple)
        report.paths[name] = path
    if multiple and {"csv", "parquet"} & set(formats):
        mapping = out_dir / COLUMN_MAP_NAME
        mapping.write_text(json.dumps(indicator_columns(classes), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        report.paths["label_columns"] = mapping
    return report
