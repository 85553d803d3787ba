"""Speech consensus (issue 35): segments (ours vs frame majority) and corrected texts (ours vs ROVER and the best
single labeler), over crowd mixes and seeds, on synthesised code-switched utterances.

    python benchmarks/speech.py                      # 4 + 4 mixes x 5 seeds, 50 utterances each
    python benchmarks/speech.py --seeds 2 --utterances 20
    python benchmarks/speech.py --first-seed 5          # seeds 5-9: held out from the tuning of ours (docs/speech.md)
    python benchmarks/speech.py --help

crowd-kit (the ``bench`` extra, ``pip install crowd-kit==1.4.2``) adds its ROVER as a column; pyannote.metrics
(a main dependency) gives the segment tables' identification error rate and boundary F1.

The data (``core.speech.synth.make_utterance``): per seed, utterances of four English and Vietnamese phrases
spoken by espeak-ng (a switch after a phrase with probability 0.7, a noise gap after a phrase with probability
0.25), so the regions (``en``, ``vi``, ``noise``), the transcript and an English translation are known. The
machine output (``core.speech.crowd.machine_output``): the truth with 6% of words dropped, 5% of neighbours swapped
and 10% misspelled. Each utterance gives two texts to correct: its transcript and its translation (pooled below).

Segment mixes (five labelers, three per utterance; good labelers drawn per seed: start and end offsets
U(-0.08, 0.08) s, jitter 0.02-0.08 s, 2-10% missed switches, 1-5% missed regions, 0.05-0.2 false regions each):

- all_good: five good labelers;
- one_spammer: four good, one spammer (one to five random regions of random labels);
- late_wide: four good, one who marks 0.2 s early and ends 0.2 s late, with 0.03 s jitter;
- switch_misser: four good, one who misses 50% of the switches and has 0.12 s of jitter.

Text mixes (five labelers, three per text; careful correctors fix each machine error with probability 0.8-0.97
and add a typo in 0-3% of words): all_careful; one_lazy (four careful, one who submits the machine output
unchanged); two_lazy (three careful, two lazy); one_spammer (four careful, one who submits the machine words
shuffled, 30% dropped).

Methods. Segments: ``ours`` (``segment_consensus.labeler_aware``, no gold) and ``frame_majority`` (the
baseline, 10 ms frames). Scores pooled over the utterances of a seed: segment F1 (a region matches a true one
when the labels agree and IoU >= 0.5, one to one), boundary error (mean absolute seconds over the starts and ends
of matched regions) and frame accuracy; and pyannote.metrics' identification error rate (wrong seconds, label or
none, over the truth's region seconds) and boundary F1 (boundaries within 0.1 s of a true one, one to one, labels
ignored; ``core.speech.pyannote_eval``). Texts: ``ours`` (``text_consensus.labeler_aware_rover``, no gold),
``ours_weights_alone`` (the ablation: unchanged answers not discounted), ``rover`` (our plain ROVER),
``crowdkit_rover`` (``crowdkit.aggregation.ROVER``, whitespace tokens, hypotheses in labeler-name order; it and
ours differ only in tie-breaking and in the cost of skipping the network's leading slots: see
tests/core/test_speech_crowdkit_rover.py), ``best_single`` (the labeler with the lowest WER against the
truth, on the texts it answered: an oracle no project has) and ``machine`` (the output before correction). WER and CER by jiwer, pooled over the texts of a seed.
Printed: mean ± sd over seeds.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

import numpy as np

from labeling_assets.core.speech.crowd import (
    SegmentLabeler,
    TextLabeler,
    careful_text_labeler,
    good_segment_labeler,
    machine_output,
)
from labeling_assets.core.speech.pyannote_eval import pyannote_score
from labeling_assets.core.speech.regions import Region, frame_accuracy, pooled_segment_score
from labeling_assets.core.speech.segment_consensus import frame_majority, labeler_aware
from labeling_assets.core.speech.synth import LABELS, Utterance, make_utterance
from labeling_assets.core.speech.text_consensus import labeler_aware_rover, rover
from labeling_assets.core.speech.text_metrics import cer, wer

SEGMENT_MIXES = ("all_good", "one_spammer", "late_wide", "switch_misser")
TEXT_MIXES = ("all_careful", "one_lazy", "two_lazy", "one_spammer")
PER_ITEM = 3


def segment_crowd(mix: str, rng: np.random.Generator) -> list[SegmentLabeler]:
    good = [good_segment_labeler(f"good{i}", rng) for i in range(5)]
    odd: dict[str, SegmentLabeler] = {
        "one_spammer": SegmentLabeler("spammer", spammer=True),
        "late_wide": SegmentLabeler("late_wide", start_offset=-0.2, end_offset=0.2, jitter=0.03),
        "switch_misser": SegmentLabeler("switch_misser", miss_switch=0.5, jitter=0.12),
    }
    return good if mix == "all_good" else [*good[:4], odd[mix]]


def text_crowd(mix: str, rng: np.random.Generator) -> list[TextLabeler]:
    careful = [careful_text_labeler(f"careful{i}", rng) for i in range(5)]
    if mix == "all_careful":
        return careful
    if mix == "one_lazy":
        return [*careful[:4], TextLabeler("lazy0", lazy=True)]
    if mix == "two_lazy":
        return [*careful[:3], TextLabeler("lazy0", lazy=True), TextLabeler("lazy1", lazy=True)]
    return [*careful[:4], TextLabeler("spammer", spammer=True)]


def _assign(n_labelers: int, rng: np.random.Generator) -> list[int]:
    return [int(k) for k in rng.choice(n_labelers, PER_ITEM, replace=False)]


def segment_run(
    utterances: Sequence[Utterance], mix: str, seed: int
) -> dict[str, tuple[float, float, float]]:
    rng = np.random.default_rng([seed, 1, SEGMENT_MIXES.index(mix)])
    crowd = segment_crowd(mix, rng)
    items = []
    for u in utterances:
        chosen = [crowd[k] for k in _assign(len(crowd), rng)]
        items.append({lab.name: lab.mark(u.regions, u.duration, LABELS, rng) for lab in chosen})
    durations = [u.duration for u in utterances]
    truth = [list(u.regions) for u in utterances]
    found: dict[str, list[list[Region]]] = {
        "ours": labeler_aware(items, durations, LABELS).regions,
        "frame_majority": frame_majority(items, durations, LABELS),
    }
    out = {}
    for method, regions in found.items():
        score = pooled_segment_score(regions, truth)
        accuracy = float(
            np.mean(
                [frame_accuracy(r, t, LABELS, d) for r, t, d in zip(regions, truth, durations, strict=True)]
            )
        )
        theirs = pyannote_score(regions, truth, durations)
        out[method] = (
            score.boundary_error,
            score.f1,
            accuracy,
            theirs.identification_error_rate,
            theirs.boundary_f1,
        )
    return out


def text_run(utterances: Sequence[Utterance], mix: str, seed: int) -> dict[str, tuple[float, float]]:
    rng = np.random.default_rng([seed, 2, TEXT_MIXES.index(mix)])
    crowd = text_crowd(mix, rng)
    truth = [t.split() for u in utterances for t in (u.transcript, u.translation)]
    machine = [machine_output(t, rng) for t in truth]
    items = []
    for t, m in zip(truth, machine, strict=True):
        chosen = [crowd[k] for k in _assign(len(crowd), rng)]
        items.append({lab.name: lab.correct(t, m, rng) for lab in chosen})
    texts: dict[str, list[list[str]]] = {
        "ours": labeler_aware_rover(items, machine).texts,
        "ours_weights_alone": labeler_aware_rover(items, machine, discount_unchanged=False).texts,
        "rover": [rover(answers)[0] for answers in items],
        **crowdkit_rover(items),
        "machine": machine,
    }
    out = {method: (wer(truth, hyp), cer(truth, hyp)) for method, hyp in texts.items()}
    single = []
    for lab in crowd:
        ks = [k for k, answers in enumerate(items) if lab.name in answers]
        refs, hyps = [truth[k] for k in ks], [items[k][lab.name] for k in ks]
        single.append((wer(refs, hyps), cer(refs, hyps)))
    out["best_single"] = min(single)
    return out


def crowdkit_rover(items: Sequence[dict[str, list[str]]]) -> dict[str, list[list[str]]]:
    """crowd-kit's ROVER of every item ({} without crowd-kit: the column is left out)."""
    try:
        import pandas as pd
        from crowdkit.aggregation import ROVER
    except ImportError:
        return {}
    rows = [(k, name, " ".join(answers[name])) for k, answers in enumerate(items) for name in sorted(answers)]
    texts = ROVER(tokenizer=str.split, detokenizer=" ".join).fit_predict(
        pd.DataFrame(rows, columns=["task", "worker", "text"])
    )
    return {"crowdkit_rover": [str(texts[k]).split() for k in range(len(items))]}


