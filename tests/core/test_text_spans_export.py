"""Span datasets exported and read back by each format's own library (issue 31): CoNLL by spaCy's CoNLL-2003
converter, the ``.spacy`` DocBin by ``spacy.tokens.DocBin`` on ``spacy.blank("en")`` (trained on for a step, and
passed by ``spacy debug data`` as a blank NER pipeline's corpus), the Hugging Face DatasetDict by
``datasets.load_from_disk``: the same items and labels each time."""

import json
from pathlib import Path

import pytest

from labeling_assets.core.tasks.text_spans.demo import ENTITY_TYPES, sentences
from labeling_assets.core.tasks.text_spans.export import (
    EXPORT_FORMATS,
    SpanRecord,
    export_spans,
    to_conll,
)
from labeling_assets.core.tasks.text_spans.spans import Span, spans_from_bio, tag_names, token_range, tokenize

TYPES = list(ENTITY_TYPES)


def _records() -> list[SpanRecord]:
    made = [SpanRecord(s.item_id, s.text, s.entities, ("train", "val", "test")[i % 3])
            for i, s in enumerate(sentences(30, seed=5))]  # fmt: skip
    emoji = "🎉 Ada Lovelace met Charles Babbage in London."
    made += [
        SpanRecord("emoji", emoji, (Span(2, 14, "PER"), Span(19, 34, "PER"), Span(38, 44, "LOC")), "train"),
        SpanRecord("none", "Nothing to see here.", (), "test"),
        SpanRecord("lines", "Ada  Lovelace\nlives in\tLondon", (Span(0, 13, "PER"), Span(23, 29, "LOC")), "val"),
    ]
    for r in made:
        assert all(r.text[s.start : s.end].strip() == r.text[s.start : s.end] for s in r.spans)
    return made


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[SpanRecord], object]:
    folder = tmp_path_factory.mktemp("spans")
    records = _records()
    return folder, records, export_spans(records, TYPES, folder)


def _by_split(records: list[SpanRecord]) -> dict[str, list[SpanRecord]]:
    out: dict[str, list[SpanRecord]] = {}
    for r in sorted(records, key=lambda r: (r.split, r.item_id)):
        out.setdefault(r.split, []).append(r)
    return out


def test_every_format_writes_one_file_per_split(exported: tuple) -> None:
    folder, _, report = exported
    assert set(report.files) == set(EXPORT_FORMATS)
    for fmt in ("jsonl", "conll", "spacy"):
        assert sorted(report.files[fmt]) == [f"{split}.{fmt}" for split in ("test", "train", "val")]
        assert all((folder / name).is_file() for name in report.files[fmt])


