"""Label sets: what a multi-label answer is, and why one is not a vote."""

import numpy as np
import pytest

from labeling_assets.core.label_sets import (
    NONE_OF_THESE,
    SKIP_EMPTY_NOT_ALLOWED,
    SKIP_NONE_WITH_CLASSES,
    SKIP_NOT_A_SET,
    SKIP_UNKNOWN_IN_SET,
    SKIP_UNREADABLE,
    LabelSetError,
    from_indicator,
    label_set,
    to_indicator,
)

CLASSES = ["cat", "dog", "fox"]


def test_a_label_set_is_sorted_and_deduplicated() -> None:
    assert label_set(["fox", "cat", "fox"], CLASSES) == ["cat", "fox"]


def test_none_of_these_is_the_empty_set() -> None:
    assert label_set([NONE_OF_THESE], CLASSES) == []
    assert label_set([], CLASSES) == []


@pytest.mark.parametrize(
    ("value", "allow_empty", "reason"),
    [
        ("cat", True, SKIP_NOT_A_SET),
        (None, True, SKIP_UNREADABLE),  # stored without a label: its result held none (the sync kept why)
        (["cat", "wolf"], True, SKIP_UNKNOWN_IN_SET),
        ([], False, SKIP_EMPTY_NOT_ALLOWED),
        ([NONE_OF_THESE], False, SKIP_EMPTY_NOT_ALLOWED),
        ([NONE_OF_THESE, "dog"], True, SKIP_NONE_WITH_CLASSES),
    ],
)
def test_an_answer_that_is_not_a_set_of_the_project_says_why(
    value: object, allow_empty: bool, reason: str
) -> None:
    with pytest.raises(LabelSetError) as raised:
        label_set(value, CLASSES, allow_empty=allow_empty)
    assert raised.value.reason == reason


def test_indicator_matrix_round_trips_in_class_order() -> None:
    sets = [["fox", "cat"], [], ["dog"]]
    matrix = to_indicator(sets, CLASSES)
    assert matrix.tolist() == [[1, 0, 1], [0, 0, 0], [0, 1, 0]]
    assert matrix.dtype == np.uint8
    assert from_indicator(matrix, CLASSES) == [["cat", "fox"], [], ["dog"]]
