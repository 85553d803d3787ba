"""Consensus of corrected texts (transcripts, translations): ROVER and ours, a labeler-aware ROVER.

ROVER (Fiscus 1997) here is our own, word level: the hypotheses are aligned one after another into a word
transition network (a list of slots, each holding every hypothesis's word or nothing) by edit distance, a word
matching a slot at no cost when any earlier hypothesis put that word there; each slot then elects the word (or
the empty word) with the most votes, ties to the earliest hypothesis. It follows the same paper as crowd-kit's
``ROVER`` and elects the same words but for two rules (tests/core/test_speech_crowdkit_rover.py): crowd-kit breaks
a tie by the longer word, then the alphabetically last, and charges for leaving the network's leading slots empty
even where an earlier hypothesis left them empty. The benchmark runs both as baselines.

Ours, ``labeler_aware_rover``, iterates: each labeler's reliability is its word error rate against the
leave-one-out consensus of the other labelers on the same items (against gold where given), turned into a vote
weight ``log((1 - e) / e)``; the most reliable hypothesis goes first into the network. With ``shrink=True`` the
rate is first shrunk toward the pooled rate by how little evidence it rests on (``shrunk_error_rates``: labelers
no further apart than chance vote equally, as in plain ROVER). An *unchanged* answer (the
machine output submitted as is) is counted per labeler; a labeler who leaves the output unchanged more often than
the machine was right (the share of items whose consensus is the machine output) is lazy by the excess
``(u - m) / (1 - m)``, and its unchanged answers' votes shrink by that factor: they are not a check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

Words = list[str]
Slot = dict[str, str | None]  # labeler -> its word in this slot, or None (it has none)
MIN_ERROR = 0.01
MAX_ERROR = 0.49


def align(a: Sequence[str], b: Sequence[str]) -> list[tuple[str | None, str | None]]:
    """A minimum edit-distance alignment of two word sequences: pairs (a word, b word), None where one has none."""
    n, m = len(a), len(b)
    cost = np.zeros((n + 1, m + 1), dtype=np.int64)
    cost[:, 0] = np.arange(n + 1)
    cost[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i, j] = min(
                cost[i - 1, j - 1] + (a[i - 1] != b[j - 1]), cost[i - 1, j] + 1, cost[i, j - 1] + 1
            )
    out: list[tuple[str | None, str | None]] = []
    i, j = n, m
    while i or j:
        if i and j and cost[i, j] == cost[i - 1, j - 1] + (a[i - 1] != b[j - 1]):
            out.append((a[i - 1], b[j - 1]))
            i, j = i - 1, j - 1
        elif i and cost[i, j] == cost[i - 1, j] + 1:
            out.append((a[i - 1], None))
            i -= 1
        else:
            out.append((None, b[j - 1]))
            j -= 1
    return out[::-1]


def word_network(hypotheses: Sequence[tuple[str, Sequence[str]]]) -> list[Slot]:
    """The word transition network of ``(labeler, words)`` hypotheses, aligned in the order given."""
    slots: list[Slot] = []
    seen: list[str] = []
    for name, words in hypotheses:
        n, m = len(slots), len(words)
        cost = np.zeros((n + 1, m + 1))
        cost[:, 0] = [sum(_skip(s) for s in slots[:i]) for i in range(n + 1)]
        cost[0, :] = np.arange(m + 1)
        for i in range(1, n + 1):
            for j in range(1, m + 1):
                hit = 0.0 if words[j - 1] in slots[i - 1].values() else 1.0
                cost[i, j] = min(
                    cost[i - 1, j - 1] + hit, cost[i - 1, j] + _skip(slots[i - 1]), cost[i, j - 1] + 1.0
                )
        merged: list[Slot] = []
        i, j = n, m
        while i or j:
            if (
                i
                and j
                and cost[i, j] == cost[i - 1, j - 1] + (0.0 if words[j - 1] in slots[i - 1].values() else 1.0)
            ):
                merged.append({**slots[i - 1], name: words[j - 1]})
                i, j = i - 1, j - 1
            elif i and cost[i, j] == cost[i - 1, j] + _skip(slots[i - 1]):
                merged.append({**slots[i - 1], name: None})
                i -= 1
            else:
                merged.append({**{k: None for k in seen}, name: words[j - 1]})
                j -= 1
        slots = merged[::-1]
        seen.append(name)
    return slots


def _skip(slot: Slot) -> float:
    """Leaving a slot empty costs nothing where an earlier hypothesis left it empty too."""
    return 0.0 if None in slot.values() else 1.0


def vote(slots: Sequence[Slot], weights: Mapping[str, float]) -> tuple[Words, float]:
    """The elected words and the item's confidence (the mean over slots of the winner's share of the weight)."""
    words: Words = []
    shares = []
    for slot in slots:
        score: dict[str | None, float] = {}
        for name, word in slot.items():  # insertion order: earlier hypotheses win ties
            score[word] = score.get(word, 0.0) + weights.get(name, 1.0)
        best = max(score, key=lambda w: score[w])
        total = sum(score.values())
        shares.append(score[best] / total if total > 0 else 1.0 / len(score))
        if best is not None:
            words.append(best)
    return words, float(np.mean(shares)) if shares else 1.0


def rover(
    answers: Mapping[str, Sequence[str]], weights: Mapping[str, float] | None = None
) -> tuple[Words, float]:
    """Plain ROVER (equal weights, labeler-name order) or, with ``weights``, heaviest hypothesis first."""
    if not answers:
        return [], 0.0
    w = weights or {}
    order = sorted(answers, key=lambda name: (-w.get(name, 1.0), name))
    return vote(word_network([(name, answers[name]) for name in order]), {n: w.get(n, 1.0) for n in answers})


def word_errors(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Substitutions + deletions + insertions (the numerator of WER)."""
    return sum(1 for a, b in align(ref, hyp) if a != b)