def test_jsonl_holds_each_item_with_its_character_offsets(exported: tuple) -> None:
    folder, records, _ = exported
    for split, rows in _by_split(records).items():
        read = [json.loads(line) for line in (folder / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]
        assert [(o["id"], o["text"]) for o in read] == [(r.item_id, r.text) for r in rows]
        assert [tuple(Span(**s) for s in o["spans"]) for o in read] == [r.spans for r in rows]


def test_csv_and_parquet_are_read_back_by_pandas_one_row_per_span_and_every_item_kept(exported: tuple) -> None:
    import pandas as pd

    folder, records, _ = exported
    for split, rows in _by_split(records).items():
        expected = [(r.item_id, s.start, s.end, s.label, r.text[s.start : s.end]) for r in rows for s in r.spans]
        for table in (pd.read_csv(folder / f"{split}.csv", dtype={"item_id": str}),
                      pd.read_parquet(folder / f"{split}.parquet")):  # fmt: skip
            assert list(table.columns) == ["item_id", "split", "start", "end", "label", "span_text"]
            assert set(table["item_id"]) == {r.item_id for r in rows} and set(table["split"]) == {split}
            found = table.dropna(subset=["label"])
            assert [(i, int(s), int(e), t, x) for i, s, e, t, x in found.drop(columns="split").itertuples(index=False)] \
                == expected
            empty = table.loc[table["label"].isna(), "item_id"].tolist()
            assert empty == [r.item_id for r in rows if not r.spans]  # one row, no span, for "no entity"
            assert table.loc[table["label"].isna(), ["start", "end"]].isna().all().all()
    assert pd.read_parquet(folder / "test.parquet")["start"].dtype == "Int64"  # offsets stay integers


def test_conll_is_read_back_by_spacys_conll_converter_with_the_same_tokens_and_entities(exported: tuple) -> None:
    from spacy.training.converters import conll_ner_to_docs

    folder, records, _ = exported
    for split, rows in _by_split(records).items():
        docs = list(conll_ner_to_docs((folder / f"{split}.conll").read_text(encoding="utf-8"), no_print=True))
        assert len(docs) == len(rows)
        for doc, r in zip(docs, rows, strict=True):
            tokens = tokenize(r.text)
            assert [t.text for t in doc] == [r.text[s:e] for s, e in tokens]
            expected = [(*token_range(s, tokens), s.label) for s in r.spans]  # type: ignore[misc]
            assert [(e.start, e.end, e.label_) for e in doc.ents] == expected


def test_the_spacy_docbin_is_read_back_with_the_same_texts_ids_and_entity_offsets(exported: tuple) -> None:
    import spacy
    from spacy.tokens import DocBin

    folder, records, report = exported
    nlp = spacy.blank("en")
    widened = 0
    for split, rows in _by_split(records).items():
        docs = list(DocBin().from_disk(folder / f"{split}.spacy").get_docs(nlp.vocab))
        assert [(d.user_data["item_id"], d.text) for d in docs] == [(r.item_id, r.text) for r in rows]
        for doc, r in zip(docs, rows, strict=True):
            got = [(e.start_char, e.end_char, e.label_) for e in doc.ents]
            assert [e.label_ for e in doc.ents] == [s.label for s in r.spans]
            for (start, end, _), span in zip(got, r.spans, strict=True):
                assert start <= span.start and span.end <= end  # the same, or widened to spaCy's tokens
                widened += (start, end) != (span.start, span.end)
    assert widened == report.widened  # every widened span is counted
    assert report.widened < sum(len(r.spans) for r in records) / 10


def test_the_spacy_docbin_trains_a_blank_ner_pipe(exported: tuple) -> None:
    import spacy
    from spacy.tokens import DocBin
    from spacy.training import Example

    folder, _, _ = exported
    nlp = spacy.blank("en")
    nlp.add_pipe("ner")
    docs = list(DocBin().from_disk(folder / "train.spacy").get_docs(nlp.vocab))
    examples = [Example(nlp.make_doc(d.text), d) for d in docs]
    nlp.initialize(lambda: examples)
    losses = nlp.update(examples)
    assert set(nlp.get_pipe("ner").labels) == set(TYPES) and losses["ner"] > 0


@pytest.mark.slow  # spaCy's data check builds a pipeline: seconds
def test_spacy_debug_data_passes_the_docbin_export_as_a_corpus_for_a_blank_ner_pipeline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``spacy debug data`` (run in this process, as ``python -m spacy debug data`` runs it) on the train and val
    ``.spacy`` files of 300 sentences with a fresh blank-English NER config: no error (it exits 1 on one, e.g. an
    entity on whitespace, a misaligned span, overlapping train and dev docs) and every type seen."""
    from spacy.cli.debug_data import debug_data
    from spacy.cli.init_config import init_config

    records = [SpanRecord(s.item_id, s.text, s.entities, ("train", "train", "val")[i % 3])
               for i, s in enumerate(sentences(300, seed=7))]  # fmt: skip
    export_spans(records, TYPES, tmp_path, formats=["spacy"])
    init_config(lang="en", pipeline=["ner"]).to_disk(tmp_path / "config.cfg")
    overrides = {"paths.train": str(tmp_path / "train.spacy"), "paths.dev": str(tmp_path / "val.spacy")}
    debug_data(tmp_path / "config.cfg", config_overrides=overrides, silent=False)  # SystemExit(1) on an error
    out = capsys.readouterr().out
    assert "Corpus is loadable" in out and "No entities consisting of or starting/ending with whitespace" in out
    assert f"{len(TYPES)} label(s)" in out and "error" not in out.split("Summary")[-1]


def test_the_hugging_face_datasetdict_is_read_back_with_typed_features_and_the_same_labels(exported: tuple) -> None:
    from datasets import ClassLabel, load_from_disk

    folder, records, _ = exported
    loaded = load_from_disk(str(folder / "hf_dataset"))
    assert sorted(loaded) == ["test", "train", "val"]
    for split, rows in _by_split(records).items():
        data = loaded[split]
        tags, types = data.features["ner_tags"].feature, data.features["span_label"].feature
        assert isinstance(tags, ClassLabel) and tags.names == tag_names(TYPES)
        assert isinstance(types, ClassLabel) and types.names == TYPES
        assert data["id"] == [r.item_id for r in rows] and data["text"] == [r.text for r in rows]
        for row, r in zip(data, rows, strict=True):
            tokens = tokenize(r.text)
            assert row["tokens"] == [r.text[s:e] for s, e in tokens]
            assert tuple(spans_from_bio([tags.int2str(t) for t in row["ner_tags"]], tokens)) == r.spans
            spans = zip(row["span_start"], row["span_end"], row["span_label"], strict=True)
            assert tuple(Span(s, e, types.int2str(t)) for s, e, t in spans) == r.spans


def test_a_span_of_a_type_the_project_lacks_or_an_unknown_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not in the project"):
        export_spans([SpanRecord("a", "Ada", (Span(0, 3, "NORP"),), "train")], TYPES, tmp_path)
    with pytest.raises(ValueError, match="unknown span export formats"):
        export_spans([], TYPES, tmp_path, ["xml"])


def test_an_item_without_a_token_is_left_out_of_conll() -> None:
    assert to_conll([SpanRecord("blank", "   ", (), "train")]) == ""


def test_a_span_off_spacys_token_boundaries_is_widened_to_its_tokens_and_counted(tmp_path: Path) -> None:
    import spacy
    from spacy.tokens import DocBin

    from labeling_assets.core.tasks.text_spans.export import write_docbin

    text = "Dr. Ada Lovelace wrote it."  # spaCy keeps "Dr." one token; ours splits "Dr" and "."
    widened = write_docbin([SpanRecord("a", text, (Span(0, 2, "PER"), Span(4, 16, "PER")), "train")], tmp_path / "a.spacy")
    (doc,) = DocBin().from_disk(tmp_path / "a.spacy").get_docs(spacy.blank("en").vocab)
    assert widened == 1 and [(e.start_char, e.end_char) for e in doc.ents] == [(0, 3), (4, 16)]


def test_overlapping_spans_stay_whole_where_a_format_holds_them_and_are_flattened_with_one_line_where_not(
    tmp_path: Path,
) -> None:
    """A project that allows overlaps: "Bank of America" ORG with "America" LOC nested in it. CoNLL's BIO tags,
    ``ner_tags`` and spaCy's ``doc.ents`` cannot overlap (spaCy refuses overlapping ents): they keep the longer
    span and the report says what was left out; JSONL, CSV, ``doc.spans["sc"]`` and the span columns keep both."""
    import pandas as pd
    import spacy
    from datasets import load_from_disk
    from spacy.tokens import DocBin

    text = "Ada Lovelace banked at Bank of America."
    spans = (Span(0, 12, "PER"), Span(23, 38, "ORG"), Span(31, 38, "LOC"))
    report = export_spans([SpanRecord("n", text, spans, "train")], TYPES, tmp_path)
    assert report.flattened == 1 and len(report.notes()) == 1 and "left out of conll" in report.notes()[0]
    assert json.loads((tmp_path / "train.jsonl").read_text(encoding="utf-8"))["spans"][2] == {
        "start": 31, "end": 38, "label": "LOC"}  # fmt: skip
    assert pd.read_csv(tmp_path / "train.csv")["label"].tolist() == ["PER", "ORG", "LOC"]
    (doc,) = DocBin().from_disk(tmp_path / "train.spacy").get_docs(spacy.blank("en").vocab)
    assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == [(0, 12, "PER"), (23, 38, "ORG")]
    assert [(s.start_char, s.end_char, s.label_) for s in doc.spans["sc"]] == [(s.start, s.end, s.label) for s in spans]
    assert "B-ORG" in (tmp_path / "train.conll").read_text(encoding="utf-8").split()
    assert "B-LOC" not in (tmp_path / "train.conll").read_text(encoding="utf-8").split()
    row = load_from_disk(str(tmp_path / "hf_dataset"))["train"][0]
    assert len(row["span_start"]) == 3 and spans_from_bio(
        [tag_names(TYPES)[t] for t in row["ner_tags"]], tokenize(text)) == list(spans[:2])  # fmt: skip
    assert export_spans([SpanRecord("a", "Ada", (Span(0, 3, "PER"),), "train")], TYPES, tmp_path / "flat").notes() == []
