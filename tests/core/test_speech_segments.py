"""Speech regions: matching, scores, frames, and the segment consensus (ours and the frame majority)."""

import math

import numpy as np

from labeling_assets.core.speech.crowd import SegmentLabeler
from labeling_assets.core.speech.regions import (
    Region,
    frame_accuracy,
    from_frames,
    match_regions,
    pooled_segment_score,
    segment_score,
    to_frames,
)
from labeling_assets.core.speech.segment_consensus import frame_majority, labeler_aware

LABELS = ("en", "vi", "noise")
TRUTH = [Region(0.5, 1.5, "en"), Region(1.8, 3.0, "vi"), Region(3.2, 3.6, "noise"), Region(3.8, 5.0, "en")]


def test_regions_match_one_to_one_on_label_and_iou() -> None:
    found = [
        Region(0.6, 1.5, "en"),
        Region(0.5, 1.3, "en"),
        Region(1.8, 3.0, "en"),
        Region(3.3, 3.45, "noise"),
    ]
    # the better of two candidates wins the truth's region; a wrong label or an IoU of 0.375 matches nothing
    assert match_regions(found, TRUTH) == [(0, 0)]
    assert match_regions(found, TRUTH, same_label=False) == [(0, 0), (2, 1)]
    assert match_regions(found, TRUTH, min_iou=0.3) == [(0, 0), (3, 2)]


def test_segment_score_counts_precision_recall_and_boundary_error() -> None:
    found = [Region(0.6, 1.5, "en"), Region(1.8, 2.9, "vi"), Region(4.0, 4.5, "noise")]
    score = segment_score(found, TRUTH)
    assert score.matched == 2
    assert math.isclose(score.precision, 2 / 3) and math.isclose(score.recall, 2 / 4)
    assert math.isclose(score.boundary_error, (0.1 + 0.0 + 0.0 + 0.1) / 4)
    assert math.isnan(segment_score([], TRUTH).boundary_error)
    pooled = pooled_segment_score([found, TRUTH], [TRUTH, TRUTH])
    assert pooled.matched == 6 and math.isclose(pooled.recall, 6 / 8)


def test_frames_round_trip_and_frame_accuracy() -> None:
    frames = to_frames(TRUTH, LABELS, duration=5.2)
    assert frames.size == 520 and frames[0] == -1 and frames[60] == 0 and frames[200] == 1
    assert from_frames(frames, LABELS) == TRUTH
    assert from_frames(frames, LABELS, min_duration=0.5) == [TRUTH[0], TRUTH[1], TRUTH[3]]
    shifted = [Region(r.start + 0.1, r.end + 0.1, r.label) for r in TRUTH]
    # each of the four regions is wrong for 0.1 s at its start and 0.1 s at its end: 0.8 s of 5.2
    assert math.isclose(frame_accuracy(shifted, TRUTH, LABELS, 5.2), 1 - 0.8 / 5.2, abs_tol=0.01)
    assert frame_accuracy(TRUTH, TRUTH, LABELS, 5.2) == 1.0


def test_frame_majority_takes_the_most_given_label_per_frame() -> None:
    items = [{"a": TRUTH, "b": TRUTH, "c": [Region(0.0, 5.0, "vi")]}]
    assert frame_majority(items, [5.2], LABELS) == [TRUTH]
    # two of three say nothing: nothing wins
    assert frame_majority([{"a": TRUTH, "b": [], "c": []}], [5.2], LABELS) == [[]]


def _crowd(
    labelers: list[SegmentLabeler], n: int, seed: int
) -> tuple[list[dict[str, list[Region]]], list[list[Region]]]:
    rng = np.random.default_rng(seed)
    truth = []
    items = []
    for _ in range(n):
        shift = float(rng.uniform(0, 1))
        t = [Region(r.start + shift, r.end + shift, r.label) for r in TRUTH]
        truth.append(t)
        items.append({lab.name: lab.mark(t, 6.5, LABELS, rng) for lab in labelers})
    return items, truth


