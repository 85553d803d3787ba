"""Per-labeler statistics: gold accuracy, kappa vs consensus, time, throughput, class usage, trend, speed."""

import datetime as dt

import pandas as pd
import pytest

from labeling_assets.core.consensus.labeler_stats import (
    class_usage,
    compute_labeler_stats,
    iso_week,
    labels_per_day,
    speed_check,
    time_stats,
    weekly_trend,
)

CLASSES = ["a", "b", "c"]
MONDAY = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)  # ISO week 2026-W02


def _labels(labels: list[str], *, start: dt.datetime = MONDAY, every: dt.timedelta = dt.timedelta(hours=1)):
    return pd.DataFrame(
        {
            "item_id": [f"i{n}" for n in range(len(labels))],
            "label": labels,
            "lead_time_s": [float(10 + n) for n in range(len(labels))],
            "created_at": [start + n * every for n in range(len(labels))],
        }
    )


def test_gold_accuracy_counts_only_gold_items() -> None:
    labels = _labels(["a", "b", "c", "a"])
    gold = pd.Series({"i0": "a", "i1": "c"})  # right on i0, wrong on i1; i2, i3 are not gold
    stats = compute_labeler_stats(labels, labeler_id="u1", classes=CLASSES, gold=gold)
    assert stats.gold_accuracy == pytest.approx(0.5)
    assert stats.n_gold == 2


def test_gold_accuracy_is_none_without_gold_items() -> None:
    stats = compute_labeler_stats(_labels(["a"]), labeler_id="u1", classes=CLASSES, gold=pd.Series(dtype=object))
    assert stats.gold_accuracy is None
    assert stats.n_gold == 0


def test_kappa_vs_consensus_is_one_for_perfect_agreement_and_uses_shared_items_only() -> None:
    labels = _labels(["a", "b", "c", "a"])
    consensus = pd.Series({"i0": "a", "i1": "b", "i2": "c"})
    stats = compute_labeler_stats(labels, labeler_id="u1", classes=CLASSES, consensus=consensus)
    assert stats.kappa_vs_consensus == pytest.approx(1.0)
    assert stats.n_with_consensus == 3


def test_kappa_vs_consensus_is_low_for_a_labeler_who_disagrees() -> None:
    labels = _labels(["a", "b", "c", "a", "b", "c"])
    consensus = pd.Series({"i0": "b", "i1": "c", "i2": "a", "i3": "b", "i4": "c", "i5": "a"})
    stats = compute_labeler_stats(labels, labeler_id="u1", classes=CLASSES, consensus=consensus)
    assert stats.kappa_vs_consensus is not None and stats.kappa_vs_consensus < 0


def test_time_stats_report_median_and_p90_and_ignore_missing_or_negative_times() -> None:
    median, p90 = time_stats(pd.Series([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, None, -1.0]))
    assert median == pytest.approx(5.5)
    assert p90 == pytest.approx(9.1)
    assert time_stats(pd.Series([None], dtype=float)) == (None, None)


def test_labels_per_day_divides_by_active_days_not_calendar_span() -> None:
    monday = [MONDAY + dt.timedelta(minutes=m) for m in range(6)]
    friday = [MONDAY + dt.timedelta(days=4, minutes=m) for m in range(4)]
    assert labels_per_day(pd.Series(monday + friday)) == pytest.approx(5.0)
    assert labels_per_day(pd.Series([], dtype="datetime64[ns, UTC]")) is None


def test_class_distribution_lists_every_class() -> None:
    stats = compute_labeler_stats(_labels(["a", "a", "b"]), labeler_id="u1", classes=CLASSES)
    assert stats.class_distribution == {"a": 2, "b": 1, "c": 0}
    assert stats.n_labels == 3


def test_class_usage_flags_a_labeler_who_avoids_a_class_the_items_contain() -> None:
    # The consensus says a third of the items are "c"; this labeler never answers "c".
    labels = _labels(["a", "b", "a"] * 10)
    consensus = pd.Series({f"i{n}": CLASSES[n % 3] for n in range(30)})
    usage = {u.label: u for u in class_usage(labels, CLASSES, consensus=consensus, high_ratio=1.5)}
    assert usage["c"].flag == "avoids"
    assert usage["c"].expected == pytest.approx(10.0)
    assert usage["a"].flag == "overuses"  # 20 "a" where 10 were expected: ratio 2 > 1.5
    assert usage["b"].flag == ""


def test_class_usage_does_not_flag_small_numbers() -> None:
    labels = _labels(["a", "a"])
    consensus = pd.Series({"i0": "b", "i1": "c"})
    assert [u.flag for u in class_usage(labels, CLASSES, consensus=consensus)] == ["", "", ""]


def test_class_usage_falls_back_to_population_shares_without_consensus() -> None:
    labels = _labels(["a"] * 15)  # 5 of each class expected: enough to flag (min_count=5)
    usage = class_usage(labels, CLASSES, population_shares={"a": 1, "b": 1, "c": 1})
    assert [u.flag for u in usage] == ["overuses", "avoids", "avoids"]
    assert class_usage(labels, CLASSES) == []


def test_weekly_trend_has_one_window_per_iso_week_and_keeps_the_last_ones() -> None:
    labels = _labels(["a"] * 6, every=dt.timedelta(days=7))
    trend = weekly_trend(labels, labeler_id="u1", classes=CLASSES, last_weeks=4)
    assert [s.window for s in trend] == ["2026-W04", "2026-W05", "2026-W06", "2026-W07"]
    assert all(s.n_labels == 1 for s in trend)


def test_weekly_trend_shows_gold_accuracy_falling() -> None:
    labels = _labels(["a", "a", "b", "b"], every=dt.timedelta(days=7))
    gold = pd.Series({"i0": "a", "i1": "a", "i2": "a", "i3": "a"})
    trend = weekly_trend(labels, labeler_id="u1", classes=CLASSES, gold=gold)
    assert [s.gold_accuracy for s in trend] == [1.0, 1.0, 0.0, 0.0]


def test_iso_week_names_use_the_iso_year() -> None:
    # 2027-01-01 is a Friday in ISO week 53 of 2026.
    assert iso_week(pd.Series([dt.datetime(2027, 1, 1, tzinfo=dt.UTC)])).tolist() == ["2026-W53"]


def test_speed_check_flags_a_labeler_far_faster_than_peers() -> None:
    result = speed_check(1.0, [10.0, 12.0, 8.0], factor=0.25)
    assert result.too_fast
    assert result.peer_median_time_s == pytest.approx(10.0)
    assert "0.10x" in result.reason


def test_speed_check_passes_normal_speed_and_needs_peers() -> None:
    assert not speed_check(9.0, [10.0, 12.0, 8.0]).too_fast
    assert not speed_check(1.0, [10.0]).too_fast  # one peer is no baseline
    assert not speed_check(None, [10.0, 12.0]).too_fast


def test_stats_row_has_the_label_store_columns() -> None:
    stats = compute_labeler_stats(_labels(["a", "b"]), labeler_id="u1", classes=CLASSES)
    assert set(stats.row()) == {
        "labeler_id",
        "window",
        "gold_accuracy",
        "kappa_vs_consensus",
        "n_labels",
        "median_time_s",
        "p90_time_s",
        "labels_per_day",
        "class_distribution",
    }
    assert stats.row()["median_time_s"] == pytest.approx(10.5)
