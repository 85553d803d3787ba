"""Labeler gates judge rates by their Wilson interval: fail only when sure, warn when uncertain."""

import datetime as dt

import pandas as pd
import pytest

from labeling_assets.core.consensus.adjudication import apply_adjudications, exclude_paused, truth_for_stats
from labeling_assets.core.consensus.auto_pause import auto_pauses
from labeling_assets.core.consensus.gates import (
    cost_per_correct_label,
    gold_gate,
    per_class_gold,
    speed_gates,
    wilson_interval,
)
from labeling_assets.core.labelstudio.tasks import visible_prelabels
from labeling_assets.core.store.human_loop import sanitize_partition_key


def test_nine_of_ten_on_gold_does_not_fail_and_five_of_thirty_fails() -> None:
    nine = gold_gate(9, 10, 0.8)
    assert nine.verdict != "fail" and nine.n == 10
    assert nine.low < 0.8 < nine.high  # 0.9 on 10 answers cannot show the labeler is above 0.8 either
    five = gold_gate(5, 30, 0.8)
    assert five.verdict == "fail" and five.high < 0.8
    assert gold_gate(95, 100, 0.8).verdict == "pass"
    assert gold_gate(0, 0, 0.8).verdict == "no_data"


def test_wilson_interval_matches_the_textbook_value() -> None:
    low, high = wilson_interval(9, 10)
    assert low == pytest.approx(0.5958, abs=1e-3) and high == pytest.approx(0.9821, abs=1e-3)


def test_speed_is_a_rate_with_an_interval_against_the_peers() -> None:
    rows = [{"labeler_id": "careful", "lead_time_s": 8.0 + i % 5} for i in range(40)]
    rows += [{"labeler_id": "peer", "lead_time_s": 10.0} for _ in range(40)]
    rows += [{"labeler_id": "clicker", "lead_time_s": 0.5} for _ in range(40)]
    rows += [{"labeler_id": "newbie", "lead_time_s": t} for t in (0.5, 0.5, 9.0)]
    gates = speed_gates(pd.DataFrame(rows), ["careful", "clicker", "newbie"])
    assert gates["careful"].verdict == "pass"
    assert gates["clicker"].verdict == "fail" and gates["clicker"].rate == 1.0 and gates["clicker"].n == 40
    assert gates["newbie"].verdict == "warn"  # 2 of 3 fast: too few labels to be sure


def test_per_class_gold_finds_the_one_class_a_good_labeler_gets_wrong() -> None:
    truth = pd.Series({f"i{n}": "cat" if n < 40 else "dog" for n in range(60)})
    labels = pd.DataFrame({"item_id": truth.index, "label": ["cat"] * 40 + ["cat"] * 20})  # every dog called cat
    per_class = per_class_gold(labels, truth)
    assert per_class["cat"].verdict == "pass" and per_class["dog"].verdict == "fail"


def test_cost_per_correct_label_divides_by_accuracy_with_its_interval() -> None:
    cost = cost_per_correct_label(pd.Series([36.0] * 10), 100.0, 9, 10)  # 1.0 per label, 0.9 accurate
    assert cost.per_label == pytest.approx(1.0) and cost.per_correct == pytest.approx(1 / 0.9)
    assert cost.low is not None and cost.high is not None and cost.low < cost.per_correct < cost.high


def test_paused_votes_after_the_pause_are_dropped_and_adjudication_overrides() -> None:
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    votes = pd.DataFrame(
        {
            "item_id": ["a", "a", "a", "b"],
            "labeler_id": ["1", "2", "3", "3"],
            "label": ["cat", "dog", "dog", "cat"],
            "created_at": [t0, t0, t0 - dt.timedelta(days=1), t0 + dt.timedelta(hours=1)],
        }
    )
    kept, dropped = exclude_paused(votes, {"3": [(t0, None)]})
    assert dropped == 1 and list(kept["labeler_id"]) == ["1", "2", "3"]  # the vote before the pause stays
    resumed, none = exclude_paused(votes, {"3": [(t0 - dt.timedelta(days=3), t0 - dt.timedelta(days=2))]})
    assert none == 0 and len(resumed) == 4  # paused and resumed before both votes: they count
    labels = pd.DataFrame({"item_id": ["a"], "label": ["dog"], "confidence": [0.6], "agreement": [0.66],
                           "n_annotators": [3]})  # fmt: skip
    crowd, adjudicated = apply_adjudications(labels, votes, pd.Series({"a": "cat"}))
    assert crowd.empty and adjudicated.iloc[0].to_dict() == {
        "item_id": "a", "label": "cat", "confidence": 1.0, "agreement": pytest.approx(1 / 3), "n_annotators": 3
    }
    assert truth_for_stats(pd.Series({"g": "dog"}), pd.Series({"a": "cat", "g": "cat"})).to_dict() == {
        "g": "dog", "a": "cat"
    }


