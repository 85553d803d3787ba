"""What is particular to the text_spans kind (the shared contract runs in test_task_kinds.py): answers read from
Label Studio results, consensus on the stored texts, the spaCy NER learns from consensus spans and pre-labels,
and the version's exports read back by their own libraries."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labeling_assets.core.dataset.export import export_rows
from labeling_assets.core.dataset.splits import SplitRatios
from labeling_assets.core.tasks import task_kind
from labeling_assets.core.tasks.text_spans.demo import ENTITY_TYPES, sentences
from labeling_assets.core.tasks.text_spans.spans import Span, read_spans, span_result, stored

KIND = task_kind("text_spans")
TYPES = list(ENTITY_TYPES)


def _write(folder: Path, texts: dict[str, str]) -> dict[str, str]:
    uris = {}
    for item, text in texts.items():
        path = folder / f"{item}.txt"
        path.write_text(text, encoding="utf-8")
        uris[item] = str(path)
    return uris


def test_a_result_is_read_as_the_stored_spans_the_core_reads_against_the_text() -> None:
    text = "Ada 😀 met  Bob Stone at Acme Corp."
    spans = (Span(0, 3, "PER"), Span(11, 20, "PER"), Span(24, 33, "ORG"))
    result = span_result(spans, text)
    result[1]["value"]["text"] = " Bob Stone"  # a selection that took the space before along
    result[1]["value"]["start"] = 10
    assert KIND.read_answer(result).label == stored(read_spans(result, text, TYPES).spans or ())
    assert KIND.read_answer(result).label == [[0, 3, "PER"], [11, 20, "PER"], [24, 33, "ORG"]]
    assert KIND.read_answer(span_result((), text)).label == []  # "no entity"
    overlapping = span_result((Span(0, 3, "PER"), Span(0, 7, "ORG")), "Ada Lovelace")
    overlapping[1]["value"]["text"] = "Ada Lov"
    # Stored as given: whether the project allows overlaps is decided where answers become votes.
    assert KIND.read_answer(overlapping).label == [[0, 3, "PER"], [0, 7, "ORG"]]
    blank = KIND.read_answer([])
    assert blank.label is None and blank.problem == "result_empty"


def test_votes_skip_a_type_outside_the_project_and_consensus_runs_on_the_stored_texts(tmp_path: Path) -> None:
    texts = {"a": "Ada Lovelace joined Acme Corp. today.", "b": "Nothing here."}
    uris = _write(tmp_path, texts)
    annotations = pd.DataFrame([
        {"item_id": "a", "labeler_id": "L1", "label": [[0, 12, "PER"], [20, 29, "ORG"]]},
        {"item_id": "a", "labeler_id": "L2", "label": [[0, 12, "PER"], [20, 30, "ORG"]]},  # "Acme Corp." with the dot
        {"item_id": "a", "labeler_id": "L3", "label": [[0, 12, "PER"], [20, 29, "ORG"]]},
        {"item_id": "a", "labeler_id": "L4", "label": [[0, 12, "ANIMAL"]]},
        {"item_id": "b", "labeler_id": "L1", "label": []},
        {"item_id": "b", "labeler_id": "L2", "label": []},
    ])  # fmt: skip
    votes = KIND.votes(annotations, TYPES)
    assert votes.skipped == {"class_not_in_project": 1} and len(votes.frame) == 5
    eligible = votes.frame.assign(uri=votes.frame["item_id"].map(uris))
    for method in KIND.consensus_methods:
        labels = KIND.consensus(eligible, method, TYPES, pd.Series(dtype=object)).result.labels.set_index("item_id")
        assert labels.loc["a", "label"] == [[0, 12, "PER"], [20, 29, "ORG"]], method
        assert labels.loc["b", "label"] == [] and labels.loc["b", "agreement"] == 1.0
    gold = pd.Series({"a": [[0, 12, "PER"], [20, 30, "ORG"]]})  # gold says the dot belongs to the name
    outcome = KIND.consensus(eligible, "auto", TYPES, gold)
    assert outcome.n_gold == 1 and outcome.result.labels.set_index("item_id").loc["a", "label"][1] == [20, 30, "ORG"]


def test_gold_scores_matched_spans_against_gold_and_false_spans() -> None:
    truth = pd.Series({"a": [[0, 3, "PER"], [8, 12, "LOC"]], "b": []})
    answers = pd.DataFrame({"item_id": ["a", "b"], "labeler_id": "L", "label": [[[0, 3, "PER"], [5, 7, "ORG"]], []]})
    assert KIND.gold_score(answers, truth, TYPES) == (1 + 1, 3 + 1)  # a: 1 of (2 gold + 1 false); b: right "none"
    verdict, per_type = KIND.gold_gate(answers, truth, TYPES, 0.5)
    assert verdict.n == 4 and set(per_type) == {"PER", "LOC", "ORG"}


def test_splits_spread_every_entity_type_and_keep_the_answers(tmp_path: Path) -> None:
    made = sentences(90, seed=3)
    rows = pd.DataFrame({"item_id": [s.item_id for s in made], "label": [stored(s.entities) for s in made]})
    frame = KIND.assign_splits(rows, TYPES, existing=pd.Series(dtype=object), ratios=SplitRatios(), seed=0).frame
    assert dict(zip(frame["item_id"], frame["label"], strict=True)) == dict(zip(rows["item_id"], rows["label"], strict=True))
    assert KIND.missing_from_splits(frame, TYPES).empty


@pytest.mark.slow
def test_the_ner_learns_from_consensus_spans_and_its_prelabels_are_spans_of_the_text(tmp_path: Path) -> None:
    made = sentences(220, seed=11)
    uris = _write(tmp_path, {s.item_id: s.text for s in made})
    frame = pd.DataFrame({"item_id": [s.item_id for s in made], "uri": [uris[s.item_id] for s in made],
                          "label": [stored(s.entities) for s in made], "confidence": 1.0})  # fmt: skip
    train, val, test = frame.iloc[:150], frame.iloc[150:180], frame.iloc[180:]
    trainer = KIND.trainer
    assert trainer is not None
    fitted = trainer.fit(train, val, TYPES, {"epochs": 10})
    outputs, failed = trainer.predict(fitted, test["uri"].tolist())
    assert failed == []
    truth = KIND.encode(test["label"].tolist(), TYPES)
    found = np.empty(len(outputs), dtype=object)
    found[:] = outputs
    assert KIND.test_score(found, truth, None) > 0.8
    report = KIND.test_report(truth, found, [], TYPES, None, model="ner/1", ece_bins=10)
    assert set(report.texts["evaluation/per_type.md"].split("|")) >= {" PER ", " ORG ", " LOC "}
    # A pre-label is what Label Studio shows: regions at offsets of the stored text, read back as they were.
    prediction = KIND.prediction(outputs[0], "ner/1")
    text = Path(test["uri"].iloc[0]).read_text(encoding="utf-8")
    assert all(r["value"]["text"] == text[r["value"]["start"] : r["value"]["end"]] for r in prediction["result"]
               if r["type"] == "labels")  # fmt: skip
    assert KIND.answer_from_result(prediction["result"]) is not None
    (tmp_path / "odd.txt").write_text("zq xv", encoding="utf-8")
    [odd], _ = trainer.predict(fitted, [str(tmp_path / "odd.txt")])
    assert 0.0 <= KIND.informativeness(odd, "uncertainty") <= 1.0


@pytest.mark.slow  # spaCy and datasets: a few seconds of imports and writing
def test_a_version_exports_through_the_kind_and_reads_back(tmp_path: Path) -> None:
    import datasets
    import spacy
    from spacy.tokens import DocBin

    made = sentences(6, seed=5)
    uris = _write(tmp_path, {s.item_id: s.text for s in made})
    manifest = pd.DataFrame({"item_id": [s.item_id for s in made], "label": [stored(s.entities) for s in made],
                             "split": ["train"] * 4 + ["test"] * 2})  # fmt: skip
    rows = export_rows(manifest, uris)  # what the dataset_export asset hands the kind
    assert rows["label"].tolist() == manifest["label"].tolist()
    report = KIND.export(rows, tmp_path / "out", ["jsonl", "conll", "spacy", "hf_datasets"], TYPES)
    assert sorted(report.paths) == ["hf_datasets", "test_conll", "test_jsonl", "test_spacy", "train_conll",
                                    "train_jsonl", "train_spacy"]  # fmt: skip
    assert all(path.exists() for path in report.paths.values())
    docs = list(DocBin().from_disk(tmp_path / "out" / "train.spacy").get_docs(spacy.blank("en").vocab))
    assert [d.text for d in docs] == [s.text for s in made[:4]]
    loaded = datasets.load_from_disk(str(tmp_path / "out" / "hf_dataset"))
    assert sorted(loaded) == ["test", "train"] and loaded["test"]["id"] == [s.item_id for s in made[4:]]


NESTED = "Ada Lovelace banked at Bank of America in Boston."
BANK, AMERICA = [23, 38, "ORG"], [31, 38, "LOC"]  # "Bank of America" and the place nested in it


def test_overlapping_spans_are_stored_and_skipped_as_a_vote_only_where_the_project_forbids_them() -> None:
    result = span_result((Span(*BANK), Span(*AMERICA)), NESTED)
    task = {"id": 1, "data": {"text": NESTED, "item_id": "n"}, "annotations": [{"id": 1, "completed_by": 3, "result": result}]}
    from labeling_assets.resources.labelstudio import remote_annotations

    (read,) = remote_annotations(task, KIND)
    assert read.label == [BANK, AMERICA] and read.problem is None  # stored as the labeler drew it
    annotations = pd.DataFrame([{"item_id": "n", "labeler_id": "L1", "label": [BANK, AMERICA]},
                                {"item_id": "n", "labeler_id": "L2", "label": [BANK]}])  # fmt: skip
    forbidden = KIND.votes(annotations, TYPES)  # the default: the project forbids overlaps
    assert forbidden.skipped == {"overlapping_span": 1} and forbidden.frame["labeler_id"].tolist() == ["L2"]
    allowed = KIND.votes(annotations, TYPES, allow_overlap=True)
    assert allowed.skipped == {} and allowed.frame["label"].tolist() == [[BANK, AMERICA], [BANK]]


def test_span_consensus_keeps_nested_entities_of_different_types_only_where_overlaps_are_allowed(tmp_path: Path) -> None:
    uris = _write(tmp_path, {"n": NESTED})
    ada = [0, 12, "PER"]
    annotations = pd.DataFrame([{"item_id": "n", "labeler_id": f"L{k}", "label": [ada, BANK, AMERICA]} for k in range(3)]
                               + [{"item_id": "n", "labeler_id": "L3", "label": [ada, BANK]}])  # fmt: skip

    def consensus(method: str, allow_overlap: bool) -> list:
        votes = KIND.votes(annotations, TYPES, allow_overlap=allow_overlap).frame
        eligible = votes.assign(uri=votes["item_id"].map(uris))
        outcome = KIND.consensus(eligible, method, TYPES, pd.Series(dtype=object), allow_overlap=allow_overlap)
        return outcome.result.labels.loc[0, "label"]

    for method in ("auto", "span_em"):
        assert consensus(method, allow_overlap=True) == [ada, BANK, AMERICA], method
        assert consensus(method, allow_overlap=False) == [ada, BANK], method  # only L3's answer is a vote
    # The token baselines tag each token once: they cannot give overlapping spans even where allowed.
    assert len(consensus("token_majority", allow_overlap=True)) == 2


def test_the_sync_reads_span_answers_against_the_text_of_their_task() -> None:
    from labeling_assets.resources.labelstudio import remote_annotations

    text = "Ada met Bob in Paris."
    result = span_result((Span(0, 3, "PER"), Span(8, 11, "PER"), Span(15, 20, "LOC")), text)
    result[1]["value"]["text"] = "Rob"  # not the task's slice
    result[2]["value"].update(start=15, end=40, text="Paris.")  # past the end of the text
    task = {"id": 7, "data": {"text": text, "item_id": "x"},
            "annotations": [{"id": 1, "completed_by": 3, "result": result}, {"id": 2, "completed_by": 4, "result": []}]}
    ok, blank = remote_annotations(task, KIND)
    assert ok.label == [[0, 3, "PER"]] and ok.problem is None
    assert "text_mismatch" in ok.detail and "offset_outside_text" in ok.detail
    assert blank.label is None and blank.problem == "result_empty" and blank.result == []
    # The same result without the task's text keeps the region whose text spells itself.
    assert KIND.read_answer(result).label == [[0, 3, "PER"], [8, 11, "PER"]]


def test_the_gold_report_scores_each_labeler_strict_and_partial_with_intervals() -> None:
    """A labeler who marks every gold entity a token short scores 0 strict and 1 partial; the report shows both
    with their intervals, as the issue asks of span labeler statistics."""
    truth = pd.Series({"a": [[0, 12, "PER"]], "b": [[4, 10, "LOC"]], "c": []})
    answers = pd.DataFrame({
        "item_id": ["a", "b", "c", "a", "b"], "labeler_id": ["exact", "exact", "exact", "short", "short"],
        "label": [[[0, 12, "PER"]], [[4, 10, "LOC"]], [], [[0, 3, "PER"]], [[4, 8, "LOC"]]],
    })  # fmt: skip
    report = KIND.gold_report(answers, truth, TYPES, {"exact": "Ada", "short": "Bob"})
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1:] for line in report["gold_spans"].splitlines()[2:]}
    assert set(rows) == {"Ada", "Bob"}
    assert rows["Ada"][:3] == rows["Ada"][3:6] and rows["Ada"][0].startswith("1.000 [")
    assert [c.split(" ")[0] for c in rows["Bob"][:6]] == ["0.000"] * 3 + ["1.000"] * 3  # strict, then partial
    assert rows["Bob"][6].strip(" |") == "2" and rows["Ada"][6].strip(" |") == "3"  # gold items answered
    assert report["span_gold_score"] == {"Ada": 1.0, "Bob": 0.0}


def test_a_labelers_statistics_score_their_spans_against_consensus_strict_and_partial() -> None:
    """Issue 31, item 3: span precision, recall and F1 against consensus too, with intervals. Bob marks one
    entity a token short (partial, not strict), adds one consensus lacks and answers a third item right."""
    consensus = pd.Series({"a": [[0, 12, "PER"]], "b": [[4, 10, "LOC"]], "c": [[0, 5, "ORG"]]})
    mine = pd.DataFrame({
        "item_id": ["a", "b", "c"], "labeler_id": "bob",
        "label": [[[0, 3, "PER"]], [[4, 10, "LOC"], [20, 24, "PER"]], [[0, 5, "ORG"]]],
        "created_at": pd.Timestamp("2026-01-05", tz="UTC"), "lead_time_s": 3.0,
    })  # fmt: skip
    stats = KIND.labeler_stats(mine, labeler_id="bob", classes=TYPES, gold=pd.Series(dtype=object),
                               consensus=consensus, population_shares={})  # fmt: skip
    scores = stats.vs_consensus
    assert scores["consensus_items"] == 3 and "own votes included" in scores["consensus_basis"]
    # strict: 2 of 4 spans match, 2 of 3 consensus spans found; partial: the short span counts too.
    assert scores["consensus_span_strict_precision"] == 0.5 and scores["consensus_span_strict_recall"] == 0.6667
    assert scores["consensus_span_strict_f1"] == pytest.approx(2 * 2 / (2 * 2 + 2 + 1), abs=1e-4)
    assert scores["consensus_span_partial_precision"] == 0.75 and scores["consensus_span_partial_recall"] == 1.0
    low, high = scores["consensus_span_strict_precision_ci"]
    assert 0 < low < 0.5 < high < 1 and len(scores["consensus_span_partial_f1_ci"]) == 2
    nothing = KIND.labeler_stats(mine, labeler_id="bob", classes=TYPES, gold=pd.Series(dtype=object),
                                 consensus=pd.Series(dtype=object), population_shares={})  # fmt: skip
    assert nothing.vs_consensus["consensus_items"] == 0 and "consensus_span_strict_f1" not in nothing.vs_consensus