@dataclass(frozen=True)
class TextLabelerStats:
    labeler: str
    answers: int
    unchanged: int  # answers equal to the machine output
    unchanged_rate: float
    lazy: float  # the excess unchanged rate, 0..1 (module docstring)
    error: float  # word error rate against the leave-one-out consensus (or gold)
    weight: float


@dataclass(frozen=True)
class TextConsensus:
    texts: list[Words]
    confidence: list[float]
    labelers: dict[str, TextLabelerStats]
    machine_right: float  # share of items whose consensus is the machine output


def labeler_aware_rover(
    items: Sequence[Mapping[str, Sequence[str]]],
    machine: Sequence[Sequence[str]],
    gold: Mapping[int, Sequence[str]] | None = None,
    iterations: int = 4,
    discount_unchanged: bool = True,
    shrink: bool = False,
) -> TextConsensus:
    """Ours (module docstring). ``machine`` is each item's machine output, ``gold`` item index -> true words;
    ``discount_unchanged=False`` keeps unchanged answers at their labeler's full weight (the ablation the
    benchmark prints: the weights alone); ``shrink=True`` shrinks each labeler's error rate toward the pooled rate
    (``shrunk_error_rates``; off by default: docs/speech.md, "Where ours does not win", has the figures)."""
    gold = gold or {}
    names = sorted({name for answers in items for name in answers})
    unchanged = {n: 0 for n in names}
    answered = {n: 0 for n in names}
    for answers, out in zip(items, machine, strict=True):
        for name, words in answers.items():
            answered[name] += 1
            unchanged[name] += list(words) == list(out)
    weights = {n: 1.0 for n in names}
    lazy = {n: 0.0 for n in names}
    discount = dict(lazy)  # what an unchanged answer's vote loses: the lazy excess, or nothing (the ablation)
    errors = {n: 0.5 for n in names}
    texts: list[Words] = []
    confidence: list[float] = []
    machine_right = 0.0
    for _ in range(iterations):
        errs: dict[str, list[tuple[int, int]]] = {n: [] for n in names}  # per answer: (word errors, words)
        for k, answers in enumerate(items):
            for name, words in answers.items():
                if k in gold:
                    ref: Sequence[str] = gold[k]
                else:
                    others = {o: a for o, a in answers.items() if o != name}
                    if not others:
                        continue
                    ref = _weighted(others, machine[k], weights, discount)[0]
                errs[name].append((word_errors(ref, words), max(len(ref), 1)))
        rates = shrunk_error_rates(errs) if shrink else raw_error_rates(errs)
        errors = {n: min(max(e, MIN_ERROR), MAX_ERROR) for n, e in rates.items()}
        weights = {n: float(np.log((1 - errors[n]) / errors[n])) for n in names}
        results = [
            _weighted(answers, out, weights, discount) for answers, out in zip(items, machine, strict=True)
        ]
        texts = [r[0] for r in results]
        confidence = [r[1] for r in results]
        machine_right = (
            float(np.mean([t == list(m) for t, m in zip(texts, machine, strict=True)])) if items else 0.0
        )
        lazy = {n: _excess(unchanged[n] / max(answered[n], 1), machine_right) for n in names}
        discount = lazy if discount_unchanged else discount
    return TextConsensus(
        texts,
        confidence,
        {
            n: TextLabelerStats(
                n,
                answered[n],
                unchanged[n],
                unchanged[n] / max(answered[n], 1),
                lazy[n],
                errors[n],
                weights[n],
            )
            for n in names
        },
        machine_right,
    )


