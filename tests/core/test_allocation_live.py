"""The allocator in the live queue: its inputs from the store, its random arm, its audit (migration 18)."""

import math

import numpy as np
import pytest
import sqlalchemy as sa

from labeling_assets.core.allocation.allocator import (
    Costs,
    LabeledItem,
    NewItem,
    allocate,
    posterior_from_confidence,
)
from labeling_assets.core.allocation.live import (
    ALLOCATOR_EXPERT_SOURCE,
    ALLOCATOR_SOURCE,
    AllocatorSettings,
    LabeledRow,
    NewRow,
    plan_slots,
)
from labeling_assets.core.consensus.review_routing import OpenRequest
from labeling_assets.core.labelstudio.allocation_run import (
    AllocationInputs,
    allocate_queue,
    left_to_allocator,
)
from labeling_assets.core.labelstudio.tasks import QueuedItem
from labeling_assets.core.store.allocation import decision_rows, decision_summary, labeled_rows
from labeling_assets.core.store.allocation_schema import allocation_decisions_table
from labeling_assets.core.store.labelstudio_sync import link_tasks, reserve_tasks
from labeling_assets.core.store.schema import (
    LabelStore,
    consensus_table,
    items_table,
    review_requests_table,
    utcnow,
)
from labeling_assets.core.tasks.registry import KINDS, task_kind

PROJECT = 7
CLASSES = ["cat", "dog"]


def _binary(item_id: str, confidence: float, n_votes: int) -> LabeledItem:
    return LabeledItem(item_id, posterior_from_confidence(0, confidence, 2).tolist(), n_votes)


@pytest.mark.parametrize("share", [0.1, 0.25])
def test_the_random_arm_takes_its_share_of_slots_within_a_binomial_bound_and_is_seeded(share: float) -> None:
    """200 runs of 13 slots (shares of small runs are rounded stochastically): the random arm's count over all
    slots is within 4 binomial standard deviations of the share, and the same seed picks the same slots."""
    new = [NewItem(f"n{i}", float(i), None) for i in range(40)]
    labeled = [_binary(f"l{i}", 0.5 + i / 100, 2) for i in range(40)]
    runs, slots = 200, 13
    random_slots = 0
    for seed in range(runs):
        decisions = allocate(slots, new, labeled, n_classes=2, labeler_accuracy=0.75, random_share=share,
                             expert_accuracy=None, seed=seed)  # fmt: skip
        assert len(decisions) == slots
        random_slots += sum(d.arm == "random" for d in decisions)
        again = allocate(slots, new, labeled, n_classes=2, labeler_accuracy=0.75, random_share=share,
                         expert_accuracy=None, seed=seed)  # fmt: skip
        assert again == decisions
    n = runs * slots
    assert abs(random_slots - share * n) <= 4 * math.sqrt(n * share * (1 - share))
    assert random_slots > 0


def test_the_random_arm_at_zero_and_one() -> None:
    new = [NewItem(f"n{i}", float(i), None) for i in range(10)]
    none = allocate(10, new, [], n_classes=2, labeler_accuracy=0.8, random_share=0.0, expert_accuracy=None)
    every = allocate(10, new, [], n_classes=2, labeler_accuracy=0.8, random_share=1.0, expert_accuracy=None)
    assert {d.arm for d in none} == {"allocator"} and {d.arm for d in every} == {"random"}
    assert all(d.reason.startswith("random arm") for d in every)


def test_a_label_under_the_usable_confidence_is_worth_nothing_so_an_unsure_item_beats_a_new_one() -> None:
    """The fix for the digits (docs/allocation.md): valued by accuracy alone, a new item (0.1 -> 0.7 with one
    answer) beats settling a one-vote item; with labels under 0.9 worth nothing, the one-vote item comes first."""
    flat = [NewItem("new", 1.0, None)]
    one_vote = [LabeledItem("seen", posterior_from_confidence(0, 0.7, 10).tolist(), 1)]
    kwargs = dict(n_classes=10, labeler_accuracy=0.7, random_share=0.0, expert_accuracy=None)
    [by_accuracy] = allocate(1, flat, one_vote, **kwargs)  # type: ignore[arg-type]
    [by_usable] = allocate(1, flat, one_vote, usable_confidence=0.9, **kwargs)  # type: ignore[arg-type]
    assert by_accuracy.item_id == "new" and by_usable.item_id == "seen"


