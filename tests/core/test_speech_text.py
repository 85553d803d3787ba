"""Transcript consensus: the alignment, the word network, ROVER, ours (labeler-aware), and the WER figures."""

import numpy as np

from labeling_assets.core.speech.crowd import TextLabeler, machine_output, misspell
from labeling_assets.core.speech.text_consensus import (
    align,
    labeler_aware_rover,
    rover,
    shrunk_error_rates,
    word_errors,
    word_network,
)
from labeling_assets.core.speech.text_metrics import cer, labeler_wer, wer

TRUTH = ["xin", "chào", "the", "meeting", "starts", "at", "nine", "hôm", "nay", "trời", "đẹp"]


def test_align_pairs_words_with_the_fewest_edits() -> None:
    assert align(["a", "b", "c", "d"], ["a", "c", "d", "e"]) == [
        ("a", "a"),
        ("b", None),
        ("c", "c"),
        ("d", "d"),
        (None, "e"),
    ]
    assert word_errors(["a", "b", "c"], ["a", "x", "c", "y"]) == 2
    assert word_errors([], ["a"]) == 1


def test_the_word_network_lines_up_every_hypothesis() -> None:
    slots = word_network(
        [("x", ["the", "cat", "sat"]), ("y", ["the", "cat", "sad"]), ("z", ["a", "cat", "sat", "on"])]
    )
    assert slots == [
        {"x": "the", "y": "the", "z": "a"},
        {"x": "cat", "y": "cat", "z": "cat"},
        {"x": "sat", "y": "sad", "z": "sat"},
        {"x": None, "y": None, "z": "on"},
    ]


def test_rover_elects_per_slot_and_weights_can_overturn_it() -> None:
    answers = {"x": ["the", "cat", "sat"], "y": ["the", "cat", "sad"], "z": ["a", "cat", "sat", "on"]}
    words, confidence = rover(answers)
    assert words == ["the", "cat", "sat"] and 0.5 < confidence < 1
    assert rover(answers, {"x": 0.1, "y": 0.1, "z": 5.0})[0] == ["a", "cat", "sat", "on"]


def test_ours_discounts_the_unchanged_answers_of_lazy_labelers() -> None:
    rng = np.random.default_rng(0)
    crowd = [
        *(TextLabeler(f"careful{i}", fix=0.9, typo=0.0) for i in range(3)),
        *(TextLabeler(f"lazy{i}", lazy=True) for i in range(2)),
    ]
    items, machine = [], []
    for _ in range(80):
        out = machine_output(TRUTH, rng, typo=0.3)
        chosen = rng.choice(len(crowd), 3, replace=False)
        items.append({crowd[k].name: crowd[k].correct(TRUTH, out, rng) for k in chosen})
        machine.append(out)
    truth = [TRUTH] * len(items)
    ours = labeler_aware_rover(items, machine)
    lazy, careful = ours.labelers["lazy0"], ours.labelers["careful0"]
    assert lazy.unchanged_rate == 1.0 and careful.unchanged_rate < 0.5
    assert lazy.lazy > 0.5 and careful.lazy == 0.0 and lazy.weight < careful.weight
    # an item with both lazy labelers and one careful one is the careful one's, not the machine's (0.032 here);
    # the labelers' weights alone do less (0.052), plain ROVER much less (0.170)
    weights_alone = labeler_aware_rover(items, machine, discount_unchanged=False)
    assert weights_alone.labelers["lazy0"].lazy > 0.5  # counted all the same
    assert wer(truth, ours.texts) < 0.8 * wer(truth, weights_alone.texts)
    assert wer(truth, weights_alone.texts) < 0.5 * wer(truth, [rover(answers)[0] for answers in items])


def test_a_spammer_gets_almost_no_vote() -> None:
    rng = np.random.default_rng(1)
    crowd = [TextLabeler("a", fix=0.9), TextLabeler("b", fix=0.9), TextLabeler("spam", spammer=True)]
    items = []
    machine = []
    for _ in range(30):
        out = machine_output(TRUTH, rng)
        items.append({lab.name: lab.correct(TRUTH, out, rng) for lab in crowd})
        machine.append(out)
    stats = labeler_aware_rover(items, machine).labelers
    assert stats["spam"].weight < 0.2 < stats["a"].weight


