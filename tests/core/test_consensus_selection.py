"""auto without gold: the Dawid-Skene prior chosen by held-out answers; the bake-off keeps that choice
unless a challenger is significantly better on gold."""

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from labeling_assets.core.consensus.bakeoff import cross_fit, mcnemar_p, winner
from labeling_assets.core.consensus.encoding import Encoded, encode
from labeling_assets.core.consensus.methods import aggregate, aggregate_full
from labeling_assets.core.consensus.selection import heldout_folds, heldout_log_likelihood, select
from tests.core.planted_crowds import one_good_two_random


def _crowd(lean: bool, n_items: int = 600, k: int = 4, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Three of 20 labelers per item. lean=True: every labeler answers class 0 for 55 % of the items of
    other classes (a lean the whole crowd shares). lean=False: each labeler is right 65 % of the time
    and otherwise answers their own favourite class (labeler j -> j mod k), so errors differ per labeler."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n_items)
    rows = []
    for item in range(n_items):
        for labeler in rng.choice(20, 3, replace=False):
            t = int(truth[item])
            if lean:
                right = rng.random() < (0.95 if t == 0 else 0.45)
                answer = t if right else (0 if t != 0 else int(rng.integers(1, k)))
            else:
                answer = t if rng.random() < 0.65 else int(labeler % k)
            rows.append((f"i{item:04d}", f"u{labeler:02d}", answer))
    return pd.DataFrame(rows, columns=["item_id", "labeler_id", "label"]), truth


def _scores(note: str) -> dict[str, float]:
    tail = note.split("higher is better): ")[1]
    return {m: float(v) for m, v in (part.rsplit(" ", 1) for part in tail.split(", "))}


@pytest.mark.parametrize(("lean", "expected"), [(True, "dawid_skene_pooled"), (False, "dawid_skene")])
def test_auto_without_gold_uses_the_prior_that_predicts_held_out_answers_better(lean: bool, expected: str) -> None:
    frame, truth = _crowd(lean)
    result = aggregate_full(frame, "auto")
    assert result.method == expected
    note = next(n for n in result.notes if n.startswith("auto chose"))
    scores = _scores(note)
    other = "dawid_skene" if expected == "dawid_skene_pooled" else "dawid_skene_pooled"
    assert scores[expected] > scores[other]
    # The choice is the one that labels this crowd better, and dawid_skene_selected is the same rule.
    accuracy = {m: (aggregate(frame, m)["label"].to_numpy() == truth).mean() for m in (expected, other)}
    assert accuracy[expected] >= accuracy[other]
    assert aggregate_full(frame, "dawid_skene_selected").method == expected


def _answers_model(answer_zero: float) -> Callable[[Encoded], tuple[np.ndarray, np.ndarray]]:
    """A stand-in fit whose every labeler answers class 0 with probability ``answer_zero``."""

    def fit(enc: Encoded) -> tuple[np.ndarray, np.ndarray]:
        confusion = np.tile([answer_zero, 1.0 - answer_zero], (enc.n_labelers, enc.n_classes, 1))
        return np.full((enc.n_items, enc.n_classes), 1.0 / enc.n_classes), confusion

    return fit


def _answers(share_zero: float, n_items: int = 300) -> Encoded:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "item_id": np.repeat([f"i{i:04d}" for i in range(n_items)], 2),
            "labeler_id": [f"u{j}" for j in rng.integers(0, 10, 2 * n_items)],
            "label": (rng.random(2 * n_items) >= share_zero).astype(int),
        }
    ).drop_duplicates(["item_id", "labeler_id"])
    return encode(frame, None)


def test_auto_weighs_the_weak_prior_among_the_candidates() -> None:
    frame, _ = _crowd(lean=True)
    scores = _scores(next(n for n in aggregate_full(frame, "auto").notes if n.startswith("auto chose")))
    assert set(scores) == {"dawid_skene", "dawid_skene_pooled", "dawid_skene_weak"}


def test_the_weak_prior_wins_only_when_clearly_better_on_held_out_answers() -> None:
    # Answers 80 % class 0: a model that says 0.8 predicts them far better than one that says 0.5.
    clear = _answers(0.8)
    fits = {"dawid_skene": _answers_model(0.5), "dawid_skene_pooled": _answers_model(0.5), "dawid_skene_weak": _answers_model(0.8)}
    assert select(clear, fits)[0] == "dawid_skene_weak"
    # Answers about half class 0: 0.51 scores a hair above 0.5 on average, well within chance.
    close = _answers(0.52)
    fits["dawid_skene_weak"] = _answers_model(0.51)
    chosen, scores = select(close, fits)
    assert scores["dawid_skene_weak"] > scores["dawid_skene"]
    assert chosen == "dawid_skene"


