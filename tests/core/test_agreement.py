"""Agreement metrics against textbook worked examples."""

import math

import numpy as np
import pandas as pd
import pytest

from labeling_assets.core.consensus.agreement import (
    cohen_kappa,
    count_matrix,
    fleiss_kappa,
    fleiss_kappa_from_annotations,
    krippendorff_alpha_from_annotations,
    krippendorff_alpha_nominal,
    pairwise_cohen_kappa,
)

# Fleiss' kappa worked example (Wikipedia "Fleiss' kappa"): 10 subjects, 14 raters, 5 categories.
FLEISS_TABLE = np.array(
    [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
)

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: nominal data, four
# observers, twelve units, missing values. Published alpha = 0.743.
NAN = float("nan")
KRIPPENDORFF_TABLE = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
        [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
    ]
).T  # units x observers


def test_cohen_kappa_matches_the_textbook_yes_no_example() -> None:
    # 50 proposals: both yes 20, A yes / B no 5, A no / B yes 10, both no 15 -> p_o 0.7, p_e 0.5, kappa 0.4.
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)


def test_cohen_kappa_is_one_for_identical_raters_and_nan_when_chance_agreement_is_perfect() -> None:
    assert cohen_kappa(["a", "b", "a"], ["a", "b", "a"]) == pytest.approx(1.0)
    assert math.isnan(cohen_kappa(["a", "a"], ["a", "a"]))
    assert math.isnan(cohen_kappa([], []))


def test_cohen_kappa_rejects_unaligned_inputs() -> None:
    with pytest.raises(ValueError, match="aligned"):
        cohen_kappa(["a"], ["a", "b"])


def test_pairwise_cohen_kappa_uses_only_items_both_labelers_labeled() -> None:
    frame = pd.DataFrame(
        [
            ("i1", "u1", "a"),
            ("i1", "u2", "a"),
            ("i2", "u1", "b"),
            ("i2", "u2", "b"),
            ("i3", "u1", "a"),  # u2 never saw i3
            ("i3", "u3", "b"),
        ],
        columns=["item_id", "labeler_id", "label"],
    )
    pairs = pairwise_cohen_kappa(frame).set_index(["labeler_a", "labeler_b"])
    assert pairs.loc[("u1", "u2"), "n_common"] == 2
    assert pairs.loc[("u1", "u2"), "kappa"] == pytest.approx(1.0)
    assert ("u2", "u3") not in pairs.index
    assert pairs.loc[("u1", "u3"), "n_common"] == 1


def test_fleiss_kappa_matches_the_worked_example() -> None:
    result = fleiss_kappa(FLEISS_TABLE)
    assert result.observed_agreement == pytest.approx(0.378, abs=5e-4)
    assert result.expected_agreement == pytest.approx(0.213, abs=5e-4)
    assert result.kappa == pytest.approx(0.210, abs=5e-4)
    assert result.n_items == 10


def test_fleiss_per_class_kappas_match_a_hand_computation_and_average_to_the_overall_kappa() -> None:
    result = fleiss_kappa(FLEISS_TABLE)
    # Category 5 by hand (Fleiss 1971, eq. for kappa_j): p_5 = 32/140, and
    # sum_i n_i5 (14 - n_i5) = 0+24+48+0+13+0+0+24+0+49 = 158 -> kappa_5 = 1 - 158 / (10*14*13 * p q).
    p5 = 32 / 140
    assert result.per_class[4] == pytest.approx(1 - 158 / (10 * 14 * 13 * p5 * (1 - p5)))
    # With a constant number of raters, kappa is the p_j q_j weighted mean of the per-class kappas.
    p = FLEISS_TABLE.sum(axis=0) / FLEISS_TABLE.sum()
    weights = p * (1 - p)
    weighted = sum(weights[j] * result.per_class[j] for j in range(5)) / weights.sum()
    assert weighted == pytest.approx(result.kappa)


def test_fleiss_kappa_ignores_items_with_a_single_rating_and_allows_varying_rater_counts() -> None:
    frame = pd.DataFrame(
        [
            ("i1", "u1", "a"),
            ("i1", "u2", "a"),
            ("i1", "u3", "a"),
            ("i2", "u1", "b"),
            ("i2", "u2", "b"),
            ("i3", "u1", "a"),  # single rating: ignored
        ],
        columns=["item_id", "labeler_id", "label"],
    )
    result = fleiss_kappa_from_annotations(frame, classes=["a", "b", "c"])
    assert result.n_items == 2
    assert result.kappa == pytest.approx(1.0)
    assert math.isnan(result.per_class["c"])  # nobody chose c: its kappa is undefined


def test_fleiss_kappa_of_no_pairable_items_is_nan() -> None:
    assert math.isnan(fleiss_kappa(np.array([[1, 0], [0, 1]])).kappa)


def test_count_matrix_lists_every_class_even_unused_ones() -> None:
    frame = pd.DataFrame([("i1", "u1", "a")], columns=["item_id", "labeler_id", "label"])
    assert list(count_matrix(frame, classes=["a", "b"]).columns) == ["a", "b"]


def test_krippendorff_alpha_matches_the_canonical_example_with_missing_values() -> None:
    assert krippendorff_alpha_nominal(KRIPPENDORFF_TABLE) == pytest.approx(0.743, abs=5e-4)


def test_krippendorff_alpha_matches_the_two_observer_binary_example() -> None:
    # Krippendorff (2011) section A: two observers, ten units, binary -> alpha = 0.095.
    a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    assert krippendorff_alpha_nominal(np.array([a, b]).T) == pytest.approx(0.095, abs=5e-4)


def test_krippendorff_alpha_from_long_annotations_equals_the_matrix_form() -> None:
    rows = [
        (f"u{unit}", f"o{obs}", value)
        for obs, column in enumerate(KRIPPENDORFF_TABLE.T)
        for unit, value in enumerate(column)
        if not math.isnan(value)
    ]
    frame = pd.DataFrame(rows, columns=["item_id", "labeler_id", "label"])
    assert krippendorff_alpha_from_annotations(frame) == pytest.approx(0.743421, abs=1e-6)


def test_krippendorff_alpha_is_nan_when_nothing_is_pairable_or_there_is_no_variation() -> None:
    assert math.isnan(krippendorff_alpha_nominal(np.array([[1, NAN], [NAN, 2]])))
    assert math.isnan(krippendorff_alpha_nominal(np.array([[1, 1], [1, 1]])))