def test_machine_output_and_misspellings_change_the_text() -> None:
    rng = np.random.default_rng(2)
    assert all(misspell(w, rng) != w for w in ["a", "nine", "đẹp"] * 10)
    outs = [machine_output(TRUTH, rng) for _ in range(50)]
    assert any(o != TRUTH for o in outs) and 0.05 < wer([TRUTH] * 50, outs) < 0.5


def test_wer_cer_and_per_labeler_intervals() -> None:
    refs = [["a", "b", "c", "d"], ["e", "f"]]
    assert wer(refs, [["a", "b", "c", "d"], ["e", "x"]]) == 1 / 6
    assert wer(refs, [[], []]) == 1.0
    assert 0 < cer(refs, [["a", "b", "c", "d"], ["e", "x"]]) < 0.3
    items = [{"good": r, "bad": ["z"] * len(r)} for r in refs * 10]
    figures = labeler_wer(items, {k: r for k, r in enumerate(refs * 10)})
    assert figures["good"].wer == 0.0 and figures["good"].high == 0.0
    assert figures["bad"].wer == 1.0 and figures["bad"].low == 1.0
    noisy = [{"x": r if k % 2 else ["z"]} for k, r in enumerate(refs * 10)]
    interval = labeler_wer(noisy, {k: r for k, r in enumerate(refs * 10)})["x"]
    assert interval.low < interval.wer < interval.high and interval.items == 20


def _crowd_answers(crowd: list[TextLabeler], seed: int, n: int = 60) -> tuple[list[dict], list[list[str]]]:
    rng = np.random.default_rng(seed)
    items, machine = [], []
    for _ in range(n):
        out = machine_output(TRUTH, rng)
        chosen = rng.choice(len(crowd), 3, replace=False)
        items.append({crowd[k].name: crowd[k].correct(TRUTH, out, rng) for k in chosen})
        machine.append(out)
    return items, machine


def test_shrunk_equally_careful_labelers_vote_equally_so_ours_is_plain_rover() -> None:
    # five labelers of the same skill: their measured error rates differ by chance only; unshrunk, that noise
    # alone orders the network (heaviest first) and changes texts; shrunk, each rate is the pooled rate and
    # ours elects what plain ROVER elects
    crowd = [TextLabeler(f"c{i}", fix=0.85, typo=0.02) for i in range(5)]
    items, machine = _crowd_answers(crowd, seed=3)
    plain = [rover(answers)[0] for answers in items]
    unshrunk = labeler_aware_rover(items, machine)
    assert len({s.weight for s in unshrunk.labelers.values()}) == 5 and unshrunk.texts != plain
    shrunk = labeler_aware_rover(items, machine, shrink=True)
    assert len({s.weight for s in shrunk.labelers.values()}) == 1 and shrunk.texts == plain


def test_shrinkage_keeps_a_spammer_apart_and_pools_the_rest() -> None:
    crowd = [
        *(TextLabeler(f"c{i}", fix=0.85, typo=0.02) for i in range(4)),
        TextLabeler("spam", spammer=True),
    ]
    items, machine = _crowd_answers(crowd, seed=4)
    stats = labeler_aware_rover(items, machine, shrink=True).labelers
    careful = [stats[f"c{i}"].weight for i in range(4)]
    assert stats["spam"].error > 0.3 and stats["spam"].weight < 0.5 * min(careful)
    # (errors, words) per answer: rates far apart keep their own; the same clean record over one text instead of
    # fifty is evidence of little, pulled toward the pooled rate by a larger share of the way
    counts = {"b": [(5, 10)] * 50, "many": [(0, 10)] * 50, "few": [(0, 10)]}
    rates = shrunk_error_rates(counts)
    raw = {n: (sum(e for e, _ in c) + 0.5) / (sum(w for _, w in c) + 1) for n, c in counts.items()}
    pooled = (250 + 0.5) / (1010 + 1)
    pulled = {n: (rates[n] - raw[n]) / (pooled - raw[n]) for n in counts}
    assert abs(rates["b"] - 0.5) < 0.01 and rates["many"] < 0.01
    assert 0 < pulled["many"] < 0.01 and pulled["few"] > 5 * pulled["many"]
