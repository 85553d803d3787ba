"""Gold boxes (a gold file's entry read as a stored answer, a labeler's score on gold) and box splits stratified on
class presence."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from labeling_assets.core.dataset.splits import SplitRatios
from labeling_assets.core.tasks.boxes.gold import (
    assign_box_splits,
    class_presence,
    gold_answer,
    gold_box_score,
    gold_frame,
    parse_gold_boxes,
)
from labeling_assets.core.tasks.boxes.votes import BOX_COLUMNS, answer_boxes

CLASSES = ["car", "person", "bike"]
CAR = {"label": "car", "x0": 10, "y0": 20, "x1": 110, "y1": 220}


def test_a_gold_entry_is_stored_like_an_answer_and_judged_by_the_same_rules() -> None:
    answer, reason = parse_gold_boxes(json.dumps([CAR]), CLASSES)
    assert reason is None
    assert answer_boxes(answer, CLASSES) == ([("car", 10.0, 20.0, 110.0, 220.0)], None)
    assert parse_gold_boxes("[]", CLASSES) == ({"no_object": True, "boxes": []}, None)


@pytest.mark.parametrize(
    ("text", "classes", "allow_empty", "why"),
    [
        ("car", CLASSES, True, "not JSON"),
        ('{"boxes": "car"}', CLASSES, True, "JSON list"),
        (json.dumps([{"label": "car", "x0": 1}]), CLASSES, True, "needs label, x0"),
        (json.dumps([CAR | {"label": "bus"}]), CLASSES, True, "class_not_in_project"),
        (json.dumps([CAR | {"x1": 10}]), CLASSES, True, "zero_area_box"),
        (json.dumps({"width": 100, "height": 100, "boxes": [CAR]}), CLASSES, True, "box_outside_image"),
        ("[]", CLASSES, False, "empty_set_not_allowed"),
    ],
)
def test_a_bad_gold_entry_is_refused_with_why(text: str, classes: list[str], allow_empty: bool, why: str) -> None:
    _, reason = parse_gold_boxes(text, classes, allow_empty)
    assert reason is not None and why in reason


def test_without_the_image_size_a_gold_box_is_not_checked_against_it() -> None:
    assert parse_gold_boxes(json.dumps([CAR | {"x1": 5000}]), CLASSES)[1] is None
    assert parse_gold_boxes(json.dumps({"width": 6000, "height": 300, "boxes": [CAR | {"x1": 5000}]}), None)[1] is None


def test_gold_score_counts_matches_against_gold_boxes_plus_false_boxes() -> None:
    gold, items = gold_frame({"g1": gold_answer([CAR, CAR | {"label": "person", "x0": 300, "x1": 400}]),
                              "g2": gold_answer([]), "bad": {"boxes": "x"}}, CLASSES)  # fmt: skip
    assert sorted(items) == ["g1", "g2"] and len(gold) == 2
    votes = pd.DataFrame({"item_id": ["g1", "g2", "g1", "g1", "other"], "labeler_id": ["x", "x", "y", "z", "w"]})
    boxes = pd.DataFrame([("g1", "x", "car", 12, 20, 110, 220), ("g2", "x", "car", 0, 0, 50, 50),  # match; false
                          ("g1", "z", "person", 10, 20, 110, 220),  # right place, wrong class: a miss and a false box
                          ("other", "w", "car", 10, 20, 110, 220)], columns=BOX_COLUMNS)  # fmt: skip
    score = gold_box_score(votes, boxes, gold, items).set_index("labeler_id")
    assert score.to_dict("index") == {
        "x": {"matched": 1, "n": 3},  # 2 gold boxes + 1 false box
        "y": {"matched": 0, "n": 2},  # answered "No object" on g1: two misses
        "z": {"matched": 0, "n": 3},
    }


def box_answer(classes: list[str]) -> dict[str, object]:
    return gold_answer([CAR | {"label": c} for c in classes])


def test_splits_stratify_on_class_presence_keep_frozen_items_and_hand_back_the_boxes() -> None:
    rng = np.random.default_rng(0)
    present = [sorted(set(rng.choice(["car", "person"], size=int(rng.integers(0, 3))).tolist())) for _ in range(200)]
    for n in range(0, 200, 20):  # a rare class, on 10 items
        present[n] = [*present[n], "bike"]
    rows = pd.DataFrame({"item_id": [f"i{n:03d}" for n in range(200)], "label": [box_answer(p) for p in present]})
    existing = pd.Series({"i000": "test"})
    result = assign_box_splits(rows, CLASSES, existing=existing, ratios=SplitRatios(), seed=0)
    frame = result.frame.set_index("item_id")
    assert frame.loc["i000", "split"] == "test"
    bike = frame[frame["classes_present"].map(lambda c: "bike" in c)]
    assert set(bike["split"]) == {"train", "val", "test"}  # the rare class reaches every split
    assert frame.loc["i020", "label"] == rows.set_index("item_id").loc["i020", "label"]
    assert class_presence(frame.loc["i020", "label"], CLASSES) == frame.loc["i020", "classes_present"]


def test_class_presence_of_no_object_is_the_empty_set_and_a_bad_answer_is_an_error() -> None:
    assert class_presence(gold_answer([]), CLASSES) == []
    with pytest.raises(ValueError, match="not a box answer"):
        class_presence({"boxes": [{"shape": "polygonlabels"}]}, CLASSES)


def test_agreement_is_the_mean_pairwise_f1_and_two_no_object_answers_agree() -> None:
    from labeling_assets.core.tasks.boxes.agreement import box_agreement

    votes = pd.DataFrame({"item_id": ["i1", "i1", "i2", "i2", "i3"], "labeler_id": ["a", "b", "a", "b", "a"]})
    boxes = pd.DataFrame([("i1", "a", "car", 0, 0, 50, 50), ("i1", "b", "car", 2, 0, 50, 50),
                          ("i1", "b", "person", 100, 100, 150, 150), ("i3", "a", "car", 0, 0, 9, 9)],
                         columns=BOX_COLUMNS)  # fmt: skip
    result = box_agreement(votes, boxes, CLASSES)
    assert result.n_pairs == 2  # i1 and i2; i3 has one labeler
    assert result.f1 == pytest.approx((2 / 3 + 1.0) / 2)
    assert result.per_class["car"] == (1.0, 1) and result.per_class["person"] == (0.0, 1)
    assert result.per_class["bike"][1] == 0 and np.isnan(result.per_class["bike"][0])


def test_a_spammer_lowers_agreement() -> None:
    from labeling_assets.core.tasks.boxes import crowd
    from labeling_assets.core.tasks.boxes.agreement import box_agreement

    rng = np.random.default_rng(0)
    scenes = crowd.make_scenes(80, CLASSES, rng)
    good = [crowd.good(f"g{n}", rng) for n in range(3)]
    calm = box_agreement(*crowd.simulate_boxes(scenes, good, 3, CLASSES, rng), CLASSES)
    spammed = box_agreement(*crowd.simulate_boxes(scenes, [*good[:2], crowd.spammer("s")], 3, CLASSES, rng), CLASSES)
    assert calm.f1 > 0.75 and spammed.f1 < calm.f1 - 0.2, (calm.f1, spammed.f1)
