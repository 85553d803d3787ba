"""Consensus for label sets: votes, per-class aggregation, agreement and labeler statistics (pure, no store)."""


import numpy as np
import pandas as pd
import pytest

from labeling_assets.core.consensus.agreement import krippendorff_alpha_from_annotations
from labeling_assets.core.consensus.encoding import ConsensusInputError
from labeling_assets.core.consensus.multilabel import (
    SET_METHODS,
    aggregate_sets,
    per_class_f1,
    set_probabilities_by_item,
)
from labeling_assets.core.consensus.multilabel_quality import (
    krippendorff_alpha_sets,
    per_class_fleiss_kappa,
    set_labeler_stats,
)
from labeling_assets.core.consensus.votes import SKIP_MULTI_LABEL, latest_set_votes, latest_votes
from labeling_assets.core.label_sets import (
    NONE_OF_THESE,
    SKIP_EMPTY_NOT_ALLOWED,
    SKIP_NONE_WITH_CLASSES,
    SKIP_NOT_A_SET,
    SKIP_UNKNOWN_IN_SET,
)
from tests.core.planted_crowds import multilabel_good_lazy_spammer

CLASSES = ["cat", "dog", "fox"]
METHODS = [m for m in SET_METHODS if m != "auto"]


def _votes(rows: list[tuple[object, str, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["item_id", "labeler_id", "label"])


def _macro_f1(method: str, votes: pd.DataFrame, truth: dict[int, list[str]], classes: list[str]) -> float:
    result = aggregate_sets(votes, method, classes=classes)
    scores = per_class_f1(
        dict(zip(result.labels["item_id"], result.labels["label"], strict=True)), truth, classes
    )
    return float(scores.set_index("class").loc["macro", "f1"])


# --- votes ------------------------------------------------------------------------------------------------


def test_set_votes_are_sorted_lists_and_the_newest_answer_counts() -> None:
    frame = pd.DataFrame(
        {
            "item_id": ["a", "a", "b"],
            "labeler_id": ["u", "u", "u"],
            "label": [["dog"], ["fox", "cat"], [NONE_OF_THESE]],
            "updated_at": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-01"], utc=True),
        }
    )
    votes = latest_set_votes(frame, CLASSES)
    assert votes.frame["label"].tolist() == [["cat", "fox"], []]
    assert votes.skipped == {}


def test_set_votes_skip_and_count_every_kind_of_bad_answer_without_repairing_it() -> None:
    frame = _votes(
        [
            ("a", "bare", "cat"),  # a single-label answer in a multi-label project
            ("a", "cow", ["cat", "cow"]),  # a class the project does not have
            ("a", "none_and", [NONE_OF_THESE, "dog"]),  # "none of these" together with a finding
            ("a", "empty", []),  # fine here: the project allows the empty set
            ("b", "ok", ["dog"]),
        ]
    )
    votes = latest_set_votes(frame, CLASSES)
    assert votes.skipped == {SKIP_NOT_A_SET: 1, SKIP_UNKNOWN_IN_SET: 1, SKIP_NONE_WITH_CLASSES: 1}
    assert votes.examples[SKIP_NOT_A_SET] == ["cat"] and votes.examples[SKIP_UNKNOWN_IN_SET] == [
        ["cat", "cow"]
    ]
    assert sorted(votes.frame["labeler_id"]) == ["empty", "ok"]
    strict = latest_set_votes(frame, CLASSES, allow_empty=False)
    assert strict.skipped[SKIP_EMPTY_NOT_ALLOWED] == 1 and "empty" not in set(strict.frame["labeler_id"])
    assert len(frame) == 5  # the input (the stored annotations) is untouched


def test_an_invalid_newest_set_does_not_let_an_older_valid_one_stand_in() -> None:
    frame = _votes([("a", "u", ["dog"]), ("a", "u", "dog")]).assign(ls_annotation_id=[1, 2])
    votes = latest_set_votes(frame, CLASSES)
    assert votes.frame.empty and votes.skipped == {SKIP_NOT_A_SET: 1}


def test_a_single_label_project_still_skips_a_set_answer() -> None:
    votes = latest_votes(_votes([("a", "u", ["cat", "dog"]), ("a", "v", ["cat"])]), CLASSES)
    assert votes.skipped == {SKIP_MULTI_LABEL: 1} and votes.frame["label"].tolist() == ["cat"]


def test_aggregate_sets_refuses_a_vote_that_is_not_a_set_and_names_it() -> None:
    with pytest.raises(ConsensusInputError, match="not a label set.*latest_set_votes"):
        aggregate_sets(_votes([("a", "u", "cat")]), "majority", classes=CLASSES)


# --- aggregation ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_every_method_gives_marginals_a_set_and_the_chance_the_whole_set_is_right(method: str) -> None:
    votes = _votes(
        [
            ("a", "u", ["cat"]),
            ("a", "v", ["cat", "dog"]),
            ("a", "w", ["cat"]),
            ("b", "u", []),
            ("b", "v", []),
            ("c", "w", ["dog"]),
        ]  # fmt: skip
    )
    result = aggregate_sets(votes, method, classes=CLASSES)
    probs = result.probabilities
    assert probs.shape == (3, 3) and np.isfinite(probs).all() and ((probs >= 0) & (probs <= 1)).all()
    assert result.labels["item_id"].tolist() == ["a", "b", "c"]
    assert result.labels["label"].iloc[0] == ["cat"] and result.labels["label"].iloc[1] == []
    expected = np.maximum(probs, 1 - probs).prod(axis=1)
    assert result.labels["confidence"].to_numpy() == pytest.approx(expected)
    assert result.labels["n_annotators"].tolist() == [3, 2, 1]
    if method == "majority":  # 1 of 3 ticked "dog" on item a: the doubt about "dog" is the whole set's doubt
        assert result.labels["confidence"].iloc[0] == pytest.approx(2 / 3)
    # "fox": nobody chose it, so no item has it, with low probability everywhere.
    assert (probs[:, 2] < 0.5).all() and result.per_class.set_index("class").loc["fox", "n_items"] == 0
    stored = set_probabilities_by_item(result)
    assert set(stored) == {"a", "b", "c"} and set(stored["a"]) == set(CLASSES)


def test_majority_marginal_is_the_share_of_labelers_who_chose_the_class() -> None:
    votes = _votes([("a", "u", ["cat"]), ("a", "v", ["cat", "dog"]), ("a", "w", ["cat"]), ("a", "x", [])])
    result = aggregate_sets(votes, "majority", classes=CLASSES)
    assert result.probabilities[0].tolist() == [0.75, 0.25, 0.0]
    assert result.labels["agreement"].iloc[0] == pytest.approx(0.5)  # two of four gave exactly {cat}


def test_majority_tie_at_the_threshold_goes_to_the_answer_the_crowd_gives_less_often() -> None:
    # "dog" is rare among the votes, so a 1-1 split on it means present; "cat" is in most votes: absent.
    votes = _votes(
        [
            ("a", "u", ["dog"]),
            ("a", "v", []),
            ("b", "u", ["cat"]),
            ("b", "v", []),
            ("c", "u", ["cat"]),
            ("c", "v", ["cat"]),
            ("d", "u", ["cat"]),
            ("d", "v", ["cat"]),
        ]  # fmt: skip
    )
    labels = aggregate_sets(votes, "majority", classes=CLASSES).labels.set_index("item_id")["label"]
    assert labels["a"] == ["dog"] and labels["b"] == []
    shuffled = aggregate_sets(votes.iloc[::-1], "majority", classes=CLASSES).labels.set_index("item_id")[
        "label"
    ]
    assert shuffled.to_dict() == labels.to_dict()


def test_per_class_thresholds_decide_the_set() -> None:
    votes = _votes([("a", "u", ["cat", "dog"]), ("a", "v", ["cat", "dog"]), ("a", "w", ["cat"])])
    assert aggregate_sets(votes, "majority", classes=CLASSES).labels["label"].iloc[0] == ["cat", "dog"]
    strict = aggregate_sets(votes, "majority", classes=CLASSES, thresholds={"dog": 0.8})
    assert strict.labels["label"].iloc[0] == ["cat"] and strict.thresholds.tolist() == [0.5, 0.8, 0.5]
    with pytest.raises(ConsensusInputError, match="not in the project"):
        aggregate_sets(votes, "majority", classes=CLASSES, thresholds={"cow": 0.5})


def test_per_class_dawid_skene_beats_per_class_majority_on_a_crowd_with_lazy_labelers_and_spammers() -> None:
    scores: dict[str, list[float]] = {m: [] for m in ("majority", "dawid_skene", "dawid_skene_shared")}
    for seed in range(3):
        classes, votes, truth = multilabel_good_lazy_spammer(np.random.default_rng(seed))
        for method in scores:
            scores[method].append(_macro_f1(method, votes, truth, classes))
    majority, per_class, shared = (float(np.mean(scores[m])) for m in scores)
    assert per_class > majority + 0.05, scores
    assert shared >= per_class, scores  # the joint method: lazy labelers' habit carries to the rare classes


def test_the_shared_model_finds_the_lazy_labeler_insensitive_and_the_spammer_uninformative() -> None:
    classes, votes, _ = multilabel_good_lazy_spammer(np.random.default_rng(0))
    result = aggregate_sets(votes, "dawid_skene_shared", classes=classes)
    quality = result.labeler_quality.set_index("labeler_id")
    assert quality.loc["good_1", "sensitivity"] > 0.8 and quality.loc["lazy_1", "sensitivity"] < 0.5
    assert quality.loc["lazy_1", "specificity"] > 0.95
    spam = quality.loc["spammer_1"]
    assert spam["sensitivity"] + spam["specificity"] == pytest.approx(1.0, abs=0.15)  # Youden's J ~ 0
    assert result.sensitivity is not None and result.sensitivity.shape == (6, len(classes))


def test_a_labeler_nobody_overlapped_with_yet_counts_as_a_typical_labeler_of_the_crowd() -> None:
    # Their sensitivity cannot be learned from items they answered alone (EM would only read back its own
    # guess), and a coin-flip prior says nothing: their findings gave way to the classes' prevalence.
    classes, votes, _ = multilabel_good_lazy_spammer(np.random.default_rng(0))
    crowd = votes[votes["labeler_id"].isin(["good_1", "good_2"])]  # a crowd of careful labelers
    newcomer = _votes([(1000 + i, "newcomer", ["c0", "c2"]) for i in range(10)])
    result = aggregate_sets(pd.concat([crowd, newcomer], ignore_index=True), "dawid_skene_shared", classes=classes)
    labels = result.labels.set_index("item_id")["label"]
    assert all(labels[1000 + i] == ["c0", "c2"] for i in range(10))


@pytest.mark.parametrize("method", METHODS)
def test_without_any_overlap_every_set_method_keeps_each_items_only_answer(method: str) -> None:
    rng = np.random.default_rng(0)
    votes = _votes([(i, f"u{i % 5}", ["cat"] if rng.random() < 0.3 else ["dog"]) for i in range(100)])
    result = aggregate_sets(votes, method, classes=CLASSES)
    labels = result.labels.set_index("item_id")["label"]
    assert all(labels[i] == votes["label"][i] for i in range(100))
    assert method == "majority" or any(note.startswith(f"{method} ran as majority") for note in result.notes)


def test_auto_uses_the_shared_model_with_overlap_and_majority_without() -> None:
    classes, votes, _ = multilabel_good_lazy_spammer(np.random.default_rng(0), n_items=50)
    assert aggregate_sets(votes, "auto", classes=classes).method == "dawid_skene_shared"
    lonely = votes.drop_duplicates("item_id")
    result = aggregate_sets(lonely, "auto", classes=classes)
    assert result.method == "majority" and any("too little overlap" in n for n in result.notes)


@pytest.mark.parametrize("method", ["dawid_skene", "dawid_skene_pooled", "dawid_skene_shared"])
def test_gold_sets_are_clamped_in_dawid_skene(method: str) -> None:
    classes, votes, truth = multilabel_good_lazy_spammer(np.random.default_rng(1), n_items=200)
    gold = {i: truth[i] for i in range(0, 200, 4)}
    result = aggregate_sets(votes, method, classes=classes, gold=gold)
    labels = result.labels.set_index("item_id")
    for item, true_set in gold.items():
        assert labels.loc[item, "label"] == true_set and labels.loc[item, "confidence"] == pytest.approx(1.0)
    assert any("50 gold item(s) clamped" in n for n in result.notes)


def test_clamped_gold_teaches_per_class_dawid_skene_who_misses_findings_on_the_other_items() -> None:
    gains = []
    for seed in (0, 1):
        classes, votes, truth = multilabel_good_lazy_spammer(np.random.default_rng(seed), n_items=300)
        gold = {i: truth[i] for i in range(0, 300, 3)}
        rest = {i: truth[i] for i in truth if i not in gold}
        scores = []
        for anchor in (None, gold):
            labels = aggregate_sets(votes, "dawid_skene", classes=classes, gold=anchor).labels
            frame = per_class_f1(dict(zip(labels["item_id"], labels["label"], strict=True)), rest, classes)
            scores.append(float(frame.set_index("class").loc["macro", "f1"]))
        gains.append(scores[1] - scores[0])
    assert float(np.mean(gains)) > 0.08, gains  # measured: +0.21 and +0.14 macro F1


def test_majority_notes_that_it_ignores_gold() -> None:
    votes = _votes([("a", "u", ["cat"]), ("a", "v", [])])
    result = aggregate_sets(votes, "majority", classes=CLASSES, gold={"a": ["dog"]})
    assert result.labels["label"].iloc[0] == ["cat"] and any("ignored" in n for n in result.notes)


def test_gold_that_is_not_a_set_of_the_project_is_refused() -> None:
    with pytest.raises(ConsensusInputError, match="gold of item 'a'"):
        aggregate_sets(_votes([("a", "u", ["cat"])]), "dawid_skene", classes=CLASSES, gold={"a": ["cow"]})


@pytest.mark.slow
def test_a_hundred_thousand_votes_aggregate_to_one_set_per_item_by_every_method() -> None:
    # How fast is a benchmark's question (benchmarks/multilabel_consensus.py times it): a timing bound here failed a
    # full run on the shared machine (18 s against 15) while the code was the same.
    rng = np.random.default_rng(0)
    n_votes, classes = 100_000, [f"c{k}" for k in range(14)]
    indicator = rng.random((n_votes, 14)) < 0.08
    votes = pd.DataFrame(
        {
            "item_id": np.repeat(np.arange(n_votes // 4), 4),
            "labeler_id": rng.integers(0, 400, n_votes),
            "label": [[classes[k] for k in np.flatnonzero(row)] for row in indicator],
        }
    ).drop_duplicates(["item_id", "labeler_id"])
    for method in ("majority", "dawid_skene", "dawid_skene_shared"):
        result = aggregate_sets(votes, method, classes=classes)
        assert len(result.labels) == n_votes // 4
        assert result.labels["label"].map(lambda s: set(s) <= set(classes)).all()


# --- per-class F1 (the benchmark's score) -------------------------------------------------------------------


def test_per_class_f1_counts_per_class_and_macro_skips_classes_with_nothing_to_find() -> None:
    predicted = {1: ["cat"], 2: ["cat", "dog"], 3: []}
    truth = {1: ["cat"], 2: ["cat"], 3: ["dog"], 4: ["cat"]}  # item 4 has no prediction: not scored
    frame = per_class_f1(predicted, truth, CLASSES).set_index("class")
    assert frame.loc["cat", ["tp", "fp", "fn"]].tolist() == [2, 0, 0] and frame.loc["cat", "f1"] == 1.0
    assert frame.loc["dog", ["tp", "fp", "fn"]].tolist() == [0, 1, 1] and frame.loc["dog", "f1"] == 0.0
    assert np.isnan(frame.loc["fox", "f1"])
    assert frame.loc["macro", "f1"] == pytest.approx(0.5)
    assert frame.loc["micro", "f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))


# --- agreement ----------------------------------------------------------------------------------------------


def test_perfect_set_agreement_gives_alpha_one_and_kappa_one_per_used_class() -> None:
    votes = _votes([(i, u, ["cat", "dog"] if i % 2 else []) for i in range(10) for u in ("u", "v", "w")])
    assert krippendorff_alpha_sets(votes, CLASSES) == pytest.approx(1.0)
    kappa = per_class_fleiss_kappa(votes, CLASSES)
    assert (
        kappa["cat"] == pytest.approx(1.0) and kappa["dog"] == pytest.approx(1.0) and np.isnan(kappa["fox"])
    )


def test_alpha_with_jaccard_on_one_class_sets_equals_nominal_alpha() -> None:
    rng = np.random.default_rng(0)
    rows = [(i, f"u{j}", [CLASSES[int(rng.integers(0, 3))]]) for i in range(60)
            for j in rng.choice(6, int(rng.integers(1, 5)), replace=False)]  # fmt: skip
    votes = _votes(rows)
    nominal = krippendorff_alpha_from_annotations(votes.assign(label=votes["label"].str[0]))
    assert krippendorff_alpha_sets(votes, CLASSES, distance="jaccard") == pytest.approx(nominal)


def test_masi_counts_a_subset_as_closer_than_jaccard_does_not() -> None:
    # Pairs that differ by a subset: MASI's distance 1 - (1/2)(2/3) = 2/3 > Jaccard's 1/2, so alpha moves.
    rows = [(i, "u", ["cat"]) for i in range(20)] + [(i, "v", ["cat", "dog"]) for i in range(20)]
    rows += [(i, u, ["fox"]) for i in range(20, 40) for u in ("u", "v")]
    votes = _votes(rows)
    jaccard = krippendorff_alpha_sets(votes, CLASSES, distance="jaccard")
    masi = krippendorff_alpha_sets(votes, CLASSES, distance="masi")
    assert 0 < masi < jaccard < 1


def test_agreement_of_items_with_one_labeler_is_undefined() -> None:
    votes = _votes([("a", "u", ["cat"]), ("b", "u", [])])
    assert np.isnan(krippendorff_alpha_sets(votes, CLASSES))
    assert all(np.isnan(v) for v in per_class_fleiss_kappa(votes, CLASSES).values())


# --- labeler statistics on gold -----------------------------------------------------------------------------


def test_labeler_stats_on_gold_give_exact_set_accuracy_and_per_class_sensitivity_and_specificity() -> None:
    truth = {1: ["cat", "dog"], 2: ["cat"], 3: [], 4: ["dog"]}
    votes = _votes([(1, "lazy", ["cat"]), (2, "lazy", ["cat"]), (3, "lazy", []), (4, "lazy", []),
                    (1, "eager", ["cat", "dog", "fox"]), (5, "eager", ["fox"])])  # fmt: skip
    overall, per_class = set_labeler_stats(votes, truth, CLASSES)
    lazy = overall.set_index("labeler_id").loc["lazy"]
    assert (lazy["n_gold"], lazy["exact_correct"]) == (4, 2) and lazy["exact_accuracy"] == 0.5
    assert lazy["exact_ci_low"] < 0.5 < lazy["exact_ci_high"]
    rows = per_class.set_index(["labeler_id", "class"])
    assert rows.loc[("lazy", "dog"), ["tp", "fn", "tn", "fp"]].tolist() == [0, 2, 2, 0]
    assert rows.loc[("lazy", "dog"), "sensitivity"] == 0.0 and rows.loc[("lazy", "dog"), "specificity"] == 1.0
    assert rows.loc[("eager", "fox"), "specificity"] == 0.0  # one gold item (1), where fox was wrongly added
    assert np.isnan(rows.loc[("eager", "fox"), "sensitivity"])  # no gold item has a fox


# --- the QA report's class drift chart ----------------------------------------------------------------------


def test_class_share_counts_a_set_answer_once_per_class_it_holds_and_single_labels_still_sum_to_one() -> None:
    from labeling_assets.core.reporting.qa_report import class_share_per_period

    period = pd.Series(["w1", "w1", "w1", "w1", "w2"])
    sets = pd.Series([["cat", "dog"], ["cat"], [], ["dog"], ["fox"]], dtype=object)
    share = class_share_per_period(period, sets)
    assert share.loc["w1"].to_dict() == {
        "cat": 0.5,
        "dog": 0.5,
        "fox": 0.0,
    }  # [] holds nothing but is an answer
    assert share.loc["w2", "fox"] == 1.0
    single = class_share_per_period(period, pd.Series(["cat", "cat", "dog", "fox", "fox"]))
    assert single.sum(axis=1).tolist() == [1.0, 1.0] and single.loc["w1", "cat"] == 0.5


# --- label issues for sets ----------------------------------------------------------------------------------


def test_set_label_issues_rank_planted_wrong_sets_first_with_an_out_of_sample_model() -> None:
    from labeling_assets.core.consensus.set_label_issues import cross_val_set_pred_probs, find_set_issues
    from labeling_assets.core.label_sets import to_indicator

    rng = np.random.default_rng(0)
    truth = rng.random((300, 3)) < [0.4, 0.3, 0.2]
    features = truth * 2.0 + rng.normal(0, 0.6, truth.shape)  # each class visible in its own feature
    sets = [[CLASSES[k] for k in np.flatnonzero(row)] for row in truth]
    planted = [n for n in range(300) if sets[n]][:10]
    given = [[] if n in planted else s for n, s in enumerate(sets)]  # the consensus missed every finding
    probs = cross_val_set_pred_probs(features, to_indicator(given, CLASSES))
    assert probs.shape == (300, 3) and ((probs > 0) & (probs < 1)).all()
    result = find_set_issues(list(range(300)), given, probs, CLASSES)
    flagged = result.issues["item_id"].tolist()
    assert set(planted) <= set(flagged) and len(flagged) < 40
    assert len(set(flagged[:15]) & set(planted)) >= 8  # worst label quality first
    first = result.issues.iloc[0]
    assert first["given_label"] == [] and first["suggested_label"] == sets[first["item_id"]]


def test_set_label_issues_need_enough_items_and_classes() -> None:
    from labeling_assets.core.consensus.set_label_issues import find_set_issues

    result = find_set_issues([1, 2], [["cat"], []], np.full((2, 3), 0.5), CLASSES)
    assert result.issues.empty and "2 item(s)" in result.notes[0]


def test_without_none_of_these_an_item_below_every_threshold_gets_its_most_probable_class() -> None:
    votes = _votes([("a", "u", ["cat"]), ("a", "v", ["dog"]), ("a", "w", ["fox"]), ("a", "x", ["dog"])])
    votes = pd.concat([votes, _votes([("b", "u", ["cat"]), ("b", "v", ["cat"])])])
    assert aggregate_sets(votes, "majority", classes=CLASSES, thresholds=0.6).labels["label"].iloc[0] == []
    strict = aggregate_sets(votes, "majority", classes=CLASSES, thresholds=0.6, allow_empty=False)
    assert strict.labels["label"].tolist() == [["dog"], ["cat"]]
    assert any("most probable class" in n for n in strict.notes)