def test_held_out_folds_hide_each_answer_once_and_never_all_of_an_items_answers() -> None:
    frame = pd.DataFrame(
        {
            "item_id": ["a", "a", "b", "b", "b", "b", "b", "c"],
            "labeler_id": ["u1", "u2", "u1", "u2", "u3", "u4", "u5", "u1"],
            "label": [0, 1, 0, 0, 1, 1, 0, 1],
        }
    )
    enc = encode(frame, None)
    for seed in range(20):
        fold = heldout_folds(enc, folds=3, seed=seed)
        assert fold[enc.item == 2].tolist() == [-1]  # c has one answer: nothing could predict it
        for f in range(3):
            for item in (0, 1):
                assert ((enc.item == item) & (fold != f)).any()  # the item keeps an answer
        # b's five answers over three folds: 2, 2, 1 (dealt in turn).
        assert sorted(np.bincount(fold[enc.item == 1], minlength=3).tolist()) == [1, 2, 2]


def test_mcnemar_p_is_the_binomial_upper_tail_of_the_discordant_items() -> None:
    assert mcnemar_p(5, 0) == pytest.approx(1 / 32)
    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(3, 3) == pytest.approx(sum([20, 15, 6, 1]) / 64)


def _board(right: dict[str, int], n: int = 40, default: str = "dawid_skene") -> pd.DataFrame:
    """Each method right on its first right[method] of n gold items (so the discordant items are known)."""

    def fit(method: str, items: np.ndarray, classes: np.ndarray) -> np.ndarray:
        predicted = np.ones(n, dtype=np.int64)
        predicted[: right[method]] = 0
        return predicted

    return cross_fit(fit, np.arange(n), np.zeros(n, dtype=np.int64), methods=list(right), default=default)


def test_the_bake_off_keeps_the_default_unless_a_challenger_is_significantly_better() -> None:
    # majority is right on 3 more of 40 gold items than the default: 3 wins, 0 losses, p = 1/8.
    board = _board({"dawid_skene": 30, "dawid_skene_pooled": 29, "majority": 33})
    assert winner(board) == "dawid_skene"
    assert board.set_index("method").loc["majority", "p_value"] == pytest.approx(1 / 8)
    assert board.set_index("method").loc["majority", "gain"] == pytest.approx(3 / 40)
    # 8 more: p = 1/256 < 0.025, so it replaces the default; the default given decides what is kept.
    assert winner(_board({"dawid_skene": 30, "dawid_skene_pooled": 29, "majority": 38})) == "majority"
    assert winner(_board({"dawid_skene": 30, "dawid_skene_pooled": 29, "majority": 31}, default="dawid_skene_pooled")) == "dawid_skene_pooled"


def test_the_model_scored_on_held_out_answers_never_sees_them() -> None:
    frame, _ = _crowd(lean=True, n_items=60)
    enc = encode(frame, None)
    held = heldout_folds(enc) == 0
    seen: list[set[tuple[int, int]]] = []

    def fit(subset: Encoded) -> tuple[np.ndarray, np.ndarray]:
        seen.append(set(zip(subset.item.tolist(), subset.labeler.tolist(), strict=True)))
        k = subset.n_classes
        return np.full((subset.n_items, k), 1.0 / k), np.full((subset.n_labelers, k, k), 1.0 / k)

    score = heldout_log_likelihood(enc, fit)
    assert score == pytest.approx(np.log(1 / 4))  # uniform model: every held-out answer has p = 1/4
    hidden = set(zip(enc.item[held].tolist(), enc.labeler[held].tolist(), strict=True))
    assert len(seen) == 1 and hidden and not (seen[0] & hidden)
    assert len(seen[0]) + len(hidden) == len(enc.item)


def test_auto_replaces_its_no_gold_choice_when_gold_shows_a_method_is_significantly_better() -> None:
    # Planted: pred_probs make CROWDLAB auto's no-gold choice, but they are confidently wrong on every
    # item; one 95 %-right labeler and two random ones per item, so Dawid-Skene is right on most gold.
    rng = np.random.default_rng(1)
    n_items, k = 400, 4
    truth, frame = one_good_two_random(rng, n_items, k)
    wrong = (truth + 1 + rng.integers(0, k - 1, n_items)) % k
    pred_probs = np.full((n_items, k), 0.02)
    pred_probs[np.arange(n_items), wrong] = 1 - 0.02 * (k - 1)
    result = aggregate_full(frame, "auto", pred_probs=pred_probs, gold=pd.Series(truth[:60], index=range(60)))
    assert result.scoreboard is not None
    board = result.scoreboard.set_index("method")
    assert np.isnan(board.loc["crowdlab", "p_value"])  # the default, the others are tested against it
    assert result.method == "dawid_skene"
    assert board.loc["dawid_skene", "p_value"] < 0.025 and board.loc["dawid_skene", "chosen"]
    assert any("significantly better than the no-gold choice crowdlab" in n for n in result.notes)
