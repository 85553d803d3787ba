"""Sentences whose entities are known by construction, and a simulated crowd that marks them with errors.

The sentences are built from templates filled with Faker's names (PER), companies (ORG) and places (LOC), so
each entity's offsets are known exactly; Faker ships its word lists, nothing is downloaded. The crowd's error
model is per labeler: it misses an entity, gives another type, cuts a boundary one token short or long (a
sloppy labeler mostly at the end, as a habit), and marks false spans; a spammer marks random tokens.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from faker import Faker

from labeling_assets.core.tasks.text_spans.spans import Span, tokenize
from labeling_assets.core.tasks.text_spans.votes import SpanVote

ENTITY_TYPES = ("PER", "ORG", "LOC")
TEMPLATES = (
    "{PER} joined {ORG} in {LOC} last spring.",
    "According to {PER}, the office in {LOC} will close.",
    "{ORG} hired {PER} as its new chief financial officer.",
    "The meeting between {PER} and {PER} took place in {LOC}.",
    "Shares of {ORG} fell after the report from {LOC}.",
    "The weather was mild and the trains ran on time.",
    "{PER} moved from {LOC} to {LOC} to work for {ORG}.",
    "Nobody expected the committee to agree so quickly.",
    "{ORG} and {ORG} announced a merger on Tuesday.",
    "In {LOC}, {PER} opened a bakery with help from {ORG}.",
    "A spokesperson for {ORG}, {LOC}, declined to comment.",
    "{PER} said the results were better than expected.",
)


@dataclass(frozen=True)
class Sentence:
    item_id: str
    text: str
    entities: tuple[Span, ...]


def sentences(n: int, seed: int) -> list[Sentence]:
    """``n`` sentences from the templates, entities filled by a Faker seeded with ``seed``."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = np.random.default_rng(seed)
    fillers: dict[str, Callable[[], str]] = {
        "PER": fake.name,
        "ORG": fake.company,
        "LOC": lambda: fake.city() if rng.random() < 0.6 else fake.country(),
    }
    made = []
    for i in range(n):
        template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
        text, spans, at = "", [], 0
        for match in re.finditer(r"\{(\w+)\}", template):
            text += template[at : match.start()]
            value = fillers[match.group(1)]()
            spans.append(Span(len(text), len(text) + len(value), match.group(1)))
            text += value
            at = match.end()
        text += template[at:]
        made.append(Sentence(f"s{seed}-{i:06d}", text, tuple(spans)))
    return made


@dataclass(frozen=True)
class SpanLabeler:
    """A simulated labeler's error model (rates per entity, false spans per sentence)."""

    name: str
    miss: float = 0.1
    wrong_type: float = 0.05
    boundary: float = 0.1  # a boundary one token off, either side, short or long
    long_end: float = 0.0  # habit: the end one token too far
    false_spans: float = 0.05  # expected false spans per sentence
    spammer: bool = False  # marks random tokens, whatever the text holds


def good_labeler(name: str, rng: np.random.Generator) -> SpanLabeler:
    return SpanLabeler(name, miss=rng.uniform(0.05, 0.2), wrong_type=rng.uniform(0.02, 0.1),
                       boundary=rng.uniform(0.05, 0.15), false_spans=rng.uniform(0.02, 0.1))  # fmt: skip


def _token_span(first: int, end: int, label: str, tokens: Sequence[tuple[int, int]]) -> Span:
    return Span(tokens[first][0], tokens[end - 1][1], label)


def _mark(labeler: SpanLabeler, sentence: Sentence, rng: np.random.Generator) -> tuple[Span, ...]:
    tokens = tokenize(sentence.text)
    n = len(tokens)
    marks: list[tuple[int, int, str]] = []
    if not labeler.spammer:
        for entity in sentence.entities:
            if rng.random() < labeler.miss:
                continue
            inside = [i for i, (s, e) in enumerate(tokens) if s < entity.end and entity.start < e]
            first, end = inside[0], inside[-1] + 1
            label = entity.label
            if rng.random() < labeler.wrong_type:
                label = str(rng.choice([t for t in ENTITY_TYPES if t != label]))
            if rng.random() < labeler.boundary:
                step = int(rng.choice([-1, 1]))
                if rng.random() < 0.5:
                    first = min(max(first + step, 0), end - 1)
                else:
                    end = max(min(end + step, n), first + 1)
            if rng.random() < labeler.long_end:
                end = min(end + 1, n)
            marks.append((first, end, label))
    rate = 2.0 if labeler.spammer else labeler.false_spans
    for _ in range(int(rng.poisson(rate))):
        first = int(rng.integers(n))
        marks.append((first, min(first + int(rng.integers(1, 3)), n), str(rng.choice(ENTITY_TYPES))))
    kept: list[tuple[int, int, str]] = []
    for first, end, label in sorted(marks):  # a labeler's own overlaps are refused when read (spans.read_spans)
        if all(end <= f or e <= first for f, e, _ in kept):
            kept.append((first, end, label))
    return tuple(sorted(_token_span(f, e, label, tokens) for f, e, label in kept))


def simulate_span_crowd(items: Sequence[Sentence], labelers: Sequence[SpanLabeler], overlap: int,
                        seed: int) -> list[SpanVote]:  # fmt: skip
    """Each item answered by ``overlap`` labelers drawn at random."""
    rng = np.random.default_rng(seed)
    votes = []
    for sentence in items:
        for index in rng.choice(len(labelers), size=overlap, replace=False):
            labeler = labelers[int(index)]
            votes.append(SpanVote(sentence.item_id, labeler.name, _mark(labeler, sentence, rng)))
    return votes
