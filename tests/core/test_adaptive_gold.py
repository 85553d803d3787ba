"""Adaptive gold: a labeler sees gold at the high rate until their gold interval is clear of the gate, then at the
floor; the queue mixes the working labelers' mean; the QA report shows what gold cost and what the allocator did."""

import datetime as dt

import pandas as pd
import pytest

from labeling_assets.core.consensus.adaptive_gold import (
    GoldRates,
    gold_spend,
    labeler_gold_rate,
    queue_gold_rate,
)
from labeling_assets.core.consensus.gates import gold_counts, gold_gate
from labeling_assets.core.consensus.labeler_run import adaptive_gold_rates
from labeling_assets.core.reporting.qa_report import build_qa_report

RATES = GoldRates(high=0.2, floor=0.05)


def test_no_gold_answered_is_the_high_rate() -> None:
    assert labeler_gold_rate(None, RATES) == (0.2, "high: no gold answered yet")


def test_the_rate_drops_to_the_floor_only_once_the_interval_is_clear_of_the_gate() -> None:
    unsure = gold_gate(9, 10, 0.8)  # 0.9 on 10: the interval straddles 0.8
    proven = gold_gate(95, 100, 0.8)  # 0.95 on 100: clear of it
    bad = gold_gate(10, 40, 0.8)  # surely below: still the high rate (the gate pauses them; gold keeps measuring)
    assert unsure.verdict == "warn" and labeler_gold_rate(unsure, RATES)[0] == 0.2
    rate, why = labeler_gold_rate(proven, RATES)
    assert rate == 0.05 and why.startswith("floor: gold interval 0.89")
    assert labeler_gold_rate(bad, RATES)[0] == 0.2


def test_rates_per_labeler_from_their_gold_answers() -> None:
    truth = pd.Series({f"g{i}": "cat" for i in range(100)})
    votes = pd.DataFrame(
        [{"item_id": f"g{i}", "labeler_id": "7", "label": "cat"} for i in range(100)]  # proven
        + [{"item_id": f"g{i}", "labeler_id": "8", "label": "cat" if i % 10 else "dog"} for i in range(10)]  # 9/10
    )
    rates = adaptive_gold_rates(votes, truth, ["7", "8", "9"], gold_counts, 0.8, RATES)
    assert {k: r for k, (r, _) in rates.items()} == {"7": 0.05, "8": 0.2, "9": 0.2}


def test_the_queue_mixes_the_working_labelers_mean_rate() -> None:
    assert queue_gold_rate({}, [], RATES) == (0.2, "no labeler yet: the high rate")
    rate, why = queue_gold_rate({"a": 0.05, "b": 0.2}, ["a", "b", "new"], RATES)
    assert rate == pytest.approx(0.15) and why == "mean of 3 labelers' rates (1 at the floor)"


def test_gold_spend_prices_each_labelers_gold_answers() -> None:
    spend = gold_spend({"a": 10, "b": 5}, 100, {"a": 0.5})
    assert (spend.answers, spend.share_of_answers, spend.cost) == (15, 0.15, 5.0)
    assert "1 labelers without a price left out" in spend.cost_source
    assert gold_spend({"a": 1}, 2, {}).cost is None
    with pytest.raises(ValueError, match="gold rates"):
        GoldRates(high=1.0)


def test_the_qa_report_shows_gold_spend_and_the_allocators_decisions() -> None:
    now = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    votes = pd.DataFrame([
        {"item_id": i, "labeler_id": "ann", "label": "cat", "lead_time_s": 36.0, "created_at": now}
        for i in ["g1", "g2", "x1", "x2"]
    ])  # fmt: skip
    gold = pd.Series({"g1": "cat", "g2": "cat"})
    consensus = pd.DataFrame({"item_id": ["x1"], "label": ["cat"], "confidence": [0.9]})
    totals = {"runs": 2, "decisions": 10, "by_action": {"new_item": 7, "more_label": 3}, "random_arm_share": 0.1,
              "by_arm": {"allocator": {"decisions": 9, "estimated_gain": 1.2, "cost": 9.0}}, "fallbacks": {}}
    report = build_qa_report(votes, gold, consensus, generated_at=now, pay_rate_per_hour=10.0, allocation=totals)
    assert report.summary["gold_answers"] == 2 and report.summary["gold_share_of_answers"] == 0.5
    assert report.summary["gold_cost"] == pytest.approx(0.2)  # 2 answers x 36 s x 10 / 3600
    assert report.summary["allocator_random_arm_share"] == 0.1 and report.summary["allocator_new_item"] == 7
    assert 'data-section="gold_spend"' in report.html and 'data-section="allocation"' in report.html
    assert "random arm chose 10.0%" in report.html
    bare = build_qa_report(votes, gold, consensus, generated_at=now)
    assert 'data-section="allocation"' not in bare.html and "gold_cost" not in bare.summary
