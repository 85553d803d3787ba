"""The allocator: each queue slot buys the most expected accuracy per unit of cost, with a random arm."""

import numpy as np
import pytest

from labeling_assets.core.allocation.allocator import (
    DEFAULT_EXPERT_COST,
    Costs,
    LabeledItem,
    NewItem,
    allocate,
    costs_from_pay_rates,
    expected_accuracy_after,
    posterior_from_confidence,
)


def _unsure(item_id: str, confidence: float, n_votes: int = 2, n_classes: int = 2) -> LabeledItem:
    return LabeledItem(item_id, posterior_from_confidence(0, confidence, n_classes).tolist(), n_votes)


def test_one_answer_from_a_flat_prior_is_worth_the_labelers_accuracy() -> None:
    flat = np.full((1, 4), 0.25)
    assert expected_accuracy_after(flat, 0.8, 1)[0] == pytest.approx(0.8)


def test_a_second_binary_vote_alone_buys_nothing_but_two_do() -> None:
    """After one vote a binary item can only tie; the allocator must look two answers ahead to see the gain."""
    after_one_vote = np.array([[0.7, 0.3]])
    assert expected_accuracy_after(after_one_vote, 0.7, 1)[0] == pytest.approx(0.7)
    assert expected_accuracy_after(after_one_vote, 0.7, 2)[0] > 0.75
    [decision] = allocate(1, [], [_unsure("x", 0.7, 1)], n_classes=2, labeler_accuracy=0.7, random_share=0.0,
                          expert_accuracy=None)
    assert decision.action == "more_label" and decision.estimated_gain > 0


def test_the_least_sure_item_gets_the_next_label_and_a_sure_one_none() -> None:
    labeled = [_unsure("sure", 0.99), _unsure("coin", 0.55), _unsure("leaning", 0.8)]
    decisions = allocate(2, [], labeled, n_classes=2, labeler_accuracy=0.75, random_share=0.0, expert_accuracy=None)
    assert [d.item_id for d in decisions] == ["coin", "leaning"]
    gains = [d.gain_per_cost for d in decisions]
    assert gains == sorted(gains, reverse=True)


def test_nothing_is_bought_when_no_action_gains() -> None:
    decisions = allocate(3, [], [_unsure("sure", 0.999)], n_classes=2, labeler_accuracy=0.6, random_share=0.0,
                         expert_accuracy=None)
    assert decisions == []


def test_a_new_item_beats_an_almost_sure_one_and_the_model_confident_new_item_waits() -> None:
    new = [NewItem("confident", 0.1, [0.97, 0.01, 0.01, 0.01]), NewItem("unknown", 0.9, None)]
    labeled = [_unsure("almost", 0.95, n_classes=4)]
    decisions = allocate(1, new, labeled, n_classes=4, labeler_accuracy=0.8, random_share=0.0, expert_accuracy=None)
    assert [(d.item_id, d.action) for d in decisions] == [("unknown", "new_item")]
    assert "new item" in decisions[0].reason


def test_costs_decide_between_an_expert_and_another_label() -> None:
    labeled = [_unsure("split", 0.5, n_votes=4)]
    cheap_expert = allocate(1, [], labeled, n_classes=2, labeler_accuracy=0.7, costs=Costs(1.0, 1.5),
                            random_share=0.0)
    dear_expert = allocate(1, [], labeled, n_classes=2, labeler_accuracy=0.7, costs=Costs(1.0, 20.0),
                           random_share=0.0)
    assert cheap_expert[0].action == "expert" and cheap_expert[0].cost == 1.5
    assert dear_expert[0].action == "more_label"


def test_at_the_vote_cap_only_an_expert_is_offered() -> None:
    capped = [_unsure("capped", 0.55, n_votes=5)]
    [decision] = allocate(1, [], capped, n_classes=2, labeler_accuracy=0.7, random_share=0.0, max_votes=5)
    assert decision.action == "expert"
    assert allocate(1, [], capped, n_classes=2, labeler_accuracy=0.7, random_share=0.0, expert_accuracy=None) == []


