"""The text_edits gold gate's threshold: what simulated correctors score on gold (1 - WER against the gold text,
pooled over gold words), and which of them a threshold pauses.

    python benchmarks/text_edits_gold_gate.py                  # 20 seeds of 30 gold items
    python benchmarks/text_edits_gold_gate.py --seeds 5 --gold-items 60

The gate fails a labeler when the upper end of the 95% Wilson interval of their gold score (reference words right
/ reference words, each item floored at 0: ``text_edits.answers.word_counts``) is below the threshold. Texts are
four demo phrases each (``core.speech.synth.PHRASES``, English and Vietnamese), the machine output made by
``crowd.machine_output``; the labelers: three careful correctors (``careful_text_labeler``: fix 0.8-0.97 of the
machine's errors, typos 0-3%), a lazy one (submits the machine output) and a spammer (``crowd.TextLabeler``).
Printed: each labeler kind's mean score, one seed's interval, and how often each candidate threshold pauses it.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from labeling_assets.core.consensus.gates import wilson_interval
from labeling_assets.core.speech.crowd import TextLabeler, careful_text_labeler, machine_output
from labeling_assets.core.speech.synth import PHRASES
from labeling_assets.core.tasks.text_edits.answers import word_counts

CANDIDATES = (0.8, 0.85, 0.9, 0.95)
KINDS = ("careful", "lazy", "spammer")


def scores(n_items: int, seed: int) -> dict[str, list[tuple[int, int]]]:
    """Per labeler kind, each labeler's (words right, gold words) on ``n_items`` gold texts."""
    rng = np.random.default_rng(seed)
    phrases = [p for lang in PHRASES.values() for p, _ in lang]
    crowd = [("careful", careful_text_labeler(f"c{k}", rng)) for k in range(3)]
    crowd += [("lazy", TextLabeler("lazy", lazy=True)), ("spammer", TextLabeler("spam", spammer=True))]
    rows, truth = [], {}
    for n in range(n_items):
        said = " ".join(str(p) for p in rng.choice(phrases, size=4)).split()
        heard = machine_output(said, rng)
        truth[n] = " ".join(said)
        rows += [{"item_id": n, "labeler": who.name, "label": " ".join(who.correct(said, heard, rng))} for _, who in crowd]
    frame = pd.DataFrame(rows)
    out: dict[str, list[tuple[int, int]]] = {k: [] for k in KINDS}
    for kind, who in crowd:
        out[kind].append(word_counts(frame[frame["labeler"] == who.name], truth))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--gold-items", type=int, default=30)
    args = parser.parse_args()
    runs = [scores(args.gold_items, seed) for seed in range(args.seeds)]
    print(f"{args.gold_items} gold items, {args.seeds} seeds; score = 1 - WER on gold (words right / gold words)")
    print("| labeler | mean score | seed 0 interval | " + " | ".join(f"paused at {t}" for t in CANDIDATES) + " |")
    print("|---|---:|---|" + "---:|" * len(CANDIDATES))
    for kind in KINDS:
        counts = [c for run in runs for c in run[kind]]
        rates = [r / n for r, n in counts]
        low, high = wilson_interval(*runs[0][kind][0])
        paused = [np.mean([wilson_interval(r, n)[1] < t for r, n in counts]) for t in CANDIDATES]
        print(f"| {kind} | {np.mean(rates):.3f} | [{low:.3f}, {high:.3f}] | " +
              " | ".join(f"{p:.0%}" for p in paused) + " |")  # fmt: skip


if __name__ == "__main__":
    main()
