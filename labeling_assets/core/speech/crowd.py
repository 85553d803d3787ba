"""Simulated machine output and a simulated crowd for speech, seeded, with error models known by construction.

- ``machine_output``: the truth with words dropped, neighbours swapped and words misspelled (the "machine"
  transcript or translation a labeler corrects); with ``systematic`` > 0, first the errors a real ASR or MT system
  repeats: each word of ``CONFUSIONS`` becomes its fixed confusion with probability ``systematic`` (one draw per
  such word; the default, 0, draws nothing, so the random part's output is what it was before this option).
- ``SegmentLabeler``: marks the true regions with a habitual start and end offset plus jitter, misses a switch
  (two neighbouring regions of different languages marked as one, with the first's label), leaves a region out,
  adds false regions; a spammer marks random regions with random labels.
- ``TextLabeler``: a careful corrector fixes each machine error with probability ``fix`` and adds a typo now and
  then; a lazy labeler submits the machine output unchanged; a spammer submits shuffled, partly dropped words.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from labeling_assets.core.speech.regions import Region
from labeling_assets.core.speech.text_consensus import align

LETTERS = "abcdefghiklmnoprstuy"


def misspell(word: str, rng: np.random.Generator) -> str:
    """One letter replaced (or one added to a one-letter word): never the word itself."""
    if len(word) < 2:
        return word + str(rng.choice(list(LETTERS)))
    k = int(rng.integers(len(word)))
    options = [c for c in LETTERS if c != word[k]]
    return word[:k] + str(rng.choice(options)) + word[k + 1 :]


def plain(word: str) -> str:
    """A word without its Vietnamese tone and vowel marks (NFD, combining marks stripped; đ written d)."""
    decomposed = unicodedata.normalize("NFD", word.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


# Frequent Vietnamese words of the demo phrases (core.speech.synth.PHRASES) whose marks an ASR system drops.
TONE_DROPPED = ("không", "chào", "đẹp", "hôm", "nhiều", "tiền", "việc", "gặp", "lại", "biết")
# The fixed confusions: marks dropped; English heard as a homophone (ASR); a literal term translation (MT: trời
# "sky" for weather, trưa "noon" for lunch). No confusion is itself a word of a demo phrase, so it is always wrong.
CONFUSIONS: dict[str, str] = {
    **{w: plain(w) for w in TONE_DROPPED},
    "the": "da",
    "know": "no",
    "to": "two",
    "week": "weak",
    "see": "sea",
    "weather": "sky",
    "lunch": "noon",
}


def confuse(words: Sequence[str], rng: np.random.Generator, p: float) -> list[str]:
    """Each word of ``CONFUSIONS`` replaced by its confusion with probability ``p`` (one draw per such word)."""
    return [CONFUSIONS[w] if w in CONFUSIONS and rng.random() < p else w for w in words]


def machine_output(
    words: Sequence[str],
    rng: np.random.Generator,
    drop: float = 0.06,
    swap: float = 0.05,
    typo: float = 0.1,
    systematic: float = 0.0,
    systematic_rng: np.random.Generator | None = None,
) -> list[str]:
    """The machine's words for ``words``; the systematic part draws from ``systematic_rng`` where given (so that
    turning it on leaves the draws of ``rng``, and of whatever else shares it, as they were), else from ``rng``."""
    if systematic > 0:
        words = confuse(words, rng if systematic_rng is None else systematic_rng, systematic)
    out = [w for w in words if rng.random() >= drop] or list(words[:1])
    k = 0
    while k < len(out) - 1:
        if rng.random() < swap:
            out[k], out[k + 1] = out[k + 1], out[k]
            k += 1
        k += 1
    return [misspell(w, rng) if rng.random() < typo else w for w in out]


@dataclass(frozen=True)
class SegmentLabeler:
    name: str
    start_offset: float = 0.0  # seconds, a habit
    end_offset: float = 0.0
    jitter: float = 0.04  # seconds, sd
    miss_switch: float = 0.05  # per language switch
    miss_region: float = 0.03
    false_regions: float = 0.1  # per utterance
    spammer: bool = False

    def mark(
        self, truth: Sequence[Region], duration: float, labels: Sequence[str], rng: np.random.Generator
    ) -> list[Region]:
        if self.spammer:
            return _random_regions(int(rng.integers(1, 6)), duration, labels, rng)
        kept: list[Region] = []
        for r in truth:
            if rng.random() < self.miss_region:
                continue
            prev = kept[-1] if kept else None
            if prev is not None and prev.label != r.label and rng.random() < self.miss_switch:
                kept[-1] = Region(prev.start, r.end, prev.label)
                continue
            kept.append(r)
        out = []
        for r in kept:
            start = r.start + self.start_offset + rng.normal(0, self.jitter)
            end = r.end + self.end_offset + rng.normal(0, self.jitter)
            start, end = max(start, 0.0), min(end, duration)
            if end > start:
                out.append(Region(round(start, 3), round(end, 3), r.label))
        out += _random_regions(int(rng.poisson(self.false_regions)), duration, labels, rng)
        return sorted(out, key=lambda r: r.start)


def _random_regions(n: int, duration: float, labels: Sequence[str], rng: np.random.Generator) -> list[Region]:
    out = []
    for _ in range(n):
        length = float(rng.uniform(0.2, 0.8))
        start = float(rng.uniform(0, max(duration - length, 0.0)))
        out.append(
            Region(round(start, 3), round(min(start + length, duration), 3), str(rng.choice(list(labels))))
        )
    return sorted(out, key=lambda r: r.start)


def good_segment_labeler(name: str, rng: np.random.Generator) -> SegmentLabeler:
    return SegmentLabeler(
        name,
        start_offset=float(rng.uniform(-0.08, 0.08)),
        end_offset=float(rng.uniform(-0.08, 0.08)),
        jitter=float(rng.uniform(0.02, 0.08)),
        miss_switch=float(rng.uniform(0.02, 0.1)),
        miss_region=float(rng.uniform(0.01, 0.05)),
        false_regions=float(rng.uniform(0.05, 0.2)),
    )


@dataclass(frozen=True)
class TextLabeler:
    name: str
    fix: float = 0.9  # chance of fixing each machine error
    typo: float = 0.01  # chance per word of a typo of its own
    lazy: bool = False  # submits the machine output unchanged
    spammer: bool = False

    def correct(self, truth: Sequence[str], machine: Sequence[str], rng: np.random.Generator) -> list[str]:
        if self.lazy:
            return list(machine)
        if self.spammer:
            words = [w for w in machine if rng.random() > 0.3]
            return [str(w) for w in rng.permutation(words)] if words else ["uh"]
        out = []
        for said, heard in align(list(truth), list(machine)):
            keep_machine = rng.random() >= self.fix
            word = heard if keep_machine else said
            if word is not None:
                out.append(misspell(word, rng) if rng.random() < self.typo else word)
        return out


def careful_text_labeler(name: str, rng: np.random.Generator) -> TextLabeler:
    return TextLabeler(name, fix=float(rng.uniform(0.8, 0.97)), typo=float(rng.uniform(0.0, 0.03)))
