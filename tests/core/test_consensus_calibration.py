"""Calibration of the consensus confidence: ECE, the reliability table, temperature scaling on gold."""

import numpy as np
import pandas as pd
import pytest

from labeling_assets.core.consensus import methods
from labeling_assets.core.consensus.calibration import (
    MIN_GOLD_FOR_CALIBRATION,
    expected_calibration_error,
    fit_temperature,
    reliability_table,
    temper,
)
from labeling_assets.core.consensus.methods import aggregate_full


def _overconfident_crowd(n_items: int = 800, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Two classes; a third of the items are hard (every labeler right 55 %), the rest easy (95 %).
    Dawid-Skene assumes labelers err independently of the item, so it is sure of hard items it gets wrong."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n_items)
    hard = rng.random(n_items) < 1 / 3
    rows = []
    for item in range(n_items):
        for labeler in rng.choice(15, 3, replace=False):
            right = rng.random() < (0.55 if hard[item] else 0.95)
            rows.append((f"i{item:04d}", f"u{labeler}", int(truth[item] if right else 1 - truth[item])))
    return pd.DataFrame(rows, columns=["item_id", "labeler_id", "label"]), pd.Series(
        truth, index=[f"i{i:04d}" for i in range(n_items)]
    )


def test_a_confidence_that_matches_its_accuracy_has_no_calibration_error() -> None:
    confidence = np.array([0.75] * 4 + [0.95] * 20)
    correct = np.array([1, 1, 1, 0] + [1] * 19 + [0])
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.0)


def test_calibration_error_is_the_item_weighted_gap_per_bin() -> None:
    # 10 items at 0.9 of which 5 are right (gap 0.4), 10 at 0.55 all right (gap 0.45).
    confidence = np.array([0.9] * 10 + [0.55] * 10)
    correct = np.array([1] * 5 + [0] * 5 + [1] * 10)
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.425)


def test_a_certain_label_falls_in_the_last_bin_of_the_reliability_table() -> None:
    table = reliability_table([1.0, 0.95, 0.05], [1, 1, 0])
    assert table["bin"].tolist() == [0, 9]
    assert table.loc[table["bin"] == 9, "n"].item() == 2


def test_tempering_keeps_the_most_probable_class_and_softens_above_one() -> None:
    probs = np.array([[0.9, 0.08, 0.02], [0.2, 0.5, 0.3]])
    softer = temper(probs, 2.0)
    assert (softer.argmax(axis=1) == probs.argmax(axis=1)).all()
    assert (softer.max(axis=1) < probs.max(axis=1)).all()
    assert np.allclose(softer.sum(axis=1), 1.0)
    assert np.allclose(temper(probs, 1.0), probs)


def test_the_fitted_temperature_undoes_a_known_overconfidence() -> None:
    # The true log-odds z; a model that reports twice the log-odds is overconfident by T = 2.
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 2.0, 20_000)
    truth = (rng.random(len(z)) < 1 / (1 + np.exp(-z))).astype(int)
    reported = 1 / (1 + np.exp(-2 * z))
    temperature = fit_temperature(np.stack([1 - reported, reported], axis=1), truth)
    assert temperature == pytest.approx(2.0, rel=0.1)


def test_calibrating_on_gold_lowers_the_error_on_other_items_and_never_changes_a_label() -> None:
    frame, truth = _overconfident_crowd()
    gold, rest = truth.iloc[:100], truth.iloc[100:]
    raw = aggregate_full(frame, "dawid_skene", gold=gold, calibrate=False)
    calibrated = aggregate_full(frame, "dawid_skene", gold=gold, calibrate=True)

    assert calibrated.labels["label"].tolist() == raw.labels["label"].tolist()

    def ece(result: methods.ConsensusResult) -> float:
        by_item = result.labels.set_index("item_id").loc[rest.index]
        return expected_calibration_error(by_item["confidence"], by_item["label"] == rest)

    assert ece(calibrated) < ece(raw) - 0.03
    gold_rows = calibrated.labels.set_index("item_id").loc[gold.index]
    assert (gold_rows["confidence"] == 1.0).all()
    assert any("confidence calibrated on 100 gold items" in note for note in calibrated.notes)
    assert calibrated.probabilities is not None and np.allclose(calibrated.probabilities.sum(axis=1), 1.0)


def test_by_default_a_dawid_skene_confidence_is_calibrated_on_enough_gold() -> None:
    # Uncalibrated, this crowd's held-out ECE is about 0.09; tempered on its 100 gold items, about 0.03.
    frame, truth = _overconfident_crowd()
    gold, rest = truth.iloc[:100], truth.iloc[100:]
    by_item = aggregate_full(frame, "dawid_skene", gold=gold).labels.set_index("item_id").loc[rest.index]
    assert expected_calibration_error(by_item["confidence"], by_item["label"] == rest) < 0.06


def test_too_little_gold_leaves_the_confidence_as_the_method_gave_it() -> None:
    frame, truth = _overconfident_crowd(n_items=300)
    gold = truth.iloc[: MIN_GOLD_FOR_CALIBRATION - 1]
    raw = aggregate_full(frame, "dawid_skene", gold=gold, calibrate=False)
    asked = aggregate_full(frame, "dawid_skene", gold=gold, calibrate=True)
    assert asked.labels["confidence"].tolist() == raw.labels["confidence"].tolist()
    assert any("not calibrated" in note for note in asked.notes)


def test_majority_vote_shares_are_not_tempered() -> None:
    frame, truth = _overconfident_crowd(n_items=300)
    raw = aggregate_full(frame, "majority", gold=truth.iloc[:60], calibrate=False)
    asked = aggregate_full(frame, "majority", gold=truth.iloc[:60], calibrate=True)
    assert asked.labels["confidence"].tolist() == raw.labels["confidence"].tolist()