@pytest.mark.parametrize("kind_name", sorted(KINDS))
def test_every_kind_with_a_score_gets_decisions_and_non_class_kinds_say_how_they_are_valued(kind_name: str) -> None:
    kind = task_kind(kind_name)
    new = [NewRow("fresh", 1.0, None)]
    labeled = [LabeledRow("unsure", "cat" if kind_name in ("single_label", "text_classes") else ["cat"], 0.55, 2, 2),
               LabeledRow("sure", "cat", 0.999, 3, 3)]  # fmt: skip
    plan = plan_slots(3, new, labeled, kind=kind, classes=CLASSES, gold_correct=0, gold_answered=0, costs=Costs(),
                      max_overlap=5, settings=AllocatorSettings(random_share=0.0))  # fmt: skip
    chosen = {d.item_id: d.action for d in plan.decisions}
    assert chosen.get("fresh") == "new_item" and chosen.get("unsure") == "more_label" and "sure" not in chosen
    assert plan.fallbacks["no gold answered yet: labeler accuracy 0.8"] == 1
    assert plan.fallbacks["new item without a pre-label: flat prior"] == 1
    two_outcomes = f"{kind_name}: valued as right-or-wrong (two outcomes)"
    assert (plan.fallbacks[two_outcomes] == 1) == (kind_name not in ("single_label", "text_classes"))


def test_an_item_whose_asked_answers_have_not_come_is_offered_nothing() -> None:
    waiting = LabeledRow("waiting", "cat", 0.5, 2, 3)  # overlap raised to 3, 2 answers so far
    capped = LabeledRow("capped", "cat", 0.5, 5, 5)
    plan = plan_slots(2, [], [waiting, capped], kind=task_kind("single_label"), classes=CLASSES, gold_correct=40,
                      gold_answered=50, costs=Costs(), max_overlap=5,
                      settings=AllocatorSettings(random_share=0.0))  # fmt: skip
    assert [(d.item_id, d.action) for d in plan.decisions] == [("capped", "expert")]


def test_in_allocator_mode_only_the_allocators_requests_raise_overlap() -> None:
    asks = [OpenRequest(1, "a", "consensus", "more_annotators"), OpenRequest(2, "b", ALLOCATOR_SOURCE, "more_annotators"),
            OpenRequest(3, "c", "consensus", "expert_review")]  # fmt: skip
    kept, left = left_to_allocator(asks)
    assert [r.request_id for r in kept] == [2, 3] and left == 1


def _project(store: LabelStore) -> None:
    """Three regular items with tasks and consensus (split 1-1, 2-0 sure, a raise still waiting), one gold."""
    now = utcnow()
    rows = {"split": (0.5, 2, 2), "sure": (0.999, 2, 2), "raised": (0.5, 2, 3)}
    with store.begin() as conn:
        conn.execute(items_table.insert(), [
            {"item_id": i, "uri": f"/x/{i}", "source_path": i, "n_bytes": 1, "ingested_at": now, "status": "active"}
            for i in [*rows, "gold1"]
        ])  # fmt: skip
        conn.execute(consensus_table.insert(), [
            {"item_id": i, "version": 1, "label": "cat", "method": "majority", "confidence": c, "n_annotators": n,
             "computed_at": now} for i, (c, n, _) in rows.items()
        ])  # fmt: skip
    for overlap in {r[2] for r in rows.values()}:
        reserve_tasks(store, PROJECT, [QueuedItem(i, False, 0, 1.0, None, None) for i, r in rows.items()
                                       if r[2] == overlap], overlap=overlap)  # fmt: skip
    reserve_tasks(store, PROJECT, [QueuedItem("gold1", True, 0, 1.0, None, None)], overlap=2)
    link_tasks(store, PROJECT, {"split": 101, "sure": 102, "raised": 103, "gold1": 104})


def test_labeled_rows_are_the_projects_regular_items_with_a_live_consensus(sqlite_store: LabelStore) -> None:
    _project(sqlite_store)
    rows = {r.item_id: r for r in labeled_rows(sqlite_store, PROJECT)}
    assert sorted(rows) == ["raised", "split", "sure"]  # gold is not the allocator's
    assert (rows["raised"].n_annotators, rows["raised"].required_annotations) == (2, 3)


