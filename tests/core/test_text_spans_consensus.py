"""Span consensus per item (issue 31): the token baselines, our span-level model and what it learns of each
labeler, and per-labeler span precision/recall/F1 with intervals. Small hand-made crowds say what each method
does; a planted crowd (demo sentences, known entities, labelers with known habits) says the model learns them."""

import random

import numpy as np
import pytest

from labeling_assets.core.consensus.gates import wilson_interval
from labeling_assets.core.tasks.text_spans.consensus import METHODS, aggregate_spans
from labeling_assets.core.tasks.text_spans.demo import (
    ENTITY_TYPES,
    SpanLabeler,
    good_labeler,
    sentences,
    simulate_span_crowd,
)
from labeling_assets.core.tasks.text_spans.spans import Span, tokenize
from labeling_assets.core.tasks.text_spans.stats import labeler_span_scores, match_counts, span_score
from labeling_assets.core.tasks.text_spans.votes import SpanVote

TYPES = ["PER", "ORG", "LOC"]
TEXT = "Ada Lovelace met Charles Babbage in London."
ADA, CHARLES, LONDON = Span(0, 12, "PER"), Span(17, 32, "PER"), Span(36, 42, "LOC")
TEXTS = {"t": TEXT}
METHOD_NAMES = [m for m in METHODS if m != "auto"]


def votes_on(item: str, answers: dict[str, tuple[Span, ...]]) -> list[SpanVote]:
    return [SpanVote(item, labeler, spans) for labeler, spans in answers.items()]


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_labelers_who_agree_get_their_spans_back_with_high_confidence(method: str) -> None:
    votes = votes_on("t", {"a": (ADA, CHARLES, LONDON), "b": (ADA, CHARLES, LONDON), "c": (ADA, CHARLES, LONDON)})
    result = aggregate_spans(votes, TEXTS, TYPES, method)
    assert result.labels == {"t": (ADA, CHARLES, LONDON)} and result.n_annotators == {"t": 3}
    assert result.confidence["t"] > 0.5


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_everyone_saying_no_entity_gives_no_spans(method: str) -> None:
    result = aggregate_spans(votes_on("t", {"a": (), "b": (), "c": ()}), TEXTS, TYPES, method)
    assert result.labels == {"t": ()}


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_a_span_two_of_three_mark_is_kept_and_one_of_three_is_not(method: str) -> None:
    votes = votes_on("t", {"a": (ADA, LONDON), "b": (ADA,), "c": (Span(17, 24, "ORG"),)})
    assert aggregate_spans(votes, TEXTS, TYPES, method).labels == {"t": (ADA,)}


def test_token_majority_breaks_a_tie_toward_no_entity() -> None:
    votes = votes_on("t", {"a": (ADA,), "b": ()})
    assert aggregate_spans(votes, TEXTS, TYPES, "token_majority").labels == {"t": ()}


def test_auto_is_the_span_model_and_an_unknown_method_or_a_missing_text_is_refused() -> None:
    votes = votes_on("t", {"a": (ADA,), "b": (ADA,)})
    assert aggregate_spans(votes, TEXTS, TYPES).method == "span_em"
    with pytest.raises(ValueError, match="unknown span consensus method"):
        aggregate_spans(votes, TEXTS, TYPES, "rover")
    with pytest.raises(KeyError):
        aggregate_spans(votes, {}, TYPES)


def test_a_labelers_later_vote_replaces_its_earlier_one() -> None:
    votes = [SpanVote("t", "a", (LONDON,)), SpanVote("t", "a", (ADA,)), SpanVote("t", "b", (ADA,))]
    result = aggregate_spans(votes, TEXTS, TYPES)
    assert result.labels == {"t": (ADA,)} and result.n_annotators == {"t": 2}


def test_one_labeler_saying_no_entity_is_less_sure_than_three() -> None:
    one = aggregate_spans(votes_on("t", {"a": ()}), TEXTS, TYPES).confidence["t"]
    three = aggregate_spans(votes_on("t", {"a": (), "b": (), "c": ()}), TEXTS, TYPES).confidence["t"]
    assert 0 < one < three <= 1


