"""The gold gate's threshold per kind: what the demo crowds score on gold, and which labelers a threshold pauses.

    python benchmarks/gold_gate_thresholds.py                 # spans, boxes, audio segments: 20 seeds of demo-sized gold
    python benchmarks/gold_gate_thresholds.py --seeds 5 --gold-items 60

The gold gate (the check ``labeler_gold_accuracy_at_least_threshold`` and the automatic pause) fails a labeler when
the upper end of the 95% Wilson interval of their gold score is below the threshold. For spans and boxes the score is
matched / (gold + false), so a miss costs one trial and a box or span slightly off costs two (a false one and a
missed one): good labelers score well under a class kind's 0.8.

Printed per kind: each simulated labeler's gold score on a large sample (their true rate, 2,000 items), and on
``--gold-items`` gold items answered ``--overlap``-fold (the demo's 10% of 300 items, three answers each) over
``--seeds`` seeds: the mean score, one seed's Wilson interval, and how often the gate pauses them at each candidate
threshold. The crowds are the demos' own: ``cli.demo_text.span_crowd`` (good, good, misses, sloppy, spammer) and
``boxes.crowd.default_box_crowd`` (good, good, average, average, spammer). Spans are scored strict (same offsets and
type, the gate's score) and partial (same type, overlapping) beside it. Audio segments: ``benchmarks/speech.py``'s
labelers (two good ones, the late-and-wide marker, the switch misser, the spammer) on utterances of four language
regions laid out as ``speech.synth.make_utterance`` lays them (no audio is needed to score regions).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

import numpy as np

from labeling_assets.cli.demo_text import span_crowd
from labeling_assets.core.consensus.gates import wilson_interval
from labeling_assets.core.speech.crowd import SegmentLabeler, good_segment_labeler
from labeling_assets.core.speech.regions import Region
from labeling_assets.core.tasks.audio_segments.stats import match_counts as region_counts
from labeling_assets.core.tasks.boxes.crowd import default_box_crowd, make_scenes, simulate_boxes
from labeling_assets.core.tasks.boxes.gold import gold_box_score
from labeling_assets.core.tasks.text_spans.demo import ENTITY_TYPES, sentences, simulate_span_crowd
from labeling_assets.core.tasks.text_spans.stats import match_counts

Counts = dict[str, tuple[int, int]]  # labeler -> (matched, trials)
CANDIDATES = (0.4, 0.5, 0.6, 0.7, 0.8)


def span_counts(n_items: int, overlap: int, seed: int, mode: str = "strict") -> Counts:
    """Each demo span labeler's (matched, gold + false spans) on ``n_items`` gold sentences (``answers.gold_counts``'s
    rule: an item both leave empty is one of one)."""
    data = sentences(n_items, seed=seed)
    truth = {s.item_id: s.entities for s in data}
    out: dict[str, list[int]] = {}
    for vote in simulate_span_crowd(data, span_crowd(5, seed=seed), overlap, seed=seed):
        reference = truth[vote.item_id]
        tp, fp, fn = (1, 0, 0) if not reference and not vote.spans else match_counts(vote.spans, reference, mode)  # type: ignore[arg-type]
        got = out.setdefault(vote.labeler_id, [0, 0])
        got[0], got[1] = got[0] + tp, got[1] + tp + fp + fn
    return {k: (v[0], v[1]) for k, v in sorted(out.items())}


def box_counts(n_items: int, overlap: int, seed: int) -> Counts:
    """Each demo box labeler's (matched, gold + false boxes) at IoU 0.5 on ``n_items`` gold scenes."""
    classes = [str(d) for d in range(5)]
    rng = np.random.default_rng([seed, 11])
    truth = make_scenes(n_items, classes, rng, max_objects=4)
    crowd = default_box_crowd(5, seed=seed)
    votes, boxes = simulate_boxes(truth, [m.labeler for m in crowd], overlap, classes, rng)
    gold = truth.dropna(subset=["label"]).reset_index(drop=True)
    scores = gold_box_score(votes, boxes, gold, sorted(truth["item_id"].unique()))
    return {str(r.labeler_id): (int(r.matched), int(r.n)) for r in scores.itertuples(index=False)}


def segment_counts(n_items: int, overlap: int, seed: int) -> Counts:
    """Each simulated segment labeler's (matched, gold + false regions) at IoU 0.5, same label
    (``audio_segments.stats.gold_counts``'s rule), on ``n_items`` gold utterances answered ``overlap``-fold."""
    rng = np.random.default_rng([seed, 35])
    crowd = [good_segment_labeler("good0", rng), good_segment_labeler("good1", rng),
             SegmentLabeler("late_wide", start_offset=-0.2, end_offset=0.2, jitter=0.03),
             SegmentLabeler("switch_misser", miss_switch=0.5, jitter=0.12), SegmentLabeler("spammer", spammer=True)]  # fmt: skip
    out: dict[str, list[int]] = {}
    for _ in range(n_items):
        t, truth, lang = 0.0, [], str(rng.choice(["en", "vi"]))
        for _ in range(4):
            t += float(rng.uniform(0.15, 0.4))
            length = float(rng.uniform(0.8, 1.8))
            truth.append(Region(round(t, 3), round(t + length, 3), lang))
            t += length
            lang = lang if rng.random() >= 0.7 else ("vi" if lang == "en" else "en")
        for k in rng.choice(len(crowd), size=overlap, replace=False):
            labeler = crowd[int(k)]
            got = out.setdefault(labeler.name, [0, 0])
            matched, trials = region_counts(labeler.mark(truth, t + 0.2, ["en", "vi", "noise"], rng), truth)
            got[0], got[1] = got[0] + matched, got[1] + trials
    return {k: (v[0], v[1]) for k, v in sorted(out.items())}


def report(title: str, counts: Callable[[int, int, int], Counts], args: argparse.Namespace) -> None:
    big = counts(2000, args.overlap, 0)
    runs = [counts(args.gold_items, args.overlap, seed) for seed in range(1, args.seeds + 1)]
    print(f"\n## {title}\n")
    head = " | ".join(f"paused at {t}" for t in CANDIDATES)
    print(f"| labeler | true rate (2,000 items) | mean on {args.gold_items} gold items | seed 1: k/n, 95% CI | {head} |")
    print("|---|---:|---:|---|" + "---:|" * len(CANDIDATES))
    for name, (k, n) in big.items():
        mine = [r[name] for r in runs if r.get(name, (0, 0))[1]]
        k1, n1 = runs[0].get(name, (0, 0))
        low, high = wilson_interval(k1, n1)
        paused = [sum(wilson_interval(a, b)[1] < t for a, b in mine) / len(mine) for t in CANDIDATES]
        print(f"| {name} | {k / n:.3f} | {np.mean([a / b for a, b in mine]):.3f} | {k1}/{n1} [{low:.2f}, {high:.2f}] | "
              + " | ".join(f"{p:.0%}" for p in paused) + " |")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--gold-items", type=int, default=30, help="gold items answered (the demo: 10%% of 300)")
    parser.add_argument("--overlap", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"entity types {', '.join(ENTITY_TYPES)}; {args.seeds} seeds; pause = Wilson upper bound below the threshold")
    report("text spans, strict (the gate's score)", span_counts, args)
    report("text spans, partial (same type, overlapping)", lambda n, o, s: span_counts(n, o, s, "partial"), args)
    report("boxes (IoU 0.5)", box_counts, args)
    report("audio segments (IoU 0.5, same label)", segment_counts, args)


if __name__ == "__main__":
    main()
