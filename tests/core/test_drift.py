"""Drift alarms: CUSUM finds a planted change within the delay benchmarks/drift_alarms.py reports (two weeks), stays
quiet on stable series, and each alarm names what to do."""

import datetime as dt
import math

import numpy as np
import pandas as pd

from labeling_assets.core.drift.alarms import disagreement_alarms, labeler_alarms
from labeling_assets.core.drift.changepoint import mean_cusum, rate_cusum

GOLD_PER_WEEK = 50
MONDAY = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)  # ISO week 2026-W02


def _gold_counts(rates: list[float], seed: int) -> list[int]:
    return [int(k) for k in np.random.default_rng(seed).binomial(GOLD_PER_WEEK, rates)]


def test_a_15_point_drop_in_gold_accuracy_is_found_within_two_weeks() -> None:
    for seed in range(5):
        rates = [0.95] * 12 + [0.80] * 6
        changes = rate_cusum(_gold_counts(rates, seed), [GOLD_PER_WEEK] * len(rates))
        assert changes, f"seed {seed}: no alarm"
        assert 12 <= changes[0].alarm_index <= 13, f"seed {seed}: alarm at week {changes[0].alarm_index}"
        assert changes[0].baseline > 0.9 and changes[0].recent < 0.85


def test_stable_gold_accuracy_gives_no_alarm_in_two_years() -> None:
    weeks = 104
    assert rate_cusum(_gold_counts([0.95] * weeks, 1), [GOLD_PER_WEEK] * weeks) == []


def test_stable_gold_accuracy_gives_under_one_false_alarm_per_ten_labeler_years() -> None:
    """100 labeler-years of stable work (50 labelers, 2 years each): under 10 false alarms (this sample has 4 at
    the default threshold; a threshold of 3 would give 20)."""
    weeks = 104
    false = sum(len(rate_cusum(_gold_counts([0.95] * weeks, s), [GOLD_PER_WEEK] * weeks)) for s in range(50))
    assert false < 10


def test_a_rise_is_found_when_asked_for_and_a_drop_is_not_a_rise() -> None:
    counts = _gold_counts([0.1] * 10 + [0.3] * 4, 0)
    assert rate_cusum(counts, [GOLD_PER_WEEK] * 14, direction=1)
    assert rate_cusum(counts, [GOLD_PER_WEEK] * 14, direction=-1) == []


def test_weeks_without_answers_are_skipped_not_read_as_zero() -> None:
    counts = _gold_counts([0.95] * 20, 1)
    trials = [GOLD_PER_WEEK] * 20
    counts[8:12], trials[8:12] = [0] * 4, [0] * 4  # a month's holiday
    assert rate_cusum(counts, trials) == []


def test_speed_halving_is_found_and_steady_speed_is_not() -> None:
    rng = np.random.default_rng(3)
    steady = (math.log(20) + rng.normal(0, 0.1, 200)).tolist()
    assert mean_cusum(steady) == []
    halved = [math.log(20) + e for e in rng.normal(0, 0.1, 10)] + [math.log(10) + e for e in rng.normal(0, 0.1, 4)]
    changes = mean_cusum(halved)
    assert changes and changes[0].alarm_index <= 11


def _votes(labeler: str, weeks: int, accuracy_by_week: list[float], seed: int) -> pd.DataFrame:
    """``GOLD_PER_WEEK`` gold answers a week (item g<week>_<n>, gold class a), right with the week's accuracy."""
    rng = np.random.default_rng(seed)
    rows = []
    for w in range(weeks):
        for n in range(GOLD_PER_WEEK):
            right = rng.random() < accuracy_by_week[w]
            rows.append({"labeler_id": labeler, "item_id": f"g{w}_{n}", "label": "a" if right else "b",
                         "lead_time_s": 20.0, "created_at": MONDAY + dt.timedelta(weeks=w, hours=n)})  # fmt: skip
    return pd.DataFrame(rows)


def test_a_labeler_whose_gold_accuracy_drops_gets_one_alarm_saying_what_to_review() -> None:
    weeks = 14
    votes = pd.concat([_votes("7", weeks, [0.95] * 10 + [0.75] * 4, 0), _votes("8", weeks, [0.95] * weeks, 1)])
    gold = pd.Series({f"g{w}_{n}": "a" for w in range(weeks) for n in range(GOLD_PER_WEEK)})
    alarms = [a for a in labeler_alarms(votes, gold, ["a", "b"], {"7": "ann", "8": "bob"}) if a.kind == "gold_accuracy"]
    assert [a.subject for a in alarms] == ["ann"]
    alarm = alarms[0]
    assert alarm.since == "2026-W12"  # week 10 after 2026-W02
    assert alarm.key == "gold_accuracy:ann:2026-W12"
    answers_since = GOLD_PER_WEEK * (weeks - 10)
    assert f"review ann's last {answers_since} answers" in alarm.text
    assert "\n" not in alarm.text


def test_model_disagreeing_on_a_class_names_the_class_pair_guideline() -> None:
    rng = np.random.default_rng(0)
    model, truth, week = {}, {}, {}
    for w in range(14):
        for n in range(40):
            item = f"i{w}_{n}"
            wrong = rng.random() < (0.05 if w < 10 else 0.4)
            truth[item], model[item], week[item] = "cat", "dog" if wrong else "cat", f"2026-W{w + 2:02d}"
    alarms = disagreement_alarms(pd.Series(model), pd.Series(truth), pd.Series(week), ["cat", "dog"])
    assert [a.subject for a in alarms] == ["cat"]
    assert "refresh the guideline for class pair cat/dog" in alarms[0].text