def test_a_labeler_who_split_what_others_marked_as_one_is_matched_to_one_cluster() -> None:
    split = (Span(17, 24, "PER"), Span(25, 32, "PER"))  # "Charles", "Babbage"
    votes = votes_on("t", {"a": (CHARLES,), "b": (CHARLES,), "c": split})
    assert aggregate_spans(votes, TEXTS, TYPES, "span_em").labels == {"t": (CHARLES,)}


# --- a planted crowd ----------------------------------------------------------------------------------------------

N_PLANTED = 400


@pytest.fixture(scope="module")
def planted() -> tuple[list, list[SpanVote], dict[str, str]]:
    data = sentences(N_PLANTED, seed=7)
    rng = np.random.default_rng(7)
    labelers = [good_labeler(f"good{i}", rng) for i in range(3)]
    labelers += [SpanLabeler("spammer", spammer=True), SpanLabeler("sloppy", boundary=0.0, long_end=0.8)]
    return data, simulate_span_crowd(data, labelers, 3, seed=7), {s.item_id: s.text for s in data}


def _strict_f1(labels: dict[str, tuple[Span, ...]], data: list) -> float:
    tp, fp, fn = np.sum([match_counts(labels[s.item_id], s.entities) for s in data], axis=0)
    return float(2 * tp / (2 * tp + fp + fn))


def test_on_a_planted_crowd_the_span_model_beats_both_token_baselines(planted: tuple) -> None:
    data, votes, texts = planted
    f1 = {m: _strict_f1(aggregate_spans(votes, texts, ENTITY_TYPES, m).labels, data) for m in METHOD_NAMES}
    assert f1["span_em"] > max(f1["token_majority"], f1["token_dawid_skene"]), f1
    assert f1["span_em"] > 0.85, f1


def test_the_span_model_learns_who_spams_and_who_takes_a_token_too_many(planted: tuple) -> None:
    _, votes, texts = planted
    quality = aggregate_spans(votes, texts, ENTITY_TYPES).labeler_quality
    good = [quality[f"good{i}"] for i in range(3)]
    assert quality["spammer"]["miss_rate"] > 0.6 and all(q["miss_rate"] < 0.3 for q in good), quality
    assert quality["spammer"]["false_span_rate"] > max(q["false_span_rate"] for q in good)
    assert quality["sloppy"]["mean_end_offset"] > 0.5 and quality["sloppy"]["exact_start"] > 0.8, quality
    assert all(abs(q["mean_end_offset"]) < 0.2 for q in good), quality


def test_the_span_model_gives_no_overlapping_spans_and_is_deterministic_in_vote_order(planted: tuple) -> None:
    _, votes, texts = planted
    result = aggregate_spans(votes, texts, ENTITY_TYPES)
    for spans in result.labels.values():
        assert all(a.end <= b.start for a, b in zip(spans, spans[1:], strict=False))
    shuffled = list(votes)
    random.Random(3).shuffle(shuffled)
    again = aggregate_spans(shuffled, texts, ENTITY_TYPES)
    assert again.labels == result.labels and again.confidence == pytest.approx(result.confidence)


def test_the_span_models_confidence_ranks_right_items_above_wrong_ones(planted: tuple) -> None:
    data, votes, texts = planted
    result = aggregate_spans(votes, texts, ENTITY_TYPES)
    right = [result.confidence[s.item_id] for s in data if set(result.labels[s.item_id]) == set(s.entities)]
    wrong = [result.confidence[s.item_id] for s in data if set(result.labels[s.item_id]) != set(s.entities)]
    assert wrong and np.mean(right) > np.mean(wrong) + 0.1


def test_decided_spans_fall_on_token_boundaries_of_the_text(planted: tuple) -> None:
    _, votes, texts = planted
    for item, spans in aggregate_spans(votes, texts, ENTITY_TYPES).labels.items():
        tokens = tokenize(texts[item])
        starts, ends = {s for s, _ in tokens}, {e for _, e in tokens}
        assert all(s.start in starts and s.end in ends for s in spans)


# --- per-labeler scores -------------------------------------------------------------------------------------------