def test_ours_learns_a_late_labeler_and_ignores_a_spammer() -> None:
    crowd = [
        SegmentLabeler("late", start_offset=0.15, end_offset=0.15, jitter=0.01, false_regions=0),
        SegmentLabeler("fine1", jitter=0.03, false_regions=0),
        SegmentLabeler("fine2", jitter=0.03, false_regions=0),
        SegmentLabeler("spam", spammer=True),
    ]
    items, truth = _crowd(crowd, 40, seed=3)
    ours = labeler_aware(items, [6.5] * 40, LABELS)
    late, spam = ours.labelers["late"], ours.labelers["spam"]
    assert 0.08 < late.start_offset < 0.2 and 0.08 < late.end_offset < 0.2
    assert spam.weight < 0.5 < ours.labelers["fine1"].weight and spam.false_rate > 0.5
    base = pooled_segment_score(frame_majority(items, [6.5] * 40, LABELS), truth)
    mine = pooled_segment_score(ours.regions, truth)
    assert mine.boundary_error < base.boundary_error and mine.f1 >= base.f1


def test_confidence_is_the_share_of_the_weighted_vote() -> None:
    agreed = {"a": TRUTH, "b": TRUTH, "c": TRUTH}
    split = {"a": TRUTH, "b": [Region(0.0, 5.2, "vi")], "c": [Region(0.0, 5.2, "noise")]}
    # three labelers who agree on nine items split three ways on the tenth: the tenth is far less certain
    ours = labeler_aware([*[agreed] * 9, split], [5.2] * 10, LABELS)
    assert ours.confidence[0] > 0.999 and ours.confidence[9] < 0.7


def test_gold_anchors_a_crowd_that_is_late_as_a_whole() -> None:
    crowd = [
        SegmentLabeler(f"late{i}", start_offset=0.1, end_offset=0.1, jitter=0.02, false_regions=0)
        for i in range(3)
    ]
    items, truth = _crowd(crowd, 20, seed=4)
    without = pooled_segment_score(labeler_aware(items, [6.5] * 20, LABELS).regions, truth)
    gold = {k: truth[k] for k in range(5)}
    with_gold = labeler_aware(items, [6.5] * 20, LABELS, gold=gold)
    assert without.boundary_error > 0.07
    assert pooled_segment_score(with_gold.regions[5:], truth[5:]).boundary_error < 0.04


def test_a_gap_one_careful_labeler_keeps_is_not_lost_to_a_heavier_one_who_missed_the_switch() -> None:
    # "steady" marks exactly, "shaky" adds a false region now and then, so steady carries the larger vote
    # weight; the spammer about none
    shaky = [Region(0.0, 0.4, "vi"), *TRUTH]
    agreed = {"steady": TRUTH, "shaky": shaky, "spam": [Region(2.0, 4.9, "noise")]}
    switch = [Region(0.5, 1.5, "en"), Region(1.7, 3.0, "vi")]  # a 0.2 s pause between two languages
    pause = [Region(0.5, 1.5, "en"), Region(1.7, 3.0, "en")]  # and between two phrases of one language
    three = [Region(0.5, 1.5, "en"), Region(1.7, 3.0, "vi"), Region(3.3, 4.5, "en")]
    items = [
        *[agreed] * 10,
        # steady misses the switch (one region over both phrases, the first's label); shaky keeps the gap
        {"steady": [Region(0.5, 3.0, "en")], "shaky": switch, "spam": [Region(4.0, 4.6, "en")]},
        {"steady": [Region(0.5, 3.0, "en")], "shaky": pause, "spam": [Region(4.0, 4.6, "vi")]},
        # shaky leaves the middle phrase out: its gap spans a phrase, not a pause inside steady's region
        {"steady": three, "shaky": [three[0], three[2]], "spam": [Region(0.1, 0.4, "vi")]},
    ]
    ours = labeler_aware(items, [5.2] * 13, LABELS)
    assert ours.labelers["steady"].weight > ours.labelers["shaky"].weight > ours.labelers["spam"].weight
    assert [(r.label, round(r.start, 1), round(r.end, 1)) for r in ours.regions[10]] == [
        ("en", 0.5, 1.5),
        ("vi", 1.7, 3.0),
    ]
    assert [(r.label, round(r.start, 1), round(r.end, 1)) for r in ours.regions[11]] == [
        ("en", 0.5, 1.5),
        ("en", 1.7, 3.0),
    ]
    assert [r.label for r in ours.regions[12]] == ["en", "vi", "en"]
