"""Extra answer fields (class + severity, flags, the labeler's own confidence): settings, Label Studio controls,
reading, storage per annotation version, per-item consensus, export columns, the crowd's model, calibration."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labeling_assets.core.dataset.export import export_dataset
from labeling_assets.core.fields.consensus import (
    aggregate_fields,
    card_section,
    field_columns,
    fields_card,
    with_field_columns,
)
from labeling_assets.core.fields.crowd import field_answers, field_truth
from labeling_assets.core.fields.self_rating import (
    calibration,
    rating_weighted_vote,
    spearman,
    without_guesses,
)
from labeling_assets.core.fields.spec import (
    SELF_CONFIDENCE,
    FieldSpec,
    FieldSpecError,
    config_fields,
    field_result,
    parse_fields,
    read_fields,
    with_field_controls,
)
from labeling_assets.core.labelstudio.config import config_layout
from labeling_assets.core.labelstudio.crowd import LabelerSpec
from labeling_assets.core.labelstudio.review import review_config
from labeling_assets.core.labelstudio.tasks import select_queue
from labeling_assets.core.store.annotation_sync import RemoteAnnotation, sync_annotations
from labeling_assets.core.store.answer_fields import (
    current_field_answers,
    load_field_consensus,
    record_field_consensus,
)
from labeling_assets.core.store.labelstudio_sync import link_tasks, queue_candidates, reserve_tasks
from labeling_assets.core.store.schema import LabelStore, items_table, utcnow
from labeling_assets.core.tasks import task_kind

SEVERITY = FieldSpec("severity", "choice", ("low", "medium", "high"), required=True)
FLAGS = FieldSpec("quality", "choices", ("blurry", "cropped"))
FIELDS_JSON = json.dumps([
    {"name": "severity", "kind": "choice", "options": ["low", "medium", "high"], "required": True},
    {"name": "quality", "kind": "choices", "options": ["blurry", "cropped"]},
])  # fmt: skip


def test_settings_json_becomes_fields_with_the_self_confidence_rating_last() -> None:
    fields = parse_fields(FIELDS_JSON, self_confidence=True)
    assert [f.name for f in fields] == ["severity", "quality", SELF_CONFIDENCE]
    assert fields[0] == SEVERITY and fields[2].kind == "rating" and fields[2].max_rating == 5
    assert parse_fields("") == () and parse_fields(None, self_confidence=False) == ()


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "severity"}',  # not a list
        '[{"name": "label", "kind": "choice", "options": ["a", "b"]}]',  # the kind's own control
        '[{"name": "Severity", "kind": "choice", "options": ["a", "b"]}]',  # not lower-case
        '[{"name": "s", "kind": "choice", "options": ["a"]}]',  # one option
        '[{"name": "s", "kind": "choice", "options": ["a", "a"]}]',  # duplicate options
        '[{"name": "s", "kind": "stars"}]',  # unknown kind
        '[{"name": "s", "kind": "rating", "max_rating": 1}]',
        '[{"name": "s", "kind": "rating", "options": ["a", "b"]}]',
        '[{"name": "s", "kind": "choice", "options": ["a", "b"], "colour": 1}]',  # unknown key
        '[{"name": "s", "kind": "choice", "options": ["a", "b"]}, {"name": "s", "kind": "rating"}]',
    ],
)
def test_bad_field_settings_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(FieldSpecError):
        parse_fields(text)


@pytest.mark.parametrize("task_type", ["single_label", "multi_label", "text_classes", "text_class_sets", "boxes", "text_spans"])
def test_every_kind_config_gets_the_field_controls_after_its_own_and_keeps_its_own(task_type: str) -> None:
    kind = task_kind(task_type)
    plain = kind.label_config(["cat", "dog"])
    config = with_field_controls(plain, parse_fields(FIELDS_JSON, self_confidence=True))
    root = ET.fromstring(config)  # well-formed XML
    shown = next(t.get("name") for t in root.iter() if t.tag in ("Image", "Text"))
    severity = next(t for t in root.iter("Choices") if t.get("name") == "severity")
    assert severity.get("toName") == shown and severity.get("choice") == "single" and severity.get("required") == "true"
    assert [c.get("value") for c in severity.iter("Choice")] == ["low", "medium", "high"]
    quality = next(t for t in root.iter("Choices") if t.get("name") == "quality")
    assert quality.get("choice") == "multiple" and quality.get("required") is None
    rating = next(root.iter("Rating"))
    assert (rating.get("name"), rating.get("toName"), rating.get("maxRating")) == (SELF_CONFIDENCE, shown, "5")
    # The kind's own control keeps its name, layout and reading; the config still belongs to the kind.
    assert kind.owns_config(config) and config_layout(config) == config_layout(plain)
    assert config.index('name="label"') < config.index('name="severity"')
    assert [f[0] for f in config_fields(config) or ()] == ["severity", "quality", SELF_CONFIDENCE]
    assert config_fields(plain) == () and with_field_controls(plain, ()) == plain


def test_the_review_project_asks_the_same_fields_as_the_crowd() -> None:
    crowd = with_field_controls(task_kind("single_label").label_config(["cat", "dog"]), [SEVERITY])
    review = review_config(crowd)
    ET.fromstring(review)
    assert config_fields(review) == config_fields(crowd)


def _result(label: str, **fields: object) -> list[dict[str, object]]:
    return [{"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [label]}},
            *field_result(fields, "image")]  # fmt: skip


def test_a_result_reads_as_the_class_and_the_fields_apart() -> None:
    result = _result("cat", severity="high", quality=["cropped", "blurry"], self_confidence=4)
    assert task_kind("single_label").read_answer(result).label == "cat"  # the kind ignores the fields
    assert task_kind("text_classes").read_answer(result).label == "cat"
    assert read_fields(result) == {"severity": ["high"], "quality": ["blurry", "cropped"], SELF_CONFIDENCE: 4}
    assert read_fields(result, ["severity"]) == {"severity": ["high"]}
    malformed = [{"from_name": "severity", "type": "choices", "value": "high"}, 7,
                 {"from_name": "self_confidence", "type": "rating", "value": {"rating": "x"}}]  # fmt: skip
    assert read_fields(malformed) == {} and read_fields(None) == {} and read_fields(_result("cat")) == {}


def _items(store: LabelStore, n: int) -> list[str]:
    ids = [f"{i:064x}" for i in range(n)]
    with store.begin() as conn:
        conn.execute(items_table.insert(), [{"item_id": i, "uri": f"/x/{i}", "source_path": i, "n_bytes": 1,
                                             "ingested_at": utcnow(), "status": "active"} for i in ids])  # fmt: skip
    reserve_tasks(store, 7, select_queue(queue_candidates(store, 7), limit=10, gold_rate=0.0), overlap=3)
    link_tasks(store, 7, {item: 100 + n for n, item in enumerate(ids)})
    return ids


def _ann(ann_id: int, task: int, label: str, user: str, **fields: object) -> RemoteAnnotation:
    return RemoteAnnotation(ann_id, task, None, user, label, 2.0, "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z",
                            fields=fields or None)  # fmt: skip


def test_fields_are_stored_per_annotation_version_and_a_field_edit_alone_is_a_new_version(sqlite_store: LabelStore) -> None:
    ids = _items(sqlite_store, 2)
    first = sync_annotations(sqlite_store, 7, [_ann(1, 100, "cat", "1", severity=["low"]), _ann(2, 100, "cat", "2"),
                                               _ann(3, 101, "dog", "1", severity=["high"], self_confidence=5)])  # fmt: skip
    assert first.new == 3
    assert sync_annotations(sqlite_store, 7, [_ann(1, 100, "cat", "1", severity=["low"]), _ann(2, 100, "cat", "2"),
                                              _ann(3, 101, "dog", "1", severity=["high"], self_confidence=5)]).written == 0  # fmt: skip
    edited = sync_annotations(sqlite_store, 7, [_ann(1, 100, "cat", "1", severity=["medium"]), _ann(2, 100, "cat", "2")])
    assert (edited.updated, edited.deleted) == (1, 1)  # the severity changed, the class did not; 3 deleted
    current = current_field_answers(sqlite_store)
    assert current.to_dict(orient="records") == [
        {"item_id": ids[0], "labeler_id": "1", "field": "severity", "value": ["medium"], "label": "cat"}
    ]
    assert len(current_field_answers(sqlite_store, [ids[1]])) == 0


def _answers(rows: list[tuple[str, str, str, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["item_id", "labeler_id", "field", "value"])


def test_each_field_is_aggregated_by_its_kind() -> None:
    rating = FieldSpec("stars", "rating", max_rating=5)
    answers = _answers([
        ("a", "1", "severity", ["high"]), ("a", "2", "severity", ["high"]), ("a", "3", "severity", ["low"]),
        ("b", "1", "severity", ["low"]), ("b", "2", "severity", ["high"]),  # a tie: the first option listed
        ("c", "1", "severity", ["extreme"]),  # not an option: not counted, so no row
        ("a", "1", "quality", ["blurry"]), ("a", "2", "quality", ["blurry", "cropped"]), ("a", "3", "quality", []),
        ("a", "1", "stars", 2), ("a", "2", "stars", 5), ("a", "3", "stars", 4), ("b", "1", "stars", 3),
        ("b", "2", "stars", 4), ("b", "3", "stars", 9),  # out of range: not counted
    ])  # fmt: skip
    out = aggregate_fields(answers, [SEVERITY, FLAGS, rating]).set_index(["item_id", "field"])
    assert out.loc[("a", "severity"), "value"] == "high" and out.loc[("a", "severity"), "confidence"] == pytest.approx(2 / 3)
    assert out.loc[("b", "severity"), "value"] == "low" and out.loc[("b", "severity"), "confidence"] == 0.5
    assert ("c", "severity") not in out.index
    assert out.loc[("a", "quality"), "value"] == ["blurry"]  # 2 of 3 blurry, 1 of 3 cropped
    assert out.loc[("a", "quality"), "confidence"] == pytest.approx(2 / 3)
    assert out.loc[("a", "stars"), "value"] == 4 and out.loc[("a", "stars"), "confidence"] == pytest.approx(2 / 3)
    assert out.loc[("b", "stars"), "value"] == 3.5 and out.loc[("b", "stars"), "n_answers"] == 2
    weighted = aggregate_fields(answers[answers["item_id"] == "a"], [SEVERITY], weights={"3": 5.0})
    assert weighted.loc[0, "value"] == "low"  # the heavier labeler outweighs two
    assert aggregate_fields(_answers([]), [SEVERITY]).empty


def test_exports_carry_each_field_and_its_confidence_as_columns_read_back_by_their_libraries(
    tmp_path: Path, sqlite_store: LabelStore
) -> None:
    consensus = aggregate_fields(_answers([("i1", "1", "severity", ["high"]), ("i1", "1", "quality", ["blurry"]),
                                           ("i2", "2", "severity", ["low"])]), [SEVERITY, FLAGS])  # fmt: skip
    record_field_consensus(sqlite_store, "v1", consensus)
    record_field_consensus(sqlite_store, "v1", consensus)  # a rerun of the version replaces, never duplicates
    stored = load_field_consensus(sqlite_store, "v1")
    assert len(stored) == 3 and load_field_consensus(sqlite_store, "v2").empty
    rows = pd.DataFrame({"image_path": ["/a.png", "/b.png", "/c.png"], "label": ["cat", "dog", "cat"],
                         "split": ["train", "test", "val"], "item_id": ["i1", "i2", "i3"]})  # fmt: skip
    rows = with_field_columns(rows, field_columns(stored, [SEVERITY, FLAGS]))
    report = export_dataset(rows, tmp_path, ["jsonl", "csv", "parquet"])
    lines = [json.loads(line) for line in report.paths["jsonl"].read_text().splitlines()]
    assert lines[0] == {"image_path": "/a.png", "label": "cat", "split": "train", "item_id": "i1", "severity": "high",
                        "severity_confidence": 1.0, "quality": ["blurry"], "quality_confidence": 1.0}  # fmt: skip
    assert lines[2]["severity"] is None and lines[1]["quality"] is None
    csv = pd.read_csv(report.paths["csv"])
    assert csv["severity"].tolist()[:2] == ["high", "low"] and pd.isna(csv["severity"][2])
    assert json.loads(csv["quality"][0]) == ["blurry"]
    parquet = pd.read_parquet(report.paths["parquet"])
    assert list(parquet.columns) == ["image_path", "label", "split", "item_id", "severity", "severity_confidence",
                                     "quality", "quality_confidence"]  # fmt: skip
    assert list(parquet["quality"][0]) == ["blurry"] and parquet["severity_confidence"][1] == 1.0
    card = card_section(stored, [SEVERITY, FLAGS], n_items=3)
    assert "| severity | choice | 2 of 3 | high: 1, low: 1 | 1.00 |" in card
    assert "| quality | choices | 1 of 3 |" in card


def test_without_fields_an_export_is_unchanged(tmp_path: Path) -> None:
    rows = pd.DataFrame({"image_path": ["/a.png"], "label": ["cat"], "split": ["train"], "item_id": ["i1"]})
    assert with_field_columns(rows, field_columns(pd.DataFrame(), [])) is rows
    report = export_dataset(rows, tmp_path, ["csv"])
    assert list(pd.read_csv(report.paths["csv"]).columns) == ["image_path", "label", "split", "item_id"]


def test_the_simulated_crowd_answers_fields_by_its_accuracy_and_rates_by_its_style() -> None:
    expert, spammer = LabelerSpec("e", "expert"), LabelerSpec("s", "spammer")
    items = list(range(2000))
    truth = [field_truth(i, SEVERITY) for i in items]
    assert field_truth(5, SEVERITY) == field_truth(5, SEVERITY) and set(truth) == {"low", "medium", "high"}
    answered = [field_answers(expert, i, "cat", "cat", [SEVERITY], seed=1)["severity"] for i in items]
    assert np.mean([a == t for a, t in zip(answered, truth, strict=True)]) == pytest.approx(0.95, abs=0.02)
    rating = parse_fields("", self_confidence=True)
    right = [field_answers(expert, i, "cat", "cat", rating)[SELF_CONFIDENCE] for i in items]
    wrong = [field_answers(expert, i, "dog", "cat", rating)[SELF_CONFIDENCE] for i in items]
    assert np.mean(right) > np.mean(wrong) + 1.5  # calibrated: a wrong answer is rated lower
    spam_right = [field_answers(spammer, i, "cat", "cat", rating)[SELF_CONFIDENCE] for i in items]
    spam_wrong = [field_answers(spammer, i, "dog", "cat", rating)[SELF_CONFIDENCE] for i in items]
    assert abs(np.mean(spam_right) - np.mean(spam_wrong)) < 0.15 and np.mean(spam_wrong) > 4  # overconfident


def test_calibration_reports_accuracy_per_level_the_ece_and_the_rank_correlation() -> None:
    cal = calibration([5, 5, 5, 5, 1, 1], [True, True, True, True, False, True])
    assert cal.levels == {5: (4, 1.0), 1: (2, 0.5)}
    assert cal.ece == pytest.approx(2 / 6 * abs(0.5 - 0.2))
    assert cal.spearman is not None and cal.spearman > 0
    assert calibration([4, 4], [True, False]).spearman is None  # a constant rating says nothing
    assert spearman([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)


def test_a_rating_weighted_vote_follows_the_surer_votes_and_breaks_ties_by_class_order() -> None:
    votes = pd.DataFrame({"item_id": ["a", "a", "a", "b", "b"], "label": ["cat", "cat", "dog", "dog", "cat"],
                          "rating": [1, 1, 5, 3, 3]})  # fmt: skip
    assert rating_weighted_vote(votes, ["cat", "dog"]).to_dict() == {"a": "dog", "b": "cat"}


@pytest.mark.parametrize(
    ("task_type", "result", "media"),
    [
        ("boxes", [{"from_name": "label", "to_name": "image", "type": "rectanglelabels", "original_width": 100,
                    "original_height": 100, "value": {"x": 10, "y": 10, "width": 20, "height": 20, "rotation": 0,
                                                      "rectanglelabels": ["cat"]}}], None),  # fmt: skip
        ("text_spans", [{"from_name": "label", "to_name": "text", "type": "labels",
                         "value": {"start": 0, "end": 3, "text": "Bob", "labels": ["PER"]}}], {"text": "Bob went"}),  # fmt: skip
        ("multi_label", [{"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": ["a"]}}], None),
    ],
)
def test_every_kind_reads_its_own_answer_alike_with_field_regions_beside_it(
    task_type: str, result: list[dict[str, object]], media: dict[str, str] | None
) -> None:
    kind = task_kind(task_type)
    with_fields = [*result, *field_result({"severity": "low", SELF_CONFIDENCE: 3}, str(result[0]["to_name"]))]

    def read(r: list[dict[str, object]]) -> object:
        return kind.read_answer_in_task(r, media) if media is not None else kind.read_answer(r)  # type: ignore[attr-defined]

    assert read(with_fields) == read(result) and read(result).label is not None  # type: ignore[attr-defined]


def test_the_card_reports_the_projects_own_self_ratings_against_gold_and_consensus() -> None:
    rating = parse_fields("", self_confidence=True)
    answers = pd.DataFrame({
        "item_id": ["g", "g", "c", "c"], "labeler_id": ["1", "2", "1", "2"], "field": SELF_CONFIDENCE,
        "value": [5, 1, 5, 4], "label": ["cat", "dog", "dog", "dog"],
    })  # fmt: skip
    labeled = pd.DataFrame({"item_id": ["g", "c"], "label": ["cat", "dog"], "gold_label": ["cat", None]})
    card = fields_card(answers, aggregate_fields(answers, rating), rating, labeled)
    assert "| self_confidence | rating | 2 of 2 |" in card
    assert "| gold | 2 | 0.100 | +1.00 | 0% of 1 / - / - / - / 100% of 1 |" in card  # the sure vote was right
    assert "| consensus | 4 |" in card
    assert fields_card(answers, aggregate_fields(answers, ()), (), labeled) == ""


def test_votes_self_rated_as_guesses_are_left_out_unless_all_of_an_items_votes_are() -> None:
    votes = pd.DataFrame({"item_id": ["a", "a", "a", "b", "b", "c"], "labeler_id": ["1", "2", "3", "1", "2", "1"],
                          "label": ["cat", "cat", "dog", "dog", "cat", "cat"]})  # fmt: skip
    ratings = pd.DataFrame({"item_id": ["a", "a", "a", "b", "b"], "labeler_id": ["1", "2", "3", "1", "2"],
                            "value": [5, 4, 1, 2, 1]})  # fmt: skip
    kept, dropped = without_guesses(votes, ratings, below=3)
    assert dropped == 1  # a's guess; b's votes are all guesses and stay; c's vote has no rating and stays
    assert list(zip(kept["item_id"], kept["labeler_id"], strict=True)) == [
        ("a", "1"), ("a", "2"), ("b", "1"), ("b", "2"), ("c", "1")
    ]
    assert without_guesses(votes, ratings, below=0) == (votes, 0)

