"""Machine labels with a guarantee: the Clopper-Pearson bounds, the fixed-sequence threshold scan, tiers, the check
sample and the production check (core/dataset/tiers.py)."""

from __future__ import annotations

import numpy as np
import pytest

from labeling_assets.core.dataset import tiers


def test_clopper_pearson_bounds_match_their_closed_forms() -> None:
    # With every trial a success the lower bound is (1 - confidence) ** (1 / n); with none the upper bound is
    # 1 - (1 - confidence) ** (1 / n).
    assert tiers.lower_bound(150, 150, 0.95) == pytest.approx(0.05 ** (1 / 150))
    assert tiers.upper_bound(0, 40, 0.95) == pytest.approx(1 - 0.05 ** (1 / 40))
    assert tiers.lower_bound(0, 10) == 0.0 and tiers.upper_bound(10, 10) == 1.0
    assert tiers.lower_bound(0, 0) == 0.0 and tiers.upper_bound(0, 0) == 1.0
    assert tiers.lower_bound(90, 100) < 0.9 < tiers.upper_bound(90, 100)


def test_fewest_items_that_can_show_98_percent_at_95_percent_is_149() -> None:
    assert tiers.min_items_to_pass(0.98, 0.95) == 149
    assert tiers.lower_bound(149, 149, 0.95) >= 0.98 > tiers.lower_bound(148, 148, 0.95)


def test_a_point_estimate_above_the_target_is_not_enough_when_the_bound_is_below_it() -> None:
    # 197 of 200 right at high confidence: 98.5 % >= 98 %, but the 95 % lower bound is about 96 %.
    conf = np.full(200, 0.999)
    correct = np.array([True] * 197 + [False] * 3)
    assert correct.mean() >= 0.98
    decision = tiers.choose_threshold(conf, correct, target=0.98, confidence=0.95)
    assert not decision.on
    assert decision.tests[0].lower_bound < 0.98
    assert "fails" in decision.reason


def test_the_lowest_threshold_whose_bound_clears_the_target_is_chosen() -> None:
    # 600 items at 0.999 and 600 at 0.95, all right; 300 at 0.7 with half wrong.
    conf = np.concatenate([np.full(600, 0.999), np.full(600, 0.95), np.full(300, 0.7)])
    correct = np.concatenate([np.ones(1200, bool), np.arange(300) % 2 == 0])
    decision = tiers.choose_threshold(conf, correct, target=0.98, confidence=0.95)
    # Every grid step down to 0.72 holds the same 1,200 right items; 0.70 takes in the coin flips and fails.
    assert decision.on and decision.threshold == 0.72
    assert (decision.n, decision.n_correct, decision.n_reference) == (1200, 1200, 1500)
    assert decision.lower_bound is not None and decision.lower_bound >= 0.98
    assert not decision.tests[-1].passed  # the scan went on until a threshold failed


def test_the_scan_stops_at_the_first_failure_even_if_a_lower_threshold_would_pass() -> None:
    # The top bin is wrong often enough to fail; below it, thousands of right answers would pass on their own.
    conf = np.concatenate([np.full(700, 0.9995), np.full(5000, 0.95)])
    correct = np.concatenate([np.arange(700) >= 25, np.ones(5000, bool)])
    decision = tiers.choose_threshold(conf, correct, target=0.98, confidence=0.95)
    assert not decision.on
    assert len(decision.tests) == 1 and decision.tests[0].threshold == 0.999
    # Testing 0.95 alone would have passed: that is exactly the look the fixed sequence forbids.
    alone = tiers.choose_threshold(conf[160:], correct[160:], target=0.98, grid=[0.95])
    assert alone.on


def test_thresholds_with_too_few_items_to_pass_are_skipped_not_failed() -> None:
    # 20 items above 0.999 cannot show 98 % (149 needed): skipped, so the scan reaches 0.97, where 400 are.
    conf = np.concatenate([np.full(20, 0.9991), np.full(380, 0.975)])
    decision = tiers.choose_threshold(conf, np.ones(400, bool), target=0.98, confidence=0.95, grid=[0.999, 0.97])
    assert decision.on and decision.threshold == 0.97
    assert [t.threshold for t in decision.tests] == [0.97] and decision.tests[0].n == 400


