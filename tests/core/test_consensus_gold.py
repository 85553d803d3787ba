"""Gold-anchored consensus: gold clamped in Dawid-Skene, the cross-fitted bake-off that ``auto`` runs."""

import numpy as np
import pandas as pd
import pytest

from labeling_assets.core.consensus.bakeoff import MIN_GOLD_FOR_BAKEOFF, cross_fit, fold_of, winner
from labeling_assets.core.consensus.methods import ConsensusInputError, aggregate, aggregate_full
from tests.core.planted_crowds import one_good_two_random


def _leaning_crowd(n_items: int = 600, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Two balanced classes; every labeler answers 0 for most items of class 1 (a shared lean), so the
    crowd's vote says 0 for most class-1 items and nothing but gold can show that."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n_items)
    rows = []
    for item in range(n_items):
        for labeler in rng.choice(20, 3, replace=False):
            says_true = rng.random() < (0.95 if truth[item] == 0 else 0.45)
            rows.append((f"i{item:04d}", f"u{labeler}", int(truth[item] if says_true else 1 - truth[item])))
    frame = pd.DataFrame(rows, columns=["item_id", "labeler_id", "label"])
    return frame, pd.Series(truth, index=[f"i{i:04d}" for i in range(n_items)])


def _accuracy(labels: pd.DataFrame, truth: pd.Series) -> float:
    return float((labels["label"].to_numpy() == truth.loc[labels["item_id"]].to_numpy()).mean())


# --- gold clamping -------------------------------------------------------------------------------


def test_gold_items_keep_their_gold_label_with_certainty_in_dawid_skene() -> None:
    frame, truth = _leaning_crowd()
    gold = truth.iloc[:50]
    labels = aggregate(frame, "dawid_skene", gold=gold.to_dict()).set_index("item_id")
    assert (labels.loc[gold.index, "label"] == gold).all()
    assert (labels.loc[gold.index, "confidence"] == 1.0).all()


def test_clamped_gold_teaches_the_crowds_lean_and_lifts_the_other_items() -> None:
    frame, truth = _leaning_crowd()
    gold = truth.iloc[:120]
    rest = truth.iloc[120:]
    without = aggregate(frame, "dawid_skene").set_index("item_id").loc[rest.index].reset_index()
    with_gold = aggregate(frame, "dawid_skene", gold=gold).set_index("item_id").loc[rest.index].reset_index()
    assert _accuracy(with_gold, rest) > _accuracy(without, rest) + 0.05


def test_gold_with_a_label_outside_the_classes_is_a_clear_error() -> None:
    frame, _ = _leaning_crowd(n_items=20)
    with pytest.raises(ConsensusInputError, match="gold label"):
        aggregate(frame, "dawid_skene", gold={"i0000": 7})


def test_gold_of_an_item_without_annotations_is_noted_and_unused() -> None:
    frame, truth = _leaning_crowd(n_items=20)
    result = aggregate_full(frame, "dawid_skene", gold={"i0000": int(truth["i0000"]), "never-labeled": 1})
    assert any("1 gold item(s) have no annotations" in note for note in result.notes)
    assert any("1 gold item(s) clamped" in note for note in result.notes)


def test_majority_ignores_gold_and_says_so() -> None:
    frame, truth = _leaning_crowd(n_items=20)
    result = aggregate_full(frame, "majority", gold=truth.iloc[:5])
    assert result.labels.equals(aggregate(frame, "majority"))
    assert any("does not use gold" in note for note in result.notes)


# --- cross-fitting -------------------------------------------------------------------------------


def test_cross_fitting_never_lets_a_gold_items_own_answer_into_its_score() -> None:
    # A method that copies whatever gold it is given and is wrong everywhere else: if a scored item's
    # gold reached the fit that scores it, its accuracy would be 1.0; cross-fitted it must be 0.0.
    n_items, gold_items = 100, np.arange(0, 100, 2)
    gold_classes = np.ones(len(gold_items), dtype=np.int64)

    def copies_gold(method: str, items: np.ndarray, classes: np.ndarray) -> np.ndarray:
        predicted = np.zeros(n_items, dtype=np.int64)
        predicted[items] = classes
        return predicted

    board = cross_fit(copies_gold, gold_items, gold_classes, methods=["copier"])
    assert board.loc[0, "n_gold"] == 50
    assert board.loc[0, "accuracy"] == 0.0


def test_each_fold_is_scored_once_and_folds_are_deterministic() -> None:
    folds = fold_of(53)
    assert np.array_equal(folds, fold_of(53))
    assert sorted(np.bincount(folds).tolist()) == [10, 10, 11, 11, 11]


def test_the_scoreboard_has_a_wilson_interval_around_each_accuracy() -> None:
    def always_one(method: str, items: np.ndarray, classes: np.ndarray) -> np.ndarray:
        return np.ones(40, dtype=np.int64)

    classes = np.asarray([1] * 30 + [0] * 10, dtype=np.int64)
    board = cross_fit(always_one, np.arange(40), classes, methods=["ones"])
    row = board.iloc[0]
    assert row["accuracy"] == pytest.approx(0.75)
    assert row["ci_low"] < 0.75 < row["ci_high"]
    assert row["ci_low"] == pytest.approx(0.5981, abs=1e-3)  # Wilson 95 % for 30 of 40


def test_a_tie_in_the_bake_off_goes_to_the_method_listed_first() -> None:
    def same(method: str, items: np.ndarray, classes: np.ndarray) -> np.ndarray:
        return np.zeros(10, dtype=np.int64)

    board = cross_fit(same, np.arange(10), np.zeros(10, dtype=np.int64), methods=["dawid_skene", "majority"])
    assert winner(board) == "dawid_skene"
    assert board["chosen"].tolist() == [True, False]


# --- the bake-off in auto ------------------------------------------------------------------------


def test_auto_runs_the_bake_off_with_enough_gold_and_picks_the_planted_winner() -> None:
    # Planted: labelers u0-u1 are right 95 % of the time, u2-u9 answer at random, and each item gets
    # one good and two random labelers. Majority follows the random pair whenever it agrees (often
    # wrong); Dawid-Skene learns who is good. The bake-off must see that on gold and pick Dawid-Skene.
    rng = np.random.default_rng(1)
    n_items, k = 400, 4
    truth, frame = one_good_two_random(rng, n_items, k)
    gold = pd.Series(truth[:60], index=range(60))
    result = aggregate_full(frame, "auto", gold=gold)
    assert result.scoreboard is not None
    board = result.scoreboard.set_index("method")
    assert result.method == "dawid_skene" or result.method == "dawid_skene_pooled"
    assert board.loc[result.method, "accuracy"] > board.loc["majority", "accuracy"] + 0.1
    assert board["n_gold"].eq(60).all()
    assert any("bake-off on 60 gold items" in note for note in result.notes)


def test_auto_keeps_its_no_gold_rule_below_the_gold_minimum() -> None:
    frame, truth = _leaning_crowd(n_items=200)
    result = aggregate_full(frame, "auto", gold=truth.iloc[: MIN_GOLD_FOR_BAKEOFF - 1])
    assert result.scoreboard is None
    # The no-gold rule: the Dawid-Skene prior that predicts held-out answers better (here the pooled
    # one, the crowd shares a lean), then run with the gold it has clamped.
    assert result.method == "dawid_skene_pooled"
    assert any(note.startswith("auto chose dawid_skene_pooled: 20 labelers") for note in result.notes)
    assert any(f"{MIN_GOLD_FOR_BAKEOFF - 1} gold item(s) clamped" in note for note in result.notes)


def test_the_pooled_prior_learns_a_lean_the_whole_crowd_shares() -> None:
    # No gold: each labeler has few answers, so only the pooled prior sees the shared lean toward 0.
    frame, truth = _leaning_crowd(n_items=600)
    pooled = aggregate(frame, "dawid_skene_pooled")
    one_coin = aggregate(frame, "dawid_skene")
    assert _accuracy(pooled, truth) > _accuracy(one_coin, truth) + 0.05
