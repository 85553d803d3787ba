"""Blind labeling's pure rules (core/labelstudio/blind.py): who receives an item, project titles, valid names."""

import pytest

from labeling_assets.core.labelstudio.blind import (
    BlindItem,
    assign_blind,
    blind_title,
    check_blind_labelers,
    plan_blind_top_up,
)


def test_each_item_goes_to_overlap_distinct_labelers_and_the_projects_stay_level() -> None:
    plan = assign_blind([f"i{n}" for n in range(6)], ["ann", "bob", "cy"], overlap=2)
    receivers = {
        item: sorted(n for n, items in plan.items() if item in items) for item in (f"i{n}" for n in range(6))
    }
    assert all(len(names) == 2 for names in receivers.values())
    assert {name: len(items) for name, items in plan.items()} == {"ann": 4, "bob": 4, "cy": 4}
    assert plan == assign_blind([f"i{n}" for n in range(6)], ["ann", "bob", "cy"], overlap=2)  # deterministic


def test_the_least_loaded_labelers_receive_new_items_first() -> None:
    plan = assign_blind(["x", "y", "z"], ["ann", "bob", "cy"], overlap=1, load={"ann": 5, "bob": 0, "cy": 1})
    assert plan == {"ann": [], "bob": ["x", "y"], "cy": ["z"]}  # y: bob and cy tie at 1, bob is listed first


def test_overlap_above_the_crowd_gives_every_labeler_the_item() -> None:
    assert assign_blind(["x"], ["ann", "bob"], overlap=5) == {"ann": ["x"], "bob": ["x"]}


def test_titles_and_names() -> None:
    assert blind_title("digits", "ann") == "digits — ann"
    assert check_blind_labelers([" ann ", "bob"]) == ["ann", "bob"]
    for bad in (["ann", "ann"], ["review"], [""]):
        with pytest.raises(ValueError, match="blind_labelers"):
            check_blind_labelers(bad)


def test_an_item_short_of_counting_answers_goes_to_a_free_labeler_and_only_once() -> None:
    # ann's vote was given while paused; bob's task was deleted in Label Studio; cy is free.
    item = BlindItem("x", holders=("ann", "bob"), answered=("ann",), live=0, want=2, gone=("bob",))
    [step] = plan_blind_top_up([item], ["ann", "bob", "cy"], paused={"ann"}, load={}, max_overlap=5)
    assert (step.labeler, step.holders_from, step.holders_to) == ("cy", 2, 3)
    assert "0 of 2 answers count" in step.reason
    sent = BlindItem("x", holders=("ann", "bob", "cy"), answered=("ann",), live=0, want=2, gone=("bob",))
    assert plan_blind_top_up([sent], ["ann", "bob", "cy"], paused={"ann"}, load={}, max_overlap=5) == []
    waiting = BlindItem("y", holders=("ann", "bob"), answered=("ann",), live=1, want=2)
    assert plan_blind_top_up([waiting], ["ann", "bob", "cy"], paused=set(), load={}, max_overlap=5) == []
    capped = BlindItem("z", holders=("ann", "bob"), answered=("ann", "bob"), live=0, want=2)
    assert (
        plan_blind_top_up([capped], ["ann", "bob", "cy"], paused={"ann", "bob"}, load={}, max_overlap=2) == []
    )


def test_an_item_waiting_too_long_on_a_labeler_goes_to_one_more_who_keeps_it_once_sent() -> None:
    # ann answered; bob's task has been open past the queue's wait: one more labeler, bob keeps his task.
    item = BlindItem("x", holders=("ann", "bob"), answered=("ann",), live=1, want=2, stale=("bob",))
    [step] = plan_blind_top_up([item], ["ann", "bob", "cy", "dee"], paused=set(), load={"cy": 3}, max_overlap=5)
    assert (step.labeler, step.holders_from, step.holders_to) == ("dee", 2, 3)  # the least loaded free labeler
    assert "bob: open too long" in step.reason
    sent = BlindItem("x", holders=("ann", "bob", "dee"), answered=("ann",), live=1, want=2, stale=("bob",))
    assert plan_blind_top_up([sent], ["ann", "bob", "cy", "dee"], paused=set(), load={}, max_overlap=5) == []
    # Not stale (or no wait configured): bob's answer is still to come.
    fresh = BlindItem("x", holders=("ann", "bob"), answered=("ann",), live=1, want=2)
    assert plan_blind_top_up([fresh], ["ann", "bob", "cy"], paused=set(), load={}, max_overlap=5) == []