def test_strict_matching_needs_the_same_offsets_and_type_and_partial_an_overlap_of_the_same_type() -> None:
    short = Span(17, 24, "PER")  # "Charles" for "Charles Babbage"
    assert match_counts([ADA, short], [ADA, CHARLES], "strict") == (1, 1, 1)
    assert match_counts([ADA, short], [ADA, CHARLES], "partial") == (2, 0, 0)
    assert match_counts([Span(17, 24, "ORG")], [CHARLES], "partial") == (0, 1, 1)
    # one reference span matches one span at most: the larger overlap wins
    assert match_counts([short, Span(25, 32, "PER")], [CHARLES], "partial") == (1, 1, 0)


def test_precision_and_recall_carry_wilson_intervals_and_f1_a_bootstrap_interval() -> None:
    score = span_score([(3, 1, 0), (2, 0, 1), (0, 1, 1), (4, 0, 0)])
    assert (score.tp, score.fp, score.fn, score.n_items) == (9, 2, 2, 4)
    assert score.precision == pytest.approx(9 / 11) and score.recall == pytest.approx(9 / 11)
    assert score.precision_ci == wilson_interval(9, 11) and score.recall_ci == wilson_interval(9, 11)
    assert score.f1 == pytest.approx(9 / 11)
    assert score.f1_ci[0] < score.f1 < score.f1_ci[1]
    assert span_score([(3, 1, 0), (2, 0, 1), (0, 1, 1), (4, 0, 0)]) == score  # seeded


def test_nothing_marked_and_nothing_to_find_has_no_rates_and_the_widest_intervals() -> None:
    score = span_score([(0, 0, 0)])
    assert score.precision is None and score.recall is None and score.f1 is None
    assert score.precision_ci == (0.0, 1.0) and score.f1_ci == (0.0, 1.0)


def test_labeler_scores_against_gold_tell_the_spammer_from_good_labelers(planted: tuple) -> None:
    data, votes, _ = planted
    gold = {s.item_id: s.entities for s in data[:200]}
    strict = labeler_span_scores(votes, gold, "strict")
    partial = labeler_span_scores(votes, gold, "partial")
    assert set(strict) == {"good0", "good1", "good2", "spammer", "sloppy"}
    assert all(strict[n].precision_ci[0] > strict["spammer"].precision_ci[1] for n in ("good0", "good1", "good2"))
    # the sloppy labeler's long ends fail strict matching, not partial matching
    assert strict["sloppy"].f1 is not None and partial["sloppy"].f1 is not None
    assert partial["sloppy"].f1 > strict["sloppy"].f1 + 0.3
    assert sum(s.n_items for s in strict.values()) == 3 * len(gold)


def test_labeler_scores_leave_out_items_without_a_reference() -> None:
    votes = [SpanVote("t", "a", (ADA,)), SpanVote("u", "a", (ADA,)), SpanVote("u", "b", (ADA,))]
    scores = labeler_span_scores(votes, {"t": (ADA,)})
    assert set(scores) == {"a"} and (scores["a"].tp, scores["a"].n_items) == (1, 1)


# --- gold ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_a_gold_item_is_answered_by_its_gold_spans_with_full_confidence(method: str) -> None:
    votes = votes_on("t", {"a": (LONDON,), "b": (LONDON,)})
    result = aggregate_spans(votes, TEXTS, TYPES, method, gold={"t": (ADA, CHARLES)})
    assert result.labels == {"t": (ADA, CHARLES)} and result.confidence == {"t": 1.0}


def _colluding_crowd(n: int) -> tuple[list, list[SpanVote], dict[str, str]]:
    """Two labelers who call every person an organisation, and one who is right."""
    data = sentences(n, seed=11)
    votes = []
    for s in data:
        wrong = tuple(Span(e.start, e.end, "ORG" if e.label == "PER" else e.label) for e in s.entities)
        votes += [SpanVote(s.item_id, "colluder1", wrong), SpanVote(s.item_id, "colluder2", wrong),
                  SpanVote(s.item_id, "right", s.entities)]  # fmt: skip
    return data, votes, {s.item_id: s.text for s in data}


