"""Why ours (``labeler_aware_rover``) can trail plain ROVER on a crowd of careful labelers only (docs/speech.md,
Benchmark): the same crowd and texts as ``benchmarks/speech.py``'s text mixes, consensus by

- ``ours``: ``labeler_aware_rover`` as it is (raw error rates);
- ``ours_shrunk``: ``shrink=True`` (each rate shrunk toward the pooled rate: ``shrunk_error_rates``);
- ``rover``: plain ROVER (equal votes, labeler-name order);
- ``rover_in_ours_order``: equal votes, but the network built in ours' weights' order (heaviest first): what
  ours' weights do when two always outvote one;
- ``true_weights``: weights ``log((1 - e) / e)`` from each labeler's WER against the truth (an oracle), heaviest
  first;

and each careful labeler's raw, leave-one-out error rate beside its WER against the truth.

    python benchmarks/speech_text_weights.py --first-seed 20 --seeds 10      # about a minute per mix
    python benchmarks/speech_text_weights.py --first-seed 30 --seeds 50 --mix all_careful
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence

import numpy as np
from speech import TEXT_MIXES, _assign, text_crowd

from labeling_assets.core.speech.crowd import machine_output
from labeling_assets.core.speech.synth import make_utterance
from labeling_assets.core.speech.text_consensus import labeler_aware_rover, rover, vote, word_network
from labeling_assets.core.speech.text_metrics import wer


def run(seed: int, mix: str, utterances: int) -> tuple[dict[str, float], list[tuple[float, float]]]:
    rng = np.random.default_rng([seed, 0])
    utts = [make_utterance(rng) for _ in range(utterances)]
    rng = np.random.default_rng([seed, 2, TEXT_MIXES.index(mix)])
    crowd = text_crowd(mix, rng)
    truth = [t.split() for u in utts for t in (u.transcript, u.translation)]
    machine = [machine_output(t, rng) for t in truth]
    items = []
    for t, m in zip(truth, machine, strict=True):
        chosen = [crowd[k] for k in _assign(len(crowd), rng)]
        items.append({lab.name: lab.correct(t, m, rng) for lab in chosen})
    ours = labeler_aware_rover(items, machine)
    heavy = {n: s.weight for n, s in ours.labelers.items()}
    true_error = {}
    for lab in crowd:
        ks = [k for k, answers in enumerate(items) if lab.name in answers]
        true_error[lab.name] = max(wer([truth[k] for k in ks], [items[k][lab.name] for k in ks]), 0.01)
    oracle = {n: float(np.log((1 - e) / e)) for n, e in true_error.items()}

    def in_order(answers: Mapping[str, Sequence[str]]) -> list[str]:
        order = sorted(answers, key=lambda n: (-heavy[n], n))
        return vote(word_network([(n, answers[n]) for n in order]), {})[0]

    texts = {
        "ours": ours.texts,
        "ours_shrunk": labeler_aware_rover(items, machine, shrink=True).texts,
        "rover": [rover(answers)[0] for answers in items],
        "rover_in_ours_order": [in_order(answers) for answers in items],
        "true_weights": [rover(answers, oracle)[0] for answers in items],
    }
    pairs = [(ours.labelers[lab.name].error, true_error[lab.name]) for lab in crowd if not lab.lazy]
    return {m: wer(truth, t) for m, t in texts.items()}, pairs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=20)
    parser.add_argument("--utterances", type=int, default=50)
    parser.add_argument("--mix", choices=TEXT_MIXES, default="all_careful")
    args = parser.parse_args()
    figures: dict[str, list[float]] = {}
    ratios, ranks = [], []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        wers, pairs = run(seed, args.mix, args.utterances)
        for method, value in wers.items():
            figures.setdefault(method, []).append(value)
        est, true = np.array(pairs).T
        ratios.extend(est / true)
        ranks.append(float(np.corrcoef(np.argsort(np.argsort(est)), np.argsort(np.argsort(true)))[0, 1]))
    last = args.first_seed + args.seeds - 1
    print(
        f"{args.mix}, seeds {args.first_seed}-{last}, {args.utterances} utterances each; WER, mean ± sd over seeds"
    )
    rover_wer = np.array(figures["rover"])
    for method, values in figures.items():
        v = np.array(values)
        print(
            f"{method:24s} {v.mean():.4f} ± {v.std(ddof=1):.4f}"
            f"  (seeds better / worse than rover: {int(np.sum(v < rover_wer))} / {int(np.sum(v > rover_wer))})"
        )
    print(
        f"careful labelers' raw leave-one-out error rate / true WER: median {np.median(ratios):.2f}, "
        f"range {min(ratios):.2f}-{max(ratios):.2f}; Spearman rank correlation of the two per seed: "
        f"mean {np.mean(ranks):.2f}, min {min(ranks):.2f}"
    )


if __name__ == "__main__":
    main()
