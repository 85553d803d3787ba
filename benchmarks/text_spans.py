"""Span consensus (issue 31): entity F1 against the truth, ours vs the token baselines, over crowd mixes and seeds.

    python benchmarks/text_spans.py                     # 4 mixes x 5 seeds, 600 sentences each, and the timing
    python benchmarks/text_spans.py --seeds 2 --items 300 --timing-spans 0
    python benchmarks/text_spans.py --help

The data: ``core.tasks.text_spans.demo.sentences``, template sentences filled with Faker's names (PER),
companies (ORG) and places (LOC), so every entity's offsets are known; about one in six has no entity.
The crowd (``demo.simulate_span_crowd``): five labelers per mix, good ones drawn per seed (miss 5-20%, wrong
type 2-10%, a boundary one token off 5-15%, 0.02-0.1 false spans per sentence).

- all_good: five good labelers, three per sentence;
- one_spammer: four good and one spammer (random spans of random types, two per sentence), three per sentence;
- sparse_2: five good labelers, two per sentence;
- sloppy: four good and one boundary-sloppy labeler (a boundary off 30% of the time, and the end one token too
  far 60% of the time, as a habit), three per sentence.

Methods (``core.tasks.text_spans.consensus.aggregate_spans``): ``span_em`` (ours, ``auto``), ``token_majority``,
``token_dawid_skene``; and ``best_single``, the best labeler's own spans on the sentences it answered, that
labeler picked by its F1 against the truth (an oracle no real project has). Entity F1: seqeval, IOB2 strict,
over our tokenizer's tokens. Printed: mean and sd over seeds per mix and method; how well each method's per-item
confidence ranks the items it got exactly right above the others (ROC AUC); then the time of each method at about
``--timing-spans`` marked spans (three labelers per sentence, the one_spammer mix).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from seqeval.metrics import f1_score
from seqeval.scheme import IOB2
from sklearn.metrics import roc_auc_score

from labeling_assets.core.tasks.text_spans.consensus import aggregate_spans
from labeling_assets.core.tasks.text_spans.demo import (
    ENTITY_TYPES,
    Sentence,
    SpanLabeler,
    good_labeler,
    sentences,
    simulate_span_crowd,
)
from labeling_assets.core.tasks.text_spans.spans import Span, bio_tags, tokenize
from labeling_assets.core.tasks.text_spans.votes import SpanConsensus, SpanVote

METHODS = ("span_em", "token_majority", "token_dawid_skene")


def _mix(name: str, rng: np.random.Generator) -> tuple[list[SpanLabeler], int]:
    good = [good_labeler(f"good{i}", rng) for i in range(5)]
    if name == "all_good":
        return good, 3
    if name == "one_spammer":
        return [*good[:4], SpanLabeler("spammer", spammer=True)], 3
    if name == "sparse_2":
        return good, 2
    if name == "sloppy":
        return [*good[:4], SpanLabeler("sloppy", miss=0.1, wrong_type=0.05, boundary=0.3, long_end=0.6)], 3
    raise ValueError(name)


MIXES: dict[str, Callable[[np.random.Generator], tuple[list[SpanLabeler], int]]] = {
    name: (lambda rng, name=name: _mix(name, rng)) for name in ("all_good", "one_spammer", "sparse_2", "sloppy")
}


def entity_f1(predicted: Mapping[str, Sequence[Span]], data: Sequence[Sentence]) -> float:
    """seqeval entity F1 (IOB2, strict) of ``predicted`` over the sentences in ``data``."""
    truth, guess = [], []
    for sentence in data:
        tokens = tokenize(sentence.text)
        truth.append(bio_tags(sentence.entities, tokens))
        guess.append(bio_tags(predicted.get(sentence.item_id, ()), tokens))
    return float(f1_score(truth, guess, mode="strict", scheme=IOB2))


def best_single(votes: Sequence[SpanVote], data: Sequence[Sentence]) -> float:
    by_id = {s.item_id: s for s in data}
    per: dict[str, dict[str, tuple[Span, ...]]] = {}
    for vote in votes:
        per.setdefault(vote.labeler_id, {})[vote.item_id] = vote.spans
    return max(entity_f1(answers, [by_id[i] for i in answers]) for answers in per.values())


def confidence_auc(result: SpanConsensus, data: Sequence[Sentence]) -> float:
    """How well the per-item confidence ranks wrong items below right ones (ROC AUC; right = every span exact)."""
    right = [set(result.labels[s.item_id]) == set(s.entities) for s in data]
    if all(right) or not any(right):
        return float("nan")
    return float(roc_auc_score(right, [result.confidence[s.item_id] for s in data]))


def run(seeds: int, n_items: int) -> tuple[dict[str, dict[str, list[float]]], dict[str, dict[str, list[float]]]]:
    scores: dict[str, dict[str, list[float]]] = {}
    aucs: dict[str, dict[str, list[float]]] = {}
    for mix, make in MIXES.items():
        for seed in range(seeds):
            rng = np.random.default_rng(1000 + seed)
            data = sentences(n_items, seed)
            labelers, overlap = make(rng)
            votes = simulate_span_crowd(data, labelers, overlap, seed)
            texts = {s.item_id: s.text for s in data}
            row = scores.setdefault(mix, {})
            for method in METHODS:
                result = aggregate_spans(votes, texts, ENTITY_TYPES, method)
                row.setdefault(method, []).append(entity_f1(result.labels, data))
                aucs.setdefault(mix, {}).setdefault(method, []).append(confidence_auc(result, data))
            row.setdefault("best_single", []).append(best_single(votes, data))
    return scores, aucs


def timing(n_spans: int) -> None:
    n_items = max(1, int(n_spans / 5.3))  # about 5.3 marks per sentence at three labelers (measured below)
    data = sentences(n_items, 99)
    labelers, overlap = _mix("one_spammer", np.random.default_rng(99))
    votes = simulate_span_crowd(data, labelers, overlap, 99)
    texts = {s.item_id: s.text for s in data}
    marked = sum(len(v.spans) for v in votes)
    print(f"\ntiming: {len(data)} sentences, {len(votes)} answers, {marked} marked spans")
    for method in METHODS:
        start = time.perf_counter()
        aggregate_spans(votes, texts, ENTITY_TYPES, method)
        print(f"  {method:18s} {time.perf_counter() - start:6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--items", type=int, default=600, help="sentences per seed and mix")
    parser.add_argument("--timing-spans", type=int, default=100_000, help="0: no timing")
    args = parser.parse_args()
    scores, aucs = run(args.seeds, args.items)
    columns = (*METHODS, "best_single")
    print(f"entity F1 (seqeval strict, IOB2), mean +- sd over {args.seeds} seeds, {args.items} sentences each\n")
    print(f"| mix | {' | '.join(columns)} | ours >= both baselines |")
    print(f"|---|{'---|' * len(columns)}---|")
    for mix, row in scores.items():
        means = {m: float(np.mean(v)) for m, v in row.items()}
        cells = " | ".join(f"{means[m]:.4f} +- {np.std(row[m]):.4f}" for m in columns)
        wins = means["span_em"] >= max(means["token_majority"], means["token_dawid_skene"])
        print(f"| {mix} | {cells} | {'yes' if wins else 'NO'} |")
    print("\nper-item confidence: ROC AUC of ranking items decided exactly right above the others, mean +- sd\n")
    print(f"| mix | {' | '.join(METHODS)} |")
    print(f"|---|{'---|' * len(METHODS)}")
    for mix, row in aucs.items():
        print(f"| {mix} | {' | '.join(f'{np.nanmean(row[m]):.3f} +- {np.nanstd(row[m]):.3f}' for m in METHODS)} |")
    if args.timing_spans:
        timing(args.timing_spans)


if __name__ == "__main__":
    main()