def test_a_queue_run_carries_out_and_audits_every_decision(sqlite_store: LabelStore) -> None:
    _project(sqlite_store)
    queue = [QueuedItem("new1", False, 0, 0.9, None, None), QueuedItem("goldX", True, 1, 1.0, None, None),
             QueuedItem("new2", False, 2, 0.8, {"cat": 0.95, "dog": 0.05}, "m1")]  # fmt: skip
    inputs = AllocationInputs(CLASSES, max_new_tasks=3, max_overlap=5,
                              settings=AllocatorSettings(random_share=0.0, expert_accuracy=None))  # fmt: skip
    kept, report = allocate_queue(sqlite_store, task_kind("single_label"), inputs, PROJECT, queue, "run-1")
    # 3 slots less one gold: two crowd actions; the 1-1 split and the unknown new item beat the one the model
    # is sure of; the item whose third answer is still coming is not offered anything.
    assert [q.item_id for q in kept] == ["new1", "goldX"] and [q.position for q in kept] == [0, 1]
    assert report["allocator_slots"] == 2 and report["allocator_random_arm"] == 0
    rr = review_requests_table
    asked = sqlite_store.fetch(sa.select(rr.c.item_id, rr.c.source, rr.c.action).where(rr.c.resolved_at.is_(None)))
    assert [(r["item_id"], r["source"], r["action"]) for r in asked] == [("split", ALLOCATOR_SOURCE, "more_annotators")]
    audit = decision_rows(sqlite_store, "run-1")
    assert sorted(zip(audit["item_id"].fillna(""), audit["action"], audit["outcome"], strict=True)) == [
        ("", "fallback", "counted"), ("", "fallback", "counted"),
        ("new1", "new_item", "queued"), ("split", "more_label", "more_annotators requested"),
    ]  # fmt: skip
    made = audit[audit["action"] != "fallback"]
    assert made["estimated_gain"].gt(0).all() and made["cost"].eq(1.0).all() and made["reason"].str.len().gt(0).all()

    # The next run: "split" got its third answer and is sure now; its open request is closed, not raised again.
    with sqlite_store.begin() as conn:
        conn.execute(consensus_table.insert().values(item_id="split", version=2, label="cat", method="majority",
                                                     confidence=0.999, n_annotators=3, computed_at=utcnow()))  # fmt: skip
    allocate_queue(sqlite_store, task_kind("single_label"), inputs, PROJECT, [], "run-2")
    assert sqlite_store.fetch(sa.select(rr.c.id).where(rr.c.resolved_at.is_(None))) == []


def test_an_expert_decision_is_an_expert_request(sqlite_store: LabelStore) -> None:
    _project(sqlite_store)
    inputs = AllocationInputs(CLASSES, max_new_tasks=1, max_overlap=2,  # at the cap: only an expert helps
                              settings=AllocatorSettings(random_share=0.0))  # fmt: skip
    allocate_queue(sqlite_store, task_kind("single_label"), inputs, PROJECT, [], "run-e")
    rr = review_requests_table
    [asked] = sqlite_store.fetch(sa.select(rr.c.item_id, rr.c.source, rr.c.action))
    assert (asked["item_id"], asked["source"], asked["action"]) == ("split", ALLOCATOR_EXPERT_SOURCE, "expert_review")


def test_the_summary_counts_actions_the_random_arm_and_fallbacks(sqlite_store: LabelStore) -> None:
    from labeling_assets.core.allocation.allocator import Decision
    from labeling_assets.core.store.allocation import record_decisions

    made = [Decision(0, "a", "new_item", "allocator", 0.3, 1.0, 0.3, "r"),
            Decision(1, "b", "more_label", "random", 0.1, 1.0, 0.1, "random arm"),
            Decision(2, "c", "expert", "allocator", 0.4, 5.0, 0.08, "e")]  # fmt: skip
    assert record_decisions(sqlite_store, "r1", PROJECT, made, {"a": "queued"}, {"blind mode": 1}) == 4
    record_decisions(sqlite_store, "r2", None, [], {}, {"blind mode": 1})
    summary = decision_summary(decision_rows(sqlite_store))
    assert summary["runs"] == 2 and summary["decisions"] == 3
    assert summary["by_action"] == {"expert": 1, "more_label": 1, "new_item": 1}
    assert summary["random_arm_share"] == pytest.approx(1 / 3, abs=1e-3)
    assert summary["by_arm"]["allocator"]["cost"] == 6.0 and summary["fallbacks"] == {"blind mode": 2}
    assert sqlite_store.count(allocation_decisions_table) == 5
    assert decision_summary(decision_rows(sqlite_store, "none")) == {"runs": 0, "decisions": 0}


def test_a_new_items_model_probabilities_are_its_prior() -> None:
    sure = NewRow("sure", 0.01, {"cat": 0.99, "dog": 0.01})
    coin = NewRow("coin", 0.5, {"cat": 0.5, "dog": 0.5})
    plan = plan_slots(1, [sure, coin], [], kind=task_kind("single_label"), classes=CLASSES, gold_correct=9,
                      gold_answered=10, costs=Costs(), max_overlap=5, settings=AllocatorSettings(random_share=0.0))  # fmt: skip
    assert plan.new_items == ["coin"] and not plan.fallbacks
    assert np.isclose(plan.labeler_accuracy, (9 + 4 * 0.8) / 14)
