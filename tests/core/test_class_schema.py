"""Class schema changes (issue 32.3): how a rename, merge or split is declared, refused, and read through.

Pure rules (core/consensus/class_schema.py): no store, no server.
"""

from typing import Any

import pytest

from labeling_assets.core.consensus.class_schema import (
    ClassChange,
    ClassSchemaError,
    class_mapping,
    map_answer,
    parse_class_changes,
    validate_changes,
)
from labeling_assets.core.errors import ConfigurationError

DECLARED = "rename cat->feline; merge husky, malamute->dog\nsplit bird->sparrow,crow"
BEFORE = ["cat", "husky", "malamute", "bird", "eel"]
AFTER = ["feline", "dog", "sparrow", "crow", "eel"]


def test_a_declaration_parses_into_renames_merges_and_splits_in_order() -> None:
    assert parse_class_changes(DECLARED) == [
        ClassChange("rename", ("cat",), ("feline",)),
        ClassChange("merge", ("husky", "malamute"), ("dog",)),
        ClassChange("split", ("bird",), ("sparrow", "crow")),
    ]
    assert [c.text for c in parse_class_changes(DECLARED)] == [
        "rename cat->feline", "merge husky,malamute->dog", "split bird->sparrow,crow",
    ]
    assert parse_class_changes(None) == parse_class_changes("  ;  ") == []


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("recolor cat->feline", "expected 'rename A->B'"),
        ("rename cat", "expected 'rename A->B'"),
        ("rename cat,dog->feline", "a rename takes one class to another"),
        ("merge cat->dog", "a merge takes two or more classes into one"),
        ("split bird->sparrow", "a split takes one class into two or more"),
        ("merge a,,b->c", "an empty class name"),
        ("split bird->crow,crow", "a class named twice"),
    ],
)
def test_a_malformed_declaration_is_refused_in_one_line(text: str, says: str) -> None:
    with pytest.raises(ClassSchemaError, match=says) as refused:
        parse_class_changes(text)
    assert "\n" not in str(refused.value) and text.split(";")[0].strip() in str(refused.value)
    assert isinstance(refused.value, ConfigurationError)  # a setting to fix: the run fails with this line


def test_a_declaration_that_describes_the_new_list_is_accepted() -> None:
    validate_changes(parse_class_changes(DECLARED), BEFORE, AFTER)
    # A merge may keep one of its classes as the target; a split may land on a class that exists already.
    validate_changes(parse_class_changes("merge husky,malamute->husky; split bird->eel,crow"),
                     ["husky", "malamute", "bird", "eel"], ["husky", "eel", "crow"])  # fmt: skip


@pytest.mark.parametrize(
    ("text", "before", "after", "says"),
    [
        ("rename cat->feline", ["cat", "dog"], ["cat", "dog"], "'feline' is not in the new class list"),
        ("rename cat->feline", ["cat", "dog"], ["cat", "feline", "dog"], "'cat' is still in the new class list"),
        ("rename cow->feline", ["cat", "dog"], ["feline", "dog"], "'cow' is not in the previous class list"),
        ("rename cat->dog", ["cat", "dog"], ["dog"], "'dog' is already a class; declare 'merge cat,dog->dog'"),
        ("merge husky,malamute->dog", ["husky", "malamute"], ["husky", "dog"], "'husky' is still in the new"),
        ("split bird->sparrow,crow", ["bird"], ["sparrow"], "'crow' is not in the new class list"),
        ("rename cat->feline; merge cat,dog->pet", ["cat", "dog"], ["feline", "pet"], "already changed by"),
    ],
)
def test_an_inconsistent_declaration_is_refused_naming_the_change(
    text: str, before: list[str], after: list[str], says: str
) -> None:
    with pytest.raises(ClassSchemaError, match=says) as refused:
        validate_changes(parse_class_changes(text), before, after)
    assert str(refused.value).startswith("class change '") and "\n" not in str(refused.value)


def test_a_renamed_away_class_cannot_come_back_as_a_new_one_but_may_be_renamed_back() -> None:
    retired = {"cat": "rename cat->feline"}
    with pytest.raises(ClassSchemaError, match="class 'cat' cannot come back: 'rename cat->feline' retired it"):
        validate_changes([], ["feline", "dog"], ["feline", "dog", "cat"], retired)
    validate_changes(parse_class_changes("rename feline->cat"), ["feline", "dog"], ["cat", "dog"], retired)
    with pytest.raises(ClassSchemaError, match="no earlier class list"):
        validate_changes(parse_class_changes("rename cat->feline"), None, ["feline"])


def test_the_mapping_composes_renames_and_merges_and_never_maps_a_split() -> None:
    changes = parse_class_changes(DECLARED) + parse_class_changes("rename feline->felid; merge felid,dog->pet")
    assert class_mapping(changes) == {"cat": "pet", "feline": "pet", "felid": "pet", "husky": "pet",
                                      "malamute": "pet", "dog": "pet"}  # fmt: skip
    assert class_mapping(parse_class_changes("rename cat->feline; rename feline->cat")[:1]) == {"cat": "feline"}
    back = [ClassChange("rename", ("cat",), ("feline",)), ClassChange("rename", ("feline",), ("cat",))]
    assert class_mapping(back) == {"feline": "cat"}  # renamed back: a cat answer reads as itself


MAPPING = {"cat": "feline", "husky": "dog", "malamute": "dog"}


def test_every_kinds_answer_reads_through_the_mapping_in_its_own_shape() -> None:
    assert map_answer("cat", MAPPING) == "feline"  # single label
    assert map_answer(["cat"], MAPPING) == ["feline"]  # single label as Label Studio lists it
    assert map_answer("eel", MAPPING) == "eel"
    # multi-label: each member mapped; a merge collapses two members into one; still a sorted set
    assert map_answer(["cat", "husky", "malamute"], MAPPING) == ["dog", "feline"]
    assert map_answer([], MAPPING) == []
    # boxes: each region's class
    boxes: dict[str, Any] = {"boxes": [{"x": 1, "y": 2, "width": 3, "height": 4, "labels": ["husky"]},
                       {"x": 5, "y": 6, "width": 7, "height": 8, "labels": ["eel"]}], "width": 64}  # fmt: skip
    assert map_answer(boxes, MAPPING) == {
        "boxes": [{"x": 1, "y": 2, "width": 3, "height": 4, "labels": ["dog"]},
                  {"x": 5, "y": 6, "width": 7, "height": 8, "labels": ["eel"]}], "width": 64}  # fmt: skip
    assert boxes["boxes"][0]["labels"] == ["husky"]  # the stored answer is not changed in place
    # spans: each entity's type; two identical regions a merge made are kept once
    assert map_answer([[0, 3, "husky"], [0, 3, "malamute"], [4, 9, "cat"]], MAPPING) == [[0, 3, "dog"], [4, 9, "feline"]]
    assert map_answer(None, MAPPING) is None and map_answer(["cat"], {}) == ["cat"]
