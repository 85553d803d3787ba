"""An annotation result of any shape reads as a label or as no label with its reason; none raises."""

from typing import Any

import pandas as pd
import pytest

from labeling_assets.core.consensus.votes import latest_set_votes, latest_votes
from labeling_assets.core.label_sets import NONE_OF_THESE, SKIP_UNREADABLE
from labeling_assets.core.labelstudio.answers import (
    DETAIL_CHARS,
    UNREADABLE_CHOICE,
    UNREADABLE_CHOICES,
    UNREADABLE_EMPTY,
    UNREADABLE_NOT_A_LIST,
    UNREADABLE_NULL,
    UNREADABLE_REGION,
    UNREADABLE_TYPE,
    UNREADABLE_VALUE,
    read_choices,
)
from labeling_assets.core.labelstudio.config import choice_result, config_layout
from labeling_assets.core.tasks import KINDS, task_kind

# The kinds whose answers are choices (a box kind reads regions: tests/core/test_boxes_labelstudio.py).
CHOICE_KINDS = sorted(name for name in KINDS if config_layout(task_kind(name).label_config(["cat", "dog"])) is not None)
REGION = {"from_name": "label", "to_name": "image", "type": "choices"}


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (None, UNREADABLE_NULL),
        ([], UNREADABLE_EMPTY),
        ([{**REGION, "value": {"choices": []}}], UNREADABLE_EMPTY),
        ([{"from_name": "other", "type": "textarea", "value": {"text": ["x"]}}], UNREADABLE_EMPTY),
        ({"choices": ["cat"]}, UNREADABLE_NOT_A_LIST),
        ("cat", UNREADABLE_NOT_A_LIST),
        (["cat"], UNREADABLE_REGION),
        ([None], UNREADABLE_REGION),
        ([[REGION]], UNREADABLE_REGION),
        ([{**REGION, "type": "rectanglelabels", "value": {"x": 1}}], UNREADABLE_TYPE),
        ([{"from_name": "label", "value": {"choices": ["cat"]}}], UNREADABLE_TYPE),
        ([{**REGION, "value": "cat"}], UNREADABLE_VALUE),
        ([{**REGION, "value": ["cat"]}], UNREADABLE_VALUE),
        ([REGION], UNREADABLE_VALUE),
        ([{**REGION, "value": {}}], UNREADABLE_CHOICES),
        ([{**REGION, "value": {"choices": "cat"}}], UNREADABLE_CHOICES),
        ([{**REGION, "value": {"choices": {"cat": True}}}], UNREADABLE_CHOICES),
        ([{**REGION, "value": {"choices": [1]}}], UNREADABLE_CHOICE),
        ([{**REGION, "value": {"choices": [None]}}], UNREADABLE_CHOICE),
        ([{**REGION, "value": {"choices": [["cat"]]}}], UNREADABLE_CHOICE),
    ],
)
@pytest.mark.parametrize("name", CHOICE_KINDS)
def test_a_result_that_holds_no_label_reads_as_none_with_its_reason(
    result: Any, reason: str, name: str
) -> None:
    kind = task_kind(name)
    answer = kind.read_answer(result)
    assert (answer.label, answer.problem) == (None, reason)
    assert answer.detail and len(answer.detail) <= DETAIL_CHARS and "\n" not in answer.detail
    assert kind.answer_from_result(result) is None and answer == read_choices(result)


def test_a_well_formed_result_reads_as_before() -> None:
    single, multi = task_kind("single_label"), task_kind("multi_label")
    assert single.read_answer(choice_result("cat")).label == "cat"
    assert single.read_answer(choice_result(["dog", "cat"])).label == ["dog", "cat"]  # chosen order, kept
    assert multi.read_answer(choice_result(["dog", "cat"])).label == ["cat", "dog"]
    assert multi.read_answer(choice_result([])).label == []  # "None of these" alone: the empty set
    assert single.read_answer(choice_result([])).label == NONE_OF_THESE
    other_tag = {"from_name": "notes", "type": "textarea", "value": "free text"}  # not ours: ignored
    assert single.read_answer([other_tag, *choice_result("cat")]) == single.read_answer(choice_result("cat"))
    assert single.read_answer(choice_result("cat")).problem is None


def test_the_description_of_a_huge_or_binary_result_stays_one_bounded_line() -> None:
    answer = read_choices([{**REGION, "type": "x" * 1_000_000 + "\n\x00", "value": {}}])
    assert answer.problem == UNREADABLE_TYPE
    assert len(answer.detail) <= DETAIL_CHARS and "\x00" not in answer.detail and "\n" not in answer.detail


def test_a_stored_answer_without_a_label_is_skipped_as_a_vote_and_counted_and_no_older_answer_stands_in() -> None:
    rows = pd.DataFrame(
        {
            "item_id": ["i1", "i1", "i2"],
            "labeler_id": ["a", "a", "b"],
            "label": ["cat", None, "dog"],  # a's newest answer on i1 holds no label
            "ls_annotation_id": [1, 2, 3],
            "updated_at": ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z"],
        }
    )
    votes = latest_votes(rows, ["cat", "dog"])
    assert votes.skipped == {SKIP_UNREADABLE: 1}
    assert votes.frame[["item_id", "labeler_id", "label"]].values.tolist() == [["i2", "b", "dog"]]
    sets = rows.assign(label=[["cat"], None, ["dog"]])
    set_votes = latest_set_votes(sets, ["cat", "dog"])
    assert set_votes.skipped == {SKIP_UNREADABLE: 1}
    assert len(set_votes.frame) == 1
