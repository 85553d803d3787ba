"""The simulated machine's systematic part: fixed confusions, applied with a probability, off by default."""

import numpy as np

from labeling_assets.core.speech.crowd import CONFUSIONS, TONE_DROPPED, machine_output, plain
from labeling_assets.core.speech.synth import PHRASES

WORDS = ["tôi", "không", "biết", "the", "weather", "is", "nice", "today", "see", "you", "again", "next", "week"]


def test_tone_marks_are_stripped_and_no_confusion_is_a_word_the_demo_says() -> None:
    assert [plain(w) for w in ("không", "đẹp", "việc", "nhiều")] == ["khong", "dep", "viec", "nhieu"]
    assert all(CONFUSIONS[w] == plain(w) for w in TONE_DROPPED)
    said = {w for lang in PHRASES.values() for pair in lang for text in pair for w in text.split()}
    assert set(TONE_DROPPED) <= said
    assert not set(CONFUSIONS.values()) & said  # a confused word is always wrong: a rule can learn it


def test_the_default_is_the_output_it_was_before_the_systematic_part() -> None:
    rng = np.random.default_rng(7)  # the words below are what main gave for this seed before the option existed
    assert [" ".join(machine_output(WORDS, rng)) for _ in range(3)] == [
        "kôi không biết the weather is today dee you again week nest",
        "tôi không biết tye weather is nice today see you again next week",
        "tôi không biết the weather nice is today you see again next",
    ]


def test_every_table_word_is_confused_at_probability_one_and_at_the_given_rate_below() -> None:
    quiet = {"drop": 0.0, "swap": 0.0, "typo": 0.0}
    assert machine_output(WORDS, np.random.default_rng(0), systematic=1.0, **quiet) == [
        CONFUSIONS.get(w, w) for w in WORDS
    ]
    rng = np.random.default_rng(1)
    outs = [machine_output(["không", "the"], rng, systematic=0.8, **quiet) for _ in range(2000)]
    assert 0.75 < np.mean([o[0] == "khong" for o in outs]) < 0.85
    assert {tuple(o) for o in outs} <= {(a, b) for a in ("không", "khong") for b in ("the", "da")}


def test_a_systematic_generator_of_its_own_leaves_the_random_part_s_draws_as_they_were() -> None:
    off, on = np.random.default_rng(5), np.random.default_rng(5)
    for _ in range(20):
        plain_out = machine_output(WORDS, off, typo=0.0)
        confused = machine_output(WORDS, on, typo=0.0, systematic=1.0, systematic_rng=np.random.default_rng(9))
        assert confused == [CONFUSIONS.get(w, w) for w in plain_out]  # the same drops and swaps, every word confused
    assert off.random() == on.random()