def test_the_random_arm_takes_its_share_of_slots_seeded() -> None:
    new = [NewItem(f"n{i}", float(i)) for i in range(400)]
    decisions = allocate(100, new, [], n_classes=3, labeler_accuracy=0.8, seed=7)
    assert sum(d.arm == "random" for d in decisions) == 10
    assert decisions == allocate(100, new, [], n_classes=3, labeler_accuracy=0.8, seed=7)
    assert all(d.reason.startswith("random arm") for d in decisions if d.arm == "random")
    # Small runs round the share stochastically, so it still holds on average.
    shares = [
        sum(d.arm == "random" for d in allocate(5, new[:20], [], n_classes=3, labeler_accuracy=0.8, seed=s))
        for s in range(400)
    ]
    assert np.mean(shares) / 5 == pytest.approx(0.10, abs=0.02)
    assert all(d.arm == "allocator" for d in allocate(100, new, [], n_classes=3, labeler_accuracy=0.8,
                                                       random_share=0.0))


def test_ties_between_new_items_follow_the_active_learning_score() -> None:
    new = [NewItem("low", 0.1), NewItem("high", 0.9), NewItem("mid", 0.5)]
    decisions = allocate(3, new, [], n_classes=2, labeler_accuracy=0.8, random_share=0.0)
    assert [d.item_id for d in decisions] == ["high", "mid", "low"]


def test_each_item_is_taken_once_per_run() -> None:
    decisions = allocate(5, [], [_unsure("only", 0.5)], n_classes=2, labeler_accuracy=0.7, random_share=0.0)
    assert len(decisions) == 1


def test_costs_come_from_pay_rates_and_median_times() -> None:
    costs = costs_from_pay_rates(
        pay_rate_per_hour=36.0, pay_rates_per_hour={"ann": 72.0, "eve": 90.0},
        median_time_s={"ann": 10.0, "bob": 20.0, "eve": 40.0}, reviewers=["eve"],
    )
    assert costs.labeler == pytest.approx((72 * 10 / 3600 + 36 * 20 / 3600) / 2)
    assert costs.expert == pytest.approx(90 * 40 / 3600)
    defaults = costs_from_pay_rates(pay_rate_per_hour=None, pay_rates_per_hour={}, median_time_s={"ann": 10.0})
    assert (defaults.labeler, defaults.expert) == (1.0, DEFAULT_EXPERT_COST)
    no_reviewer = costs_from_pay_rates(pay_rate_per_hour=36.0, pay_rates_per_hour={}, median_time_s={"ann": 10.0})
    assert no_reviewer.expert == pytest.approx(no_reviewer.labeler * DEFAULT_EXPERT_COST)


def test_bad_input_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="beat chance"):
        allocate(1, [NewItem("a")], [], n_classes=2, labeler_accuracy=0.5)
    with pytest.raises(ValueError, match="posterior 0"):
        allocate(1, [], [LabeledItem("a", [0.5, 0.5, 0.0], 1)], n_classes=2, labeler_accuracy=0.7)
    with pytest.raises(ValueError, match="random_share"):
        allocate(1, [], [], n_classes=2, labeler_accuracy=0.7, random_share=1.5)


def test_when_a_wrong_training_label_does_harm_fixing_an_unsure_label_beats_a_new_item() -> None:
    """lambda = 0 values the data set's accuracy; lambda > 0 (training data) values fixing a coin-flip label more."""
    new = [NewItem("fresh", 0.5, None)]
    unsure = [_unsure("split", 0.5, n_votes=2, n_classes=4)]
    dataset = allocate(1, new, unsure, n_classes=4, labeler_accuracy=0.8, random_share=0.0, expert_accuracy=None)
    training = allocate(1, new, unsure, n_classes=4, labeler_accuracy=0.8, random_share=0.0, expert_accuracy=None,
                        wrong_label_cost=3.0)
    assert dataset[0].item_id == "fresh"
    assert training[0].item_id == "split"
    with pytest.raises(ValueError, match="wrong_label_cost"):
        allocate(1, new, [], n_classes=4, labeler_accuracy=0.8, wrong_label_cost=-1.0)


def test_a_new_items_weight_scales_its_gain() -> None:
    taught = allocate(2, [NewItem("known", 0.0, None, weight=0.1), NewItem("novel", 0.0, None, weight=0.9)], [],
                      n_classes=2, labeler_accuracy=0.8, random_share=0.0)
    assert [d.item_id for d in taught] == ["novel", "known"]
    assert taught[0].estimated_gain == pytest.approx(9 * taught[1].estimated_gain)