def raw_error_rates(counts: Mapping[str, Sequence[tuple[int, int]]]) -> dict[str, float]:
    """Each labeler's word errors over its words (+0.5 / +1, so no rate is 0) from (errors, words) per answer."""
    return {n: (sum(e for e, _ in c) + 0.5) / (sum(w for _, w in c) + 1) for n, c in counts.items()}


def shrunk_error_rates(counts: Mapping[str, Sequence[tuple[int, int]]]) -> dict[str, float]:
    """Each labeler's error rate, shrunk toward the pooled rate by how little evidence it rests on.

    ``counts``: per labeler, (word errors, words) of each of its answers. An empirical-Bayes estimate (normal
    prior over labelers, method of moments): the raw rate ``r_i`` (errors over words) has a sampling variance
    ``v_i`` (the ratio estimator's, from its answers, so errors bunched in a few texts count as the little
    evidence they are); the spread of the true rates ``tau2`` is what the rates' spread around the pooled rate
    ``p`` exceeds the mean sampling variance by; the estimate is ``p + tau2 / (tau2 + v_i) * (r_i - p)``.
    Labelers no more spread out than chance give all ``p`` (equal weights: plain ROVER); a lazy labeler or a
    spammer, well apart from the rest, keeps most of its own rate.
    """
    rates = raw_error_rates(counts)
    variances: dict[str, float] = {}
    for name, pairs in counts.items():
        e = np.array([p[0] for p in pairs], dtype=float)
        w = np.array([p[1] for p in pairs], dtype=float)
        total = float(w.sum())
        # the ratio estimator's variance, never under the binomial variance of as many words
        ratio = float(np.sum((e - rates[name] * w) ** 2)) / total**2 if total else 0.0
        variances[name] = max(ratio, rates[name] * (1 - rates[name]) / (total + 1))
    if len(rates) < 2:
        return rates
    words = {n: sum(p[1] for p in pairs) for n, pairs in counts.items()}
    pooled = (sum(sum(p[0] for p in pairs) for pairs in counts.values()) + 0.5) / (sum(words.values()) + 1)
    spread = float(np.mean([(rates[n] - pooled) ** 2 - variances[n] for n in rates]))
    tau2 = max(spread, 0.0)
    return {
        n: pooled + tau2 / (tau2 + variances[n]) * (rates[n] - pooled) if tau2 > 0 else pooled for n in rates
    }


def _excess(rate: float, expected: float) -> float:
    return min(max((rate - expected) / (1 - expected), 0.0), 1.0) if expected < 1 else 0.0


def _weighted(
    answers: Mapping[str, Sequence[str]],
    machine: Sequence[str],
    weights: Mapping[str, float],
    lazy: Mapping[str, float],
) -> tuple[Words, float]:
    w = {
        name: weights[name] * (1 - lazy[name] if list(words) == list(machine) else 1.0)
        for name, words in answers.items()
    }
    if not any(v > 0 for v in w.values()):
        w = {name: 1.0 for name in answers}  # nobody is trusted: fall back to equal votes
    return rover(answers, {n: max(v, 0.0) for n, v in w.items()})
