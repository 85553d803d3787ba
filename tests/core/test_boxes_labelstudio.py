"""Boxes in Label Studio: the RectangleLabels config, a result read as boxes in pixels of the raw image, and which
stored answers are votes (bad ones stored, skipped and counted, never a crash)."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

import pandas as pd
import pytest

from labeling_assets.core.labelstudio.answers import UNREADABLE_EMPTY, UNREADABLE_NOT_A_LIST, UNREADABLE_NULL
from labeling_assets.core.labelstudio.config import LabelConfigError, config_layout
from labeling_assets.core.tasks.boxes import votes as bv
from labeling_assets.core.tasks.boxes.labelstudio import (
    NO_OBJECT,
    UNREADABLE_GEOMETRY,
    box_label_config,
    box_result,
    config_box_classes,
    read_boxes,
)

W, H = 800, 600


def rect(x: float, y: float, w: float, h: float, label: Any = "car", rotation: float = 0, **extra: Any) -> dict[str, Any]:
    """A Label Studio rectanglelabels region, in percent of an 800 x 600 image."""
    return {"from_name": "label", "to_name": "image", "type": "rectanglelabels", "original_width": W,
            "original_height": H, "value": {"x": x, "y": y, "width": w, "height": h, "rotation": rotation,
                                            "rectanglelabels": label if isinstance(label, list) else [label]},
            **extra}  # fmt: skip


NO_OBJECT_REGION = {"from_name": "no_object", "to_name": "image", "type": "choices", "value": {"choices": [NO_OBJECT]}}


def test_config_is_rectangle_labels_over_the_classes_with_a_no_object_choice() -> None:
    config = box_label_config(["car", 'a "quoted" <class>'])
    root = ElementTree.fromstring(config)
    rectangles = next(root.iter("RectangleLabels"))
    assert rectangles.get("name") == "label" and rectangles.get("toName") == "image"
    assert rectangles.get("canRotate") == "false"
    assert config_box_classes(config) == ["car", 'a "quoted" <class>']
    assert [c.get("value") for c in root.iter("Choice")] == [NO_OBJECT]
    assert "<Choices" not in box_label_config(["car"], allow_empty=False)


def test_config_is_not_read_as_a_classification_config() -> None:
    # The class kinds own a config by its <Choices name="label">; the "No object" choice has another name.
    assert config_layout(box_label_config(["car", "person"])) is None
    assert config_box_classes("<View><Choices name='label' toName='image'/></View>") is None


@pytest.mark.parametrize("classes", [[], ["car", "car"], ["car", " "]])
def test_config_refuses_a_bad_class_list(classes: list[str]) -> None:
    with pytest.raises(LabelConfigError):
        box_label_config(classes)


def test_a_result_in_percent_is_stored_in_pixels_of_the_raw_image() -> None:
    reading = read_boxes([rect(10, 20, 25, 50)])
    assert reading.problem is None and reading.answer is not None
    (box,) = reading.answer["boxes"]
    assert (box["x"], box["y"], box["width"], box["height"]) == pytest.approx((80, 120, 200, 300))
    assert box["labels"] == ["car"] and box["rotation"] == 0 and reading.answer["no_object"] is False


def test_box_result_and_read_boxes_round_trip_in_pixels() -> None:
    boxes = [{"label": "car", "x0": 8.0, "y0": 6.0, "x1": 400.0, "y1": 300.0}]
    answer = read_boxes(box_result(boxes, W, H)).answer
    assert answer is not None
    b = answer["boxes"][0]
    assert (b["x"], b["y"], b["x"] + b["width"], b["y"] + b["height"]) == pytest.approx((8, 6, 400, 300))
    assert read_boxes(box_result([], W, H)).answer == {"no_object": True, "boxes": []}


def test_no_object_is_an_answer_and_nothing_drawn_is_blank() -> None:
    assert read_boxes([NO_OBJECT_REGION]).answer == {"no_object": True, "boxes": []}
    assert read_boxes([]).problem == UNREADABLE_EMPTY
    # a choice of another tag is not ours: still blank
    other = {"from_name": "quality", "type": "choices", "value": {"choices": ["blurry"]}}
    assert read_boxes([other]).problem == UNREADABLE_EMPTY


@pytest.mark.parametrize(
    ("result", "problem"),
    [
        (None, UNREADABLE_NULL),
        ({"x": 1}, UNREADABLE_NOT_A_LIST),
        ([rect(1, 1, 5, 5) | {"original_width": None}], UNREADABLE_GEOMETRY),
        ([{"type": "rectanglelabels", "original_width": W, "original_height": H, "value": {"x": "1"}}],
         UNREADABLE_GEOMETRY),
        (["a string region"], "region_not_an_object"),
        ([{"type": "rectanglelabels", "value": "text"}], "value_not_an_object"),
    ],
)
def test_a_result_of_any_shape_is_read_without_raising(result: Any, problem: str) -> None:
    reading = read_boxes(result)
    assert reading.answer is None and reading.problem == problem and reading.detail


def test_a_rotated_box_and_a_polygon_are_stored_as_they_came() -> None:
    polygon = {"from_name": "poly", "type": "polygonlabels", "original_width": W, "original_height": H,
               "value": {"points": [[0, 0], [50, 0], [50, 50]], "polygonlabels": ["car"]}}  # fmt: skip
    answer = read_boxes([rect(10, 10, 10, 10, rotation=30), polygon]).answer
    assert answer is not None
    assert answer["boxes"][0]["rotation"] == 30
    assert answer["boxes"][1] == {"shape": "polygonlabels", "labels": ["car"],
                                  "points": [[0, 0], [400, 0], [400, 300]]}  # fmt: skip


def annotations(*answers: Any) -> pd.DataFrame:
    return pd.DataFrame({"item_id": [f"i{n}" for n in range(len(answers))], "labeler_id": "ann",
                         "label": list(answers)})  # fmt: skip


def stored(*regions: dict[str, Any]) -> dict[str, Any] | None:
    return read_boxes(list(regions)).answer


def test_bad_answers_are_skipped_with_a_counted_reason_and_good_ones_are_votes() -> None:
    frame = annotations(
        stored(rect(10, 10, 20, 20)),                       # a good box
        stored(NO_OBJECT_REGION),                           # an explicit empty set: a vote with no boxes
        stored(rect(10, 10, 20, 20, rotation=15)),          # rotated
        stored(rect(90, 10, 20, 20)),                       # 80 px past the right edge
        stored(rect(10, 10, 0, 20)),                        # zero area
        stored(rect(10, 10, 20, 20, label="bus")),          # unknown class
        stored(rect(10, 10, 20, 20, label=["car", "person"])),
        stored({"from_name": "p", "type": "polygonlabels", "original_width": W, "original_height": H,
                "value": {"points": [[0, 0], [9, 9], [0, 9]], "polygonlabels": ["car"]}}),
        stored(rect(10, 10, 20, 20), NO_OBJECT_REGION),     # "No object" and a box
        None,                                               # unreadable (the sync kept why)
        "car",                                              # a class answer in a box project
        stored(rect(10, 10, 20, 20)),                       # another good one, two regions below
    )
    frame.at[11, "label"] = stored(rect(0, 0, 100.0001, 50), rect(50, 50, 10, 10, label="person"))
    result = bv.box_votes(frame, ["car", "person"])
    assert result.skipped == {
        bv.SKIP_ROTATED: 1, bv.SKIP_OUTSIDE: 1, bv.SKIP_ZERO_AREA: 1, bv.SKIP_UNKNOWN_CLASS: 1,
        bv.SKIP_NOT_ONE_CLASS: 1, bv.SKIP_NOT_RECTANGLE: 1, bv.SKIP_NO_OBJECT_WITH_BOXES: 1,
        bv.SKIP_UNREADABLE: 1, bv.SKIP_NOT_BOXES: 1,
    }  # fmt: skip
    assert set(result.skipped) <= set(bv.BOX_SKIP_REASONS)
    assert result.votes[["item_id", "n_boxes"]].values.tolist() == [["i0", 1], ["i1", 0], ["i11", 2]]
    boxes = result.boxes.set_index("item_id")
    assert boxes.loc["i0", ["x0", "y0", "x1", "y1"]].tolist() == pytest.approx([80, 60, 240, 180])
    # a hair past the border is clipped to the image, not refused
    assert result.boxes[result.boxes["item_id"] == "i11"]["x1"].max() == pytest.approx(W)


def test_an_empty_set_is_not_a_vote_where_the_project_offers_no_no_object() -> None:
    result = bv.box_votes(annotations(stored(NO_OBJECT_REGION)), ["car"], allow_empty=False)
    assert result.votes.empty and result.skipped == {bv.SKIP_EMPTY_NOT_ALLOWED: 1}


def test_the_newest_answer_is_the_vote_even_when_it_is_bad() -> None:
    frame = pd.DataFrame({
        "item_id": ["i", "i"], "labeler_id": ["a", "a"],
        "label": [stored(rect(10, 10, 20, 20)), stored(rect(10, 10, 20, 20, rotation=5))],
        "updated_at": ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"],
    })  # fmt: skip
    result = bv.box_votes(frame, ["car"])
    assert result.votes.empty and result.skipped == {bv.SKIP_ROTATED: 1}


def test_regions_that_are_not_drawings_are_ignored_and_other_drawings_are_kept() -> None:
    comment = {"from_name": "comment", "to_name": "image", "type": "textarea", "value": {"text": ["blurry"]}}
    assert read_boxes([rect(10, 10, 20, 20), comment]).answer == read_boxes([rect(10, 10, 20, 20)]).answer
    assert read_boxes([comment]).problem == UNREADABLE_EMPTY
    ellipse = {"from_name": "e", "type": "ellipselabels", "original_width": W, "original_height": H,
               "value": {"x": 1, "y": 1, "radiusX": 2, "radiusY": 2, "ellipselabels": ["car"]}}  # fmt: skip
    answer = read_boxes([ellipse]).answer
    assert answer is not None and answer["boxes"] == [{"shape": "ellipselabels", "labels": ["car"]}]