def test_gold_teaches_the_span_model_a_type_confusion_the_majority_shares() -> None:
    data, votes, texts = _colluding_crowd(200)
    gold = {s.item_id: s.entities for s in data[:40]}
    rest = data[40:]
    persons = [(s.item_id, e) for s in rest for e in s.entities if e.label == "PER"]
    assert len(persons) > 50
    blind = aggregate_spans(votes, texts, ENTITY_TYPES)
    taught = aggregate_spans(votes, texts, ENTITY_TYPES, gold=gold)
    assert sum(e in blind.labels[i] for i, e in persons) == 0  # two against one: organisations
    assert sum(e in taught.labels[i] for i, e in persons) == len(persons)
    assert taught.labeler_quality["right"]["type_accuracy"] > taught.labeler_quality["colluder1"]["type_accuracy"]


def test_a_gold_entity_nobody_marked_counts_as_a_miss_for_every_labeler_of_the_item() -> None:
    data = sentences(200, seed=12)
    # everyone misses every place: without gold nothing says so
    votes = [SpanVote(s.item_id, name, tuple(e for e in s.entities if e.label != "LOC"))
             for s in data for name in ("a", "b", "c")]  # fmt: skip
    texts = {s.item_id: s.text for s in data}
    blind = aggregate_spans(votes, texts, ENTITY_TYPES).labeler_quality["a"]["miss_rate"]
    taught = aggregate_spans(votes, texts, ENTITY_TYPES, gold={s.item_id: s.entities for s in data[:100]})
    assert blind < 0.1 < taught.labeler_quality["a"]["miss_rate"]


# --- agreement ---------------------------------------------------------------------------------------------------


def test_span_agreement_is_pairwise_f1_over_items_with_two_or_more_labelers() -> None:
    from labeling_assets.core.tasks.text_spans.stats import span_agreement

    short = Span(17, 24, "PER")
    votes = votes_on("t", {"a": (ADA, CHARLES), "b": (ADA, short), "c": (ADA, CHARLES)})
    votes += votes_on("u", {"a": (ADA,)})  # one labeler: no pair
    strict = span_agreement(votes)
    # pairs a-b (1 match of 2 and 2), a-c (2 of 2), b-c (1 of 2): tp 4, fp 2, fn 2
    assert (strict.n_items, strict.n_pairs) == (1, 3) and strict.f1 == pytest.approx(8 / 12)
    assert span_agreement(votes, "partial").f1 == pytest.approx(1.0)
    assert span_agreement(votes_on("u", {"a": (ADA,)})).f1 is None


def test_a_spammer_lowers_span_agreement(planted: tuple) -> None:
    from labeling_assets.core.tasks.text_spans.stats import span_agreement

    _, votes, _ = planted
    honest = [v for v in votes if v.labeler_id.startswith("good")]
    with_spammer = [v for v in votes if v.labeler_id.startswith("good") or v.labeler_id == "spammer"]
    a, b = span_agreement(honest), span_agreement(with_spammer)
    assert a.f1 is not None and b.f1 is not None and b.f1_ci[1] < a.f1_ci[0]


def test_two_labelers_a_token_apart_leave_the_span_model_unsure_of_the_boundary() -> None:
    data = sentences(300, seed=13)
    pair = [SpanLabeler(name, miss=0.0, wrong_type=0.0, boundary=0.3, false_spans=0.0) for name in ("a", "b")]
    votes = simulate_span_crowd(data, pair, 2, seed=13)
    texts = {s.item_id: s.text for s in data}
    result = aggregate_spans(votes, texts, ENTITY_TYPES)
    answers: dict[str, list[tuple[Span, ...]]] = {}
    for vote in votes:
        answers.setdefault(vote.item_id, []).append(vote.spans)
    apart = [result.confidence[i] for i, (x, y) in answers.items() if x != y]
    agreed = [result.confidence[i] for i, (x, y) in answers.items() if x == y]
    assert len(apart) > 50 and len(agreed) > 50
    # each disagreement is a coin flip between two equally careful labelers
    assert np.median(apart) < 0.7 < 0.9 < np.median(agreed)