@pytest.mark.parametrize(
    ("name", "key"),
    [("alice", "alice"), ("bob.smith@example.com", "bob.smith@example.com"), ("Ann Lee/..x", "Ann_Lee_.x")],
)
def test_names_become_safe_partition_keys(name: str, key: str) -> None:
    assert sanitize_partition_key(name) == key


def test_prelabel_visibility_hides_predictions_on_gold_or_everywhere() -> None:
    prelabels = {"g": ({"cat": 0.9}, "m1"), "n": ({"dog": 0.8}, "m1")}
    pending = [{"item_id": "g", "is_gold": True}, {"item_id": "n", "is_gold": False}]
    assert set(visible_prelabels(prelabels, pending, "all")) == {"g", "n"}
    assert set(visible_prelabels(prelabels, pending, "not_gold")) == {"n"}
    assert visible_prelabels(prelabels, pending, "none") == {}


def _gold_votes(labeler: str, right: int, wrong: int, start: dt.datetime) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for n in range(right + wrong):
        label = "a" if n < right else "b"
        rows.append({"item_id": f"g{n}", "labeler_id": labeler, "label": label,
                     "created_at": start + dt.timedelta(minutes=n)})  # fmt: skip
    return rows


def test_auto_pause_only_when_the_gold_gate_is_sure_to_fail_once_and_not_again_on_old_evidence() -> None:
    t0 = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    truth = pd.Series({f"g{n}": "a" for n in range(60)}, dtype=object)
    votes = pd.DataFrame(_gold_votes("good", 9, 1, t0) + _gold_votes("spam", 5, 25, t0))
    decided = auto_pauses(votes, truth, ["good", "spam", "nobody"], {})
    assert [d.labeler_id for d in decided] == ["spam"]  # 9/10 at 0.8 is never paused; 5/30 is
    assert decided[0].gate.high < 0.8 and "5/30" in decided[0].reason
    # Already paused (by the gate or a person): no second pause.
    assert auto_pauses(votes, truth, ["spam"], {"spam": [(t0, None)]}) == []
    # Resumed by a person: the old 5/30 no longer counts ...
    resumed = t0 + dt.timedelta(days=1)
    assert auto_pauses(votes, truth, ["spam"], {"spam": [(t0, resumed)]}) == []
    # ... new answers after the resume that fail surely pause them again, with the evidence's start in the reason.
    later = pd.DataFrame(_gold_votes("spam", 2, 18, resumed + dt.timedelta(hours=1)))
    again = auto_pauses(pd.concat([votes, later]), truth, ["spam"], {"spam": [(t0, resumed)]})
    assert [d.gate.n for d in again] == [20] and "since the resume" in again[0].reason


def test_with_no_trials_the_wilson_interval_is_all_of_zero_to_one_and_every_caller_uses_that_one_interval() -> None:
    """Nothing is known at n = 0: the rate may be anything, and the formula's limit as n -> 0 is (0, 1) (its
    centre and half-width both tend to 1/2). The bake-off's scoreboard once had its own copy that said NaN."""
    from labeling_assets.core.consensus import bakeoff, gates

    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert bakeoff.wilson_interval(0, 0) == (0.0, 1.0)
    assert bakeoff.wilson_interval is gates.wilson_interval
    low, high = wilson_interval(0, 1, z=1e3)  # one trial, a huge z: already almost the whole of [0, 1]
    assert low == 0.0 and high > 0.999
