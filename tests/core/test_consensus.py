"""Label aggregation: majority, Dawid-Skene, CROWDLAB and auto, including the edge cases of DESIGN §5."""

import numpy as np
import pandas as pd
import pytest

from labeling_assets.core.consensus.methods import ConsensusInputError, aggregate, aggregate_full


def _frame(rows: list[tuple[object, object, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["item_id", "labeler_id", "label"])


def _crowd(
    accuracies: list[float],
    *,
    n_items: int = 300,
    n_classes: int = 4,
    overlap: int = 3,
    seed: int = 0,
    biased: dict[int, int] | None = None,
) -> tuple[pd.DataFrame, pd.Series]:
    """A simulated crowd: labeler j is right with probability accuracies[j], else picks a wrong class at
    random; a labeler in ``biased`` answers that class whenever wrong... and half the time anyway."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_classes, n_items)
    who = np.argsort(rng.random((n_items, len(accuracies))), axis=1)[:, :overlap]
    item = np.repeat(np.arange(n_items), overlap)
    labeler = who.ravel()
    right = rng.random(len(item)) < np.asarray(accuracies)[labeler]
    wrong = (truth[item] + rng.integers(1, n_classes, len(item))) % n_classes
    label = np.where(right, truth[item], wrong)
    for j, favourite in (biased or {}).items():
        mine = labeler == j
        label[mine & (rng.random(len(item)) < 0.5)] = favourite
    frame = pd.DataFrame(
        {"item_id": [f"i{i:04d}" for i in item], "labeler_id": [f"u{j}" for j in labeler], "label": label}
    )
    return frame, pd.Series(truth, index=[f"i{i:04d}" for i in range(n_items)])


def _accuracy(labels: pd.DataFrame, truth: pd.Series) -> float:
    return float((labels["label"].to_numpy() == truth.loc[labels["item_id"]].to_numpy()).mean())


# --- output shape and API ---------------------------------------------------------------------


@pytest.mark.parametrize("method", ["majority", "dawid_skene"])
def test_aggregate_returns_one_row_per_item_sorted_by_item_id(method: str) -> None:
    frame = _frame([("b", "u1", "cat"), ("a", "u1", "dog"), ("a", "u2", "dog"), ("b", "u2", "cat")])
    labels = aggregate(frame, method)
    assert list(labels.columns) == ["item_id", "label", "confidence", "n_annotators", "agreement"]
    assert labels["item_id"].tolist() == ["a", "b"]
    assert labels["label"].tolist() == ["dog", "cat"]
    assert labels["n_annotators"].tolist() == [2, 2]


def test_majority_confidence_is_the_vote_share() -> None:
    frame = _frame([("a", "u1", "x"), ("a", "u2", "x"), ("a", "u3", "y"), ("a", "u4", "x")])
    labels = aggregate(frame, "majority")
    assert labels.loc[0, "label"] == "x"
    assert labels.loc[0, "confidence"] == pytest.approx(0.75)
    assert labels.loc[0, "agreement"] == pytest.approx(0.75)


def test_integer_labels_come_back_as_integers() -> None:
    frame = _frame([("a", "u1", 3), ("a", "u2", 3), ("b", "u1", 1)])
    labels = aggregate(frame, "majority")
    assert labels["label"].tolist() == [3, 1]
    assert all(isinstance(v, (int, np.integer)) for v in labels["label"])


# --- ties and determinism ----------------------------------------------------------------------


def test_majority_tie_goes_to_the_class_the_crowd_answers_least_often() -> None:
    # "b" is the crowd's habitual answer, so a vote for it says less than a vote for "a".
    frame = _frame([("tie", "u1", "b"), ("tie", "u2", "a"), ("other", "u1", "b"), ("other", "u2", "b")])
    assert aggregate(frame, "majority").set_index("item_id").loc["tie", "label"] == "a"


def test_majority_tie_rule_favours_the_rarer_class_against_a_biased_labeler() -> None:
    # u0 answers its favourite class 2 half the time; on a three-way split its vote is the likeliest error.
    frame, truth = _crowd([0.9, 0.8, 0.8, 0.8], n_items=1000, seed=4, biased={0: 2})
    labels = aggregate(frame, "majority")
    split = labels["agreement"].to_numpy() < 0.4  # three annotators, three different answers
    assert split.sum() > 20
    on_split = labels[split]
    assert (on_split["label"] != 2).all()
    # ... and that pays: better than siding with the crowd's most frequent answer (2) on these items.
    assert _accuracy(on_split, truth) > (truth.loc[on_split["item_id"]] == 2).mean() + 0.1


def test_majority_tie_between_equally_frequent_classes_goes_to_the_class_listed_first() -> None:
    frame = _frame([("tie", "u1", "b"), ("tie", "u2", "a")])
    assert aggregate(frame, "majority", classes=["b", "a"]).loc[0, "label"] == "b"
    assert aggregate(frame, "majority", classes=["a", "b"]).loc[0, "label"] == "a"
    assert aggregate(frame, "majority").loc[0, "label"] == "a"  # default class order is sorted


def test_ties_do_not_depend_on_row_order() -> None:
    frame = _frame([("t1", "u1", "b"), ("t1", "u2", "a"), ("t2", "u1", "c"), ("t2", "u2", "a")])
    shuffled = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    for method in ("majority", "dawid_skene"):
        pd.testing.assert_frame_equal(aggregate(frame, method), aggregate(shuffled, method))


def test_dawid_skene_is_deterministic_across_runs() -> None:
    frame, _ = _crowd([0.9, 0.7, 0.6, 0.3], seed=5)
    first = aggregate_full(frame, "dawid_skene")
    second = aggregate_full(frame.sample(frac=1.0, random_state=1), "dawid_skene")
    pd.testing.assert_frame_equal(first.labels, second.labels)
    pd.testing.assert_frame_equal(first.labeler_quality, second.labeler_quality)


# --- edge cases ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["majority", "dawid_skene", "auto"])
def test_an_item_with_one_annotator_gets_that_annotators_label(method: str) -> None:
    frame = _frame([("solo", "u1", "cat")])
    labels = aggregate(frame, method)
    assert labels.loc[0, "label"] == "cat"
    assert labels.loc[0, "n_annotators"] == 1
    assert 0.0 < labels.loc[0, "confidence"] <= 1.0


def _crowd_with_a_solo_expert(n_solo: int = 20, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """300 items, 85 % class 0, labeled by three of eight 80 %-right labelers; plus ``n_solo`` items of the
    rare classes that only an always-right expert answered (the hard cases sent to them alone)."""
    frame, _ = _crowd([0.8] * 8, n_items=300, seed=seed)
    rng = np.random.default_rng(seed)
    truth = np.where(rng.random(300) < 0.85, 0, rng.integers(1, 4, 300))
    # Re-draw the crowd's answers for the skewed truth: right 80 %, else a random wrong class.
    item = frame["item_id"].str[1:].astype(int).to_numpy()
    right = rng.random(len(frame)) < 0.8
    frame["label"] = np.where(right, truth[item], (truth[item] + rng.integers(1, 4, len(frame))) % 4)
    solo = pd.Series(rng.integers(1, 4, n_solo), index=[f"solo{i:02d}" for i in range(n_solo)])
    rows = _frame([(item_id, "expert", int(label)) for item_id, label in solo.items()])
    return pd.concat([frame, rows], ignore_index=True), solo


def test_a_labeler_who_answered_items_alone_is_not_learned_from_their_own_answers() -> None:
    # Counting the expert's solo items in the M-step read them through the class prior (mostly class 0): the
    # expert "says a rare class for class-0 items", so every solo item became class 0 (a runaway loop). With
    # the crowd's pooled confusion as their prior, as on the real crowds, the expert's answers stand.
    frame, solo = _crowd_with_a_solo_expert()
    labels = aggregate(frame, "dawid_skene_pooled").set_index("item_id")
    assert (labels.loc[solo.index, "label"] == solo).all()


def test_a_labeler_nobody_overlapped_with_is_taken_for_a_typical_labeler_of_the_crowd() -> None:
    # No item shows how good they are, so their one-coin accuracy is the crowd's (80 % here), whatever they
    # answered alone; learned from their own solo answers it had been 2-6 % per class.
    frame, _ = _crowd_with_a_solo_expert()
    result = aggregate_full(frame, "dawid_skene")
    expert = list(result.labeler_quality["labeler_id"]).index("expert")
    np.testing.assert_allclose(np.diag(result.confusion[expert]), 0.8, atol=0.05)


def test_a_newcomers_answers_on_items_they_labeled_alone_stand_in_a_two_class_project() -> None:
    # With two classes a coin-flip prior (accuracy 1/2) says nothing, so the 70 % class won every such item.
    rng = np.random.default_rng(0)
    truth = (rng.random(400) < 0.3).astype(int)
    rows = [
        (f"i{i}", f"u{j}", int(truth[i]) if rng.random() < 0.85 else 1 - int(truth[i]))
        for i in range(400)
        for j in rng.choice(8, 3, replace=False)
    ]
    frame = _frame(rows + [(f"new{i}", "newcomer", 1) for i in range(12)])
    labels = aggregate(frame, "dawid_skene").set_index("item_id")
    assert (labels.loc[[f"new{i}" for i in range(12)], "label"] == 1).all()


@pytest.mark.parametrize("method", ["dawid_skene", "dawid_skene_pooled", "dawid_skene_selected"])
def test_without_any_overlap_dawid_skene_runs_as_majority_and_says_why(method: str) -> None:
    # Nothing shows anyone's reliability: EM made every labeler a coin flip and every item the commoner class.
    rng = np.random.default_rng(0)
    frame = _frame([(f"i{i:03d}", f"u{i % 5}", int(rng.random() < 0.3)) for i in range(100)])
    result = aggregate_full(frame, method)
    assert (result.labels["label"].to_numpy() == frame["label"].to_numpy()).all()
    assert result.method == "majority"
    assert any(note.startswith(f"{method} ran as majority: no item has two") for note in result.notes)


def test_the_class_prior_is_not_fed_by_items_answered_alone() -> None:
    # 60 % of the items got one answer from a random labeler. Fitted on every item, the class prior took in the
    # solo items' own posteriors and swung: the share labelled with the rarer class was off by 10.5 points on
    # average over these seeds (by up to 30); fitted on the overlapped items, 2.8 (up to 9).
    errors = []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        truth = (rng.random(2000) < 0.2).astype(int)
        accuracy = rng.uniform(0.55, 0.9, 20)
        rows = []
        for i in range(2000):
            for j in rng.choice(20, 1 if rng.random() < 0.6 else 3, replace=False):
                rows.append((f"i{i:04d}", f"u{j}", int(truth[i]) if rng.random() < accuracy[j] else 1 - int(truth[i])))
        labels = aggregate(_frame(rows), "dawid_skene_pooled")
        errors.append(abs(float((labels["label"] == 1).mean()) - float(truth.mean())))
    assert np.mean(errors) < 0.05, errors


def test_gold_items_answered_alone_still_teach_that_labelers_confusion() -> None:
    # A labeler who says 1 for every class-0 gold item they answered alone: gold makes those answers evidence.
    crowd, _ = _crowd_with_a_solo_expert(n_solo=0)
    gold_items = [f"g{i:02d}" for i in range(30)]
    swapped = _frame([(item_id, "swapper", 1) for item_id in gold_items] + [("probe", "swapper", 1)])
    frame = pd.concat([crowd, swapped], ignore_index=True)
    gold = {item_id: 0 for item_id in gold_items}
    without_gold = aggregate(frame, "dawid_skene_pooled").set_index("item_id")
    with_gold = aggregate(frame, "dawid_skene_pooled", gold=gold).set_index("item_id")
    assert without_gold.loc["probe", "label"] == 1  # nothing shows the swap: the answer stands
    assert with_gold.loc["probe", "label"] == 0  # the gold record does


def test_dawid_skene_handles_a_labeler_with_a_single_label() -> None:
    frame, truth = _crowd([0.9, 0.85, 0.8], seed=2)
    frame = pd.concat([frame, _frame([("i0000", "newcomer", int(truth["i0000"]))])], ignore_index=True)
    result = aggregate_full(frame, "dawid_skene")
    assert np.isfinite(result.probabilities).all()
    assert np.isfinite(result.confusion).all()
    quality = result.labeler_quality.set_index("labeler_id")
    assert quality.loc["newcomer", "n_labels"] == 1
    assert 0.0 <= quality.loc["newcomer", "quality"] <= 1.0


@pytest.mark.parametrize("method", ["majority", "dawid_skene"])
def test_a_class_nobody_chose_still_exists_with_finite_probabilities(method: str) -> None:
    frame, _ = _crowd([0.9, 0.8, 0.7], n_classes=3, seed=1)
    result = aggregate_full(frame, method, classes=[0, 1, 2, 99])
    assert result.classes == [0, 1, 2, 99]
    assert result.probabilities.shape[1] == 4
    assert np.isfinite(result.probabilities).all()
    assert 99 not in set(result.labels["label"])
    if method == "dawid_skene":
        assert result.confusion.shape[1:] == (4, 4)
        np.testing.assert_allclose(result.confusion.sum(axis=2), 1.0)


def test_labels_outside_the_given_classes_are_a_clear_error() -> None:
    frame = _frame([("a", "u1", "cat"), ("a", "u2", "cow")])
    with pytest.raises(ConsensusInputError, match="not in classes"):
        aggregate(frame, "majority", classes=["cat", "dog"])


def test_null_labels_are_a_clear_error() -> None:
    frame = _frame([("a", "u1", "cat"), ("a", "u2", None)])
    with pytest.raises(ConsensusInputError, match="null"):
        aggregate(frame, "majority")


def test_missing_columns_are_a_clear_error() -> None:
    with pytest.raises(ConsensusInputError, match="labeler_id"):
        aggregate(pd.DataFrame({"item_id": ["a"], "label": ["x"]}))


def test_unknown_method_is_a_clear_error() -> None:
    with pytest.raises(ConsensusInputError, match="unknown consensus method"):
        aggregate(_frame([("a", "u1", "x")]), "median")


def test_a_repeated_item_labeler_pair_counts_once_and_the_last_row_wins() -> None:
    frame = _frame([("a", "u1", "x"), ("a", "u1", "y"), ("a", "u2", "y")])
    result = aggregate_full(frame, "majority")
    assert result.labels.loc[0, "label"] == "y"
    assert result.labels.loc[0, "confidence"] == pytest.approx(1.0)
    assert any("repeated" in note for note in result.notes)


# --- Dawid-Skene quality --------------------------------------------------------------------------


def test_dawid_skene_beats_majority_when_two_of_three_labelers_are_spammers() -> None:
    # Two near-random labelers outvote the good one under majority whenever they happen to agree;
    # Dawid-Skene learns their confusion matrices and trusts the good labeler.
    frame, truth = _crowd([0.95, 0.9, 0.3, 0.25, 0.3], n_items=400, overlap=3, seed=7)
    majority = _accuracy(aggregate(frame, "majority"), truth)
    dawid_skene = _accuracy(aggregate(frame, "dawid_skene"), truth)
    assert dawid_skene > majority + 0.03


def test_dawid_skene_ranks_the_spammer_lowest_and_the_expert_highest() -> None:
    frame, _ = _crowd([0.95, 0.8, 0.7, 0.25], n_items=400, seed=11)
    quality = aggregate_full(frame, "dawid_skene").labeler_quality.set_index("labeler_id")["quality"]
    assert quality.idxmin() == "u3"
    assert quality.idxmax() == "u0"


def test_dawid_skene_corrects_labelers_biased_toward_one_class() -> None:
    # Two of four labelers lean to class 2: their two votes outvote the truth, which no tie rule fixes.
    frame, truth = _crowd([0.9, 0.8, 0.8, 0.8], n_items=400, seed=4, biased={0: 2, 1: 2})
    result = aggregate_full(frame, "dawid_skene")
    assert _accuracy(result.labels, truth) > _accuracy(aggregate(frame, "majority"), truth) + 0.02
    confusion_u0 = result.confusion[list(result.labeler_quality["labeler_id"]).index("u0")]
    # u0 says class 2 for about half of the items of every other class.
    assert confusion_u0[0, 2] > 0.3


def test_dawid_skene_posteriors_are_probabilities() -> None:
    frame, _ = _crowd([0.9, 0.6, 0.5], seed=3)
    result = aggregate_full(frame, "dawid_skene")
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0)
    assert result.labels["confidence"].between(0.0, 1.0).all()
    assert result.iterations is not None and result.iterations >= 1


def test_dawid_skene_handles_a_hundred_thousand_annotations_quickly() -> None:
    frame, truth = _crowd([0.9, 0.8, 0.7, 0.6, 0.5, 0.3], n_items=33_000, n_classes=10, seed=9)
    result = aggregate_full(frame, "dawid_skene")
    assert len(result.labels) == 33_000
    assert _accuracy(result.labels, truth) > 0.85


# --- CROWDLAB and auto ----------------------------------------------------------------------------


def _pred_probs(truth: pd.Series, n_classes: int, *, accuracy: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    guess = np.where(
        rng.random(len(truth)) < accuracy, truth.to_numpy(), rng.integers(0, n_classes, len(truth))
    )
    probs = np.full((len(truth), n_classes), 0.1 / (n_classes - 1))
    probs[np.arange(len(truth)), guess] = 0.9
    return probs


@pytest.mark.slow
def test_crowdlab_uses_pred_probs_and_reports_annotator_quality() -> None:
    frame, truth = _crowd([0.9, 0.6, 0.3], n_items=200, n_classes=3, overlap=2, seed=8)
    probs = _pred_probs(truth.sort_index(), 3, accuracy=0.85, seed=1)
    result = aggregate_full(frame, "crowdlab", pred_probs=probs)
    assert result.method == "crowdlab"
    assert len(result.labels) == 200
    quality = result.labeler_quality.set_index("labeler_id")["quality"]
    assert quality.idxmax() == "u0" and quality.idxmin() == "u2"
    assert _accuracy(result.labels, truth) >= _accuracy(aggregate(frame, "majority"), truth)


def test_crowdlab_matches_pred_probs_given_as_a_dataframe_by_item_id() -> None:
    frame, truth = _crowd([0.9, 0.7, 0.6], n_items=60, n_classes=3, overlap=2, seed=2)
    probs = _pred_probs(truth.sort_index(), 3, accuracy=0.8, seed=2)
    table = pd.DataFrame(probs, index=truth.sort_index().index, columns=[0, 1, 2]).iloc[::-1]
    by_array = aggregate(frame, "crowdlab", pred_probs=probs)
    by_frame = aggregate(frame, "crowdlab", pred_probs=table)
    pd.testing.assert_frame_equal(by_array, by_frame)


def test_crowdlab_without_pred_probs_is_a_clear_error() -> None:
    frame, _ = _crowd([0.9, 0.7], n_items=20, overlap=2)
    with pytest.raises(ConsensusInputError, match="pred_probs"):
        aggregate(frame, "crowdlab")


def test_crowdlab_rejects_pred_probs_of_the_wrong_shape() -> None:
    frame, _ = _crowd([0.9, 0.7], n_items=20, n_classes=3, overlap=2)
    with pytest.raises(ConsensusInputError, match="shape"):
        aggregate(frame, "crowdlab", pred_probs=np.full((19, 3), 1 / 3))


def test_auto_picks_crowdlab_when_pred_probs_are_given() -> None:
    frame, truth = _crowd([0.9, 0.7, 0.6], n_items=50, n_classes=3, overlap=2)
    result = aggregate_full(frame, pred_probs=_pred_probs(truth.sort_index(), 3, accuracy=0.8, seed=0))
    assert result.method == "crowdlab"
    assert any("auto chose crowdlab" in note for note in result.notes)


def test_auto_picks_dawid_skene_with_enough_overlap_and_majority_without() -> None:
    frame, _ = _crowd([0.9, 0.7, 0.6], n_items=50, overlap=2)
    # Which of the two priors: tests/core/test_consensus_selection.py.
    assert aggregate_full(frame).method in {"dawid_skene", "dawid_skene_pooled"}
    assert aggregate_full(frame.head(6)).method == "majority"  # three items with two annotations
    single = aggregate_full(_frame([("a", "u1", "x"), ("b", "u1", "y")]))
    assert single.method == "majority"
    assert "one labeler" in single.notes[-1]


# --- votes from stored annotation rows --------------------------------------------------------------


def test_latest_votes_keep_the_newest_annotation_per_item_and_labeler() -> None:
    from labeling_assets.core.consensus.votes import latest_votes

    rows = pd.DataFrame(
        {
            "ls_annotation_id": [1, 2, 3],
            "item_id": ["a", "a", "a"],
            "labeler_id": ["u1", "u1", "u2"],
            "label": ["cat", ["dog"], "cat"],  # u1 re-annotated the item later (a second LS annotation)
            "created_at": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-01"], utc=True),
            "updated_at": [None, None, None],
        }
    )
    votes = latest_votes(rows, ["cat", "dog"])
    assert votes.frame[["labeler_id", "label"]].values.tolist() == [["u1", "dog"], ["u2", "cat"]]
    assert votes.skipped == {}


def test_latest_votes_skip_a_newest_label_that_is_not_one_project_class_without_reviving_an_older_one() -> (
    None
):
    from labeling_assets.core.consensus.votes import SKIP_MULTI_LABEL, SKIP_UNKNOWN_CLASS, latest_votes
    from labeling_assets.core.label_sets import SKIP_UNREADABLE

    rows = pd.DataFrame(
        {
            "ls_annotation_id": [1, 2, 3, 4],
            "item_id": ["a", "a", "b", "c"],
            "labeler_id": ["u1", "u1", "u1", "u1"],
            "label": ["cat", ["cat", "dog"], "cow", None],  # None: stored with no label (an unreadable result)
            "updated_at": pd.to_datetime(["2026-01-01", "2026-01-03", "2026-01-01", "2026-01-01"], utc=True),
        }
    )
    votes = latest_votes(rows, ["cat", "dog"])
    assert votes.frame.empty
    assert votes.skipped == {SKIP_MULTI_LABEL: 1, SKIP_UNKNOWN_CLASS: 1, SKIP_UNREADABLE: 1}
    assert votes.examples[SKIP_UNKNOWN_CLASS] == ["cow"]


def test_single_class_unwraps_one_element_lists_only() -> None:
    from labeling_assets.core.consensus.votes import single_class

    assert single_class("cat") == "cat"
    assert single_class(["cat"]) == "cat"
    assert single_class(["cat", "dog"]) is None
    assert single_class([]) is None
    assert single_class(float("nan")) is None
    assert single_class({"choices": ["cat"]}) is None