def _table(title: str, header: Sequence[str], rows: dict[tuple[str, str], list[tuple[float, ...]]]) -> None:
    print(f"\n{title}\n| mix | method | " + " | ".join(header) + " |")
    print("|---|---|" + "---|" * len(header))
    for (mix, method), runs in rows.items():
        values = np.asarray(runs)
        cells = [
            f"{m:.4f} ± {s:.4f}" for m, s in zip(values.mean(axis=0), values.std(axis=0, ddof=1), strict=True)
        ]
        print(f"| {mix} | {method} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1"
    )
    parser.add_argument("--utterances", type=int, default=50)
    args = parser.parse_args()
    seg: dict[tuple[str, str], list[tuple[float, ...]]] = {}
    txt: dict[tuple[str, str], list[tuple[float, ...]]] = {}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        rng = np.random.default_rng([seed, 0])
        utterances = [make_utterance(rng) for _ in range(args.utterances)]
        runs: list[
            tuple[
                Sequence[str],
                Callable[..., dict[str, tuple[float, ...]]],
                dict[tuple[str, str], list[tuple[float, ...]]],
            ]
        ] = [
            (SEGMENT_MIXES, segment_run, seg),
            (TEXT_MIXES, text_run, txt),
        ]
        for mixes, run, table in runs:
            for mix in mixes:
                for method, figures in run(utterances, mix, seed).items():
                    table.setdefault((mix, method), []).append(figures)
    last = args.first_seed + args.seeds - 1
    print(f"seeds {args.first_seed}-{last}, {args.utterances} utterances each; mean ± sd over seeds")
    _table(
        "Segments",
        [
            "boundary error (s)",
            "segment F1",
            "frame accuracy",
            "identification error rate (pyannote)",
            "boundary F1 at 0.1 s (pyannote)",
        ],
        seg,
    )
    _table("Texts (transcripts and translations pooled)", ["WER", "CER"], txt)


if __name__ == "__main__":
    main()