def test_the_scan_starts_where_four_times_the_bare_minimum_lie_above() -> None:
    # 200 right items at 0.9995 could pass alone (>= 149), but the scan starts where 596 items are (0.95 here).
    conf = np.concatenate([np.full(200, 0.9995), np.full(1000, 0.95)])
    decision = tiers.choose_threshold(conf, np.ones(1200, bool), target=0.98, confidence=0.95, grid=[0.999, 0.95])
    assert [t.threshold for t in decision.tests] == [0.95]


def test_too_few_reference_items_give_no_machine_tier_and_say_why() -> None:
    decision = tiers.choose_threshold(np.full(50, 0.999), np.ones(50, bool), target=0.98)
    assert not decision.on and decision.tests == () and "149" in decision.reason


def test_the_guarantee_holds_in_simulation() -> None:
    """A model right 97.9 % of the time at every confidence: no threshold is truly good enough, so choosing any is
    an error, and fixed-sequence testing makes it in at most 5 % of reference draws (plus sampling slack). The same
    scan on a model right 99.5 % of the time finds a threshold in most draws (the test is not vacuous)."""
    rng = np.random.default_rng(0)
    bad = good = 0
    draws = 400
    for _ in range(draws):
        conf = rng.uniform(0.9, 1.0, 3000)
        bad += tiers.choose_threshold(conf, rng.random(3000) < 0.979, target=0.98, confidence=0.95).on
        good += tiers.choose_threshold(conf, rng.random(3000) < 0.995, target=0.98, confidence=0.95).on
    assert bad / draws <= 0.05 + 0.03
    assert good / draws > 0.9


def test_tiers_of_human_labels() -> None:
    assert tiers.item_tier("adjudicated", False) == "verified"
    assert tiers.item_tier("dawid_skene", True) == "verified"
    assert tiers.item_tier("dawid_skene", False) == "consensus"
    assert tiers.item_tier(None, False) == "consensus"


def test_the_check_sample_is_stable_and_near_its_rate() -> None:
    ids = [f"{k:064x}" for k in range(20_000)]  # ids that share long prefixes still draw apart
    picked = tiers.check_sample(ids, 0.05, seed=3)
    assert 0.04 < picked.mean() < 0.06
    # The same items on a rerun, and adding items never changes an earlier pick.
    assert (tiers.check_sample(ids[:5000], 0.05, seed=3) == picked[:5000]).all()
    assert not (tiers.check_sample(ids, 0.05, seed=4) == picked).all()
    assert tiers.check_sample(["not-hex-id"], 1.0).tolist() == [True]


def test_machine_labels_and_the_reference_come_from_class_pre_labels_only() -> None:
    prelabels = {"a": {"cat": 0.99, "dog": 0.01}, "b": {"cat": 0.4, "dog": 0.6}, "c": {"boxes": []}}
    assert tiers.machine_labels(prelabels, 0.9) == {"a": ("cat", 0.99)}
    conf, correct = tiers.reference(prelabels, {"a": "cat", "b": "cat", "c": "cat"})
    assert conf.tolist() == [0.99, 0.6] and correct.tolist() == [True, False]


def test_the_production_check_flags_when_even_the_upper_bound_misses_the_target() -> None:
    machine = {f"i{k}": "cat" for k in range(100)}
    human_ok = dict(machine)
    human_bad = {k: ("dog" if n < 10 else "cat") for n, k in enumerate(machine)}  # 90 % right
    ok = tiers.production_check(machine, human_ok, target=0.98, confidence=0.95)
    bad = tiers.production_check(machine, human_bad, target=0.98, confidence=0.95)
    assert not ok.below_target and ok.accuracy == 1.0
    assert bad.below_target and bad.upper < 0.98 and len(bad.disagreements) == 10
    assert not tiers.production_check({}, {}, target=0.98, confidence=0.95).below_target


def test_tier_weights_weigh_exclude_and_refuse_unknown_tiers() -> None:
    weights = tiers.item_weights(["machine", "consensus", "verified", None], {"machine": 0.5, "consensus": 0})
    assert weights.tolist() == [0.5, 0.0, 1.0, 1.0]
    assert tiers.item_weights(["machine"], None).tolist() == [1.0]
    with pytest.raises(ValueError, match="machnie"):
        tiers.item_weights(["machine"], {"machnie": 0})
    with pytest.raises(ValueError, match=">= 0"):
        tiers.item_weights(["machine"], {"machine": -1})
