"""pyannote.metrics' figures of our regions, and where they coincide with regions.py's own (and where not)."""

import math

import numpy as np
import pytest

from labeling_assets.core.speech.crowd import SegmentLabeler
from labeling_assets.core.speech.pyannote_eval import from_annotation, pyannote_score, to_annotation
from labeling_assets.core.speech.regions import HOP, Region, frame_accuracy, n_frames, segment_score
from labeling_assets.core.speech.segment_consensus import frame_majority

LABELS = ("en", "vi", "noise")
TRUTH = [Region(0.5, 1.5, "en"), Region(1.8, 3.0, "vi"), Region(3.2, 3.6, "noise"), Region(3.8, 5.0, "en")]
DURATION = 5.5


def test_regions_round_trip_through_a_pyannote_annotation() -> None:
    assert from_annotation(to_annotation(TRUTH[::-1])) == TRUTH


def test_the_truth_scores_perfectly() -> None:
    score = pyannote_score([TRUTH], [TRUTH], [DURATION])
    assert score.identification_error_rate == 0 and score.detection_error_rate == 0
    assert score.purity == score.coverage == score.boundary_f1 == 1
    assert math.isclose(score.reference_seconds, 1.0 + 1.2 + 0.4 + 1.2)


def test_a_wrong_label_is_an_identification_error_not_a_detection_error_nor_a_boundary_miss() -> None:
    found = [*TRUTH[:1], Region(1.8, 3.0, "en"), *TRUTH[2:]]
    score = pyannote_score([found], [TRUTH], [DURATION])
    assert math.isclose(score.identification_error_rate, 1.2 / 3.8)
    assert score.detection_error_rate == 0 and score.boundary_f1 == 1
    assert segment_score(found, TRUTH).f1 == pytest.approx(2 * 0.75 * 0.75 / 1.5)  # ours: one region lost


def test_where_ours_and_pyannotes_boundary_figures_part() -> None:
    # every region 0.2 s late at both ends: ours matches every region (IoU >= 0.5) and says 0.2 s of boundary
    # error; pyannote at a 0.1 s tolerance finds none of the boundaries, at 0.25 s all of them
    truth = [Region(0.5, 1.5, "en"), Region(2.5, 3.5, "vi"), Region(4.0, 5.0, "en")]
    late = [Region(r.start + 0.2, r.end + 0.2, r.label) for r in truth]
    ours = segment_score(late, truth)
    assert ours.f1 == 1 and math.isclose(ours.boundary_error, 0.2)
    assert pyannote_score([late], [truth], [DURATION], tolerance=0.1).boundary_f1 == 0
    assert pyannote_score([late], [truth], [DURATION], tolerance=0.25).boundary_f1 == 1


def test_identification_errors_are_the_frame_errors_on_the_frame_grid() -> None:
    # a crowd's frame-majority consensus (boundaries on the 10 ms grid) against truths on the grid: pyannote's
    # confusion + miss + false alarm seconds equal regions.frame_accuracy's wrong frames, item by item and pooled
    rng = np.random.default_rng(3)
    crowd = [SegmentLabeler(f"l{k}", start_offset=0.03 * k, jitter=0.05) for k in range(3)]
    crowd.append(SegmentLabeler("spammer", spammer=True))
    truths, items, durations = [], [], []
    for _ in range(12):
        cuts = np.round(np.cumsum(rng.uniform(0.3, 1.5, 9)), 2)
        truth = [
            Region(float(a), float(b), str(rng.choice(LABELS)))
            for a, b in zip(cuts[::2], cuts[1::2], strict=False)
        ]
        duration = float(cuts[-1] + 0.5)
        truths.append(truth)
        durations.append(duration)
        items.append({lab.name: lab.mark(truth, duration, LABELS, rng) for lab in crowd})
    found = frame_majority(items, durations, LABELS)
    wrong = [
        (1 - frame_accuracy(f, t, LABELS, d)) * n_frames(d) * HOP
        for f, t, d in zip(found, truths, durations, strict=True)
    ]
    assert sum(wrong) > 1.0  # the spammer leaves errors to count
    for f, t, d, w in zip(found, truths, durations, wrong, strict=True):
        assert pyannote_score([f], [t], [d]).error_seconds == pytest.approx(w, abs=1e-6)
    pooled = pyannote_score(found, truths, durations)
    assert pooled.error_seconds == pytest.approx(sum(wrong), abs=1e-6)
    assert pooled.identification_error_rate == pytest.approx(sum(wrong) / pooled.reference_seconds)
