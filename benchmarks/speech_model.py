"""The audio_segments frame classifier (issue 35) trained on the truth vs on a simulated crowd's consensus.

    python benchmarks/speech_model.py                        # 3 seeds, 60 train + 15 val + 30 test utterances, 20 epochs
    python benchmarks/speech_model.py --seeds 1 --train 40 --epochs 10
    python benchmarks/speech_model.py --help

Per seed: utterances of four English and Vietnamese phrases spoken by espeak-ng (``synth.make_utterance``;
noise gaps after a phrase with probability 0.25), written as 16-bit WAVs. A crowd of five labelers, three per
utterance (``benchmarks/speech.py``'s ``one_spammer`` mix: four good labelers drawn per seed, start and end
offsets U(-0.08, 0.08) s, jitter 0.02-0.08 s, 2-10% missed switches, and one spammer) marks the train and val
utterances. The frame classifier (``core/tasks/audio_segments/trainer.py``, its default settings but ``--epochs``)
is trained (20 epochs by default) on each of three labellings of the same train and val audio:

- ``truth``: the regions known by construction;
- ``labeler_aware``: ``segment_consensus.labeler_aware`` of the crowd's answers (ours, no gold);
- ``frame_majority``: ``segment_consensus.frame_majority`` of the same answers (the baseline);

and scored on the test utterances' truth: frame accuracy (pooled over frames; none counts as a code), segment F1
(same label and IoU >= 0.5, one to one, pooled) and boundary error (mean absolute seconds over the starts and ends
of matched regions). The train labels' own segment F1 against the truth is printed beside them, and per seed
their shape: the mean gap between consecutive regions of an utterance and how many regions span two or more
true ones, within 0.05 s and (in brackets) covering at least half of each (``--labels-only``: only that, no
training).
Printed: mean ± sd over seeds, and the seconds each fit took (CPU unless CUDA is present).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from labeling_assets.core.speech.crowd import SegmentLabeler, good_segment_labeler
from labeling_assets.core.speech.regions import Region, pooled_segment_score
from labeling_assets.core.speech.segment_consensus import frame_majority, labeler_aware
from labeling_assets.core.speech.synth import LABELS, Utterance, make_utterance, write_wav
from labeling_assets.core.tasks.audio_segments.trainer import TRAINER, frame_accuracy_pooled

PER_ITEM = 3
SOURCES = ("truth", "labeler_aware", "frame_majority")


def _answer(regions: list[Region]) -> list[dict[str, object]]:
    return [{"start": r.start, "end": r.end, "label": r.label} for r in regions]


def _crowd_labels(utterances: list[Utterance], rng: np.random.Generator) -> dict[str, list[list[Region]]]:
    crowd = [*(good_segment_labeler(f"good{i}", rng) for i in range(4)), SegmentLabeler("spammer", spammer=True)]
    items = []
    for u in utterances:
        chosen = [crowd[int(k)] for k in rng.choice(len(crowd), PER_ITEM, replace=False)]
        items.append({lab.name: lab.mark(u.regions, u.duration, LABELS, rng) for lab in chosen})
    durations = [u.duration for u in utterances]
    return {"truth": [list(u.regions) for u in utterances],
            "labeler_aware": labeler_aware(items, durations, LABELS).regions,
            "frame_majority": frame_majority(items, durations, LABELS)}  # fmt: skip


def label_shape(found: list[list[Region]], truth: list[list[Region]]) -> tuple[float, int, int]:
    """(mean gap in s between consecutive regions of an utterance, regions that span two or more true regions
    within 0.05 s, regions that cover at least half of each of two or more true regions: the same merges counted
    without a tolerance in seconds, so a merged region that ends early counts too)."""
    gaps = [b.start - a.end for regions in found for a, b in zip(regions, regions[1:], strict=False)]
    merged = sum(len([t for t in true if t.start >= r.start - 0.05 and t.end <= r.end + 0.05]) >= 2
                 for regions, true in zip(found, truth, strict=True) for r in regions)  # fmt: skip
    covering = sum(sum(min(r.end, t.end) - max(r.start, t.start) >= t.duration / 2 for t in true) >= 2
                   for regions, true in zip(found, truth, strict=True) for r in regions)  # fmt: skip
    return float(np.mean(gaps)), int(merged), int(covering)


def _frame(paths: list[str], regions: list[list[Region]]) -> pd.DataFrame:
    return pd.DataFrame({"item_id": paths, "uri": paths, "label": [_answer(r) for r in regions]})


def run_seed(
    seed: int, n_train: int, n_val: int, n_test: int, epochs: int, folder: Path, labels_only: bool = False
) -> dict[str, tuple[float, ...]]:
    rng = np.random.default_rng([seed, 35])
    utterances = [make_utterance(rng, cache_dir=folder / "phrases") for _ in range(n_train + n_val + n_test)]
    paths = []
    for k, u in enumerate(utterances):
        path = folder / f"s{seed}_{k}.wav"
        write_wav(path, u.audio, u.sample_rate)
        paths.append(str(path))
    cut = n_train + n_val
    labels = _crowd_labels(utterances[:cut], np.random.default_rng([seed, 36]))
    test = _frame(paths[cut:], [list(u.regions) for u in utterances[cut:]])
    out: dict[str, tuple[float, ...]] = {}
    for source in SOURCES:
        label_score = pooled_segment_score(labels[source][:n_train], labels["truth"][:n_train])
        gap, merged, covering = label_shape(labels[source][:n_train], labels["truth"][:n_train])
        print(f"seed {seed} {source} train labels: segment F1 {label_score.f1:.4f}, mean gap between regions "
              f"{gap:.3f} s, {merged} of {sum(map(len, labels[source][:n_train]))} regions span two true ones "
              f"({covering} cover most of two)", flush=True)  # fmt: skip
        if labels_only:
            continue
        started = time.perf_counter()
        fitted = TRAINER.fit(_frame(paths[:n_train], labels[source][:n_train]),
                             _frame(paths[n_train:cut], labels[source][n_train:cut]), LABELS,
                             {"epochs": epochs, "seed": seed})  # fmt: skip
        seconds = time.perf_counter() - started
        outputs, _ = TRAINER.predict(fitted, list(test["uri"]))
        found = [[Region(float(r["start"]), float(r["end"]), str(r["label"])) for r in o["regions"]] for o in outputs]
        score = pooled_segment_score(found, [list(u.regions) for u in utterances[cut:]])
        accuracy = frame_accuracy_pooled(outputs, list(test["label"]), LABELS)
        out[source] = (accuracy, score.f1, score.boundary_error, label_score.f1, seconds)
        print(f"seed {seed} {source}: frame accuracy {accuracy:.4f}, segment F1 {score.f1:.4f}, boundary error "
              f"{score.boundary_error:.4f} s, best epoch {fitted.metrics['best_epoch']:.0f}, {seconds:.1f} s", flush=True)  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--train", type=int, default=60)
    parser.add_argument("--val", type=int, default=15)
    parser.add_argument("--test", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--labels-only", action="store_true", help="the crowd labels' shape only: no training")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: fastest on a shared 2-core box)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    runs: dict[str, list[tuple[float, ...]]] = {s: [] for s in SOURCES}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for source, figures in run_seed(seed, args.train, args.val, args.test, args.epochs, Path(tmp),
                                             args.labels_only).items():  # fmt: skip
                runs[source].append(figures)
    if args.labels_only:
        return
    print(f"\n{args.seeds} seeds; {args.train} train, {args.val} val, {args.test} test utterances; {args.epochs} "
          "epochs; mean ± sd over seeds")  # fmt: skip
    header = ["test frame accuracy", "test segment F1", "test boundary error (s)", "train labels' segment F1", "fit (s)"]
    print("| trained on | " + " | ".join(header) + " |\n|---|" + "---|" * len(header))
    for source, measured in runs.items():
        values = np.asarray(measured)
        sd = values.std(axis=0, ddof=1) if len(values) > 1 else np.zeros(values.shape[1])
        cells = [f"{m:.4f} ± {s:.4f}" for m, s in zip(values.mean(axis=0)[:4], sd[:4], strict=True)]
        print(f"| {source} | " + " | ".join(cells) + f" | {values[:, 4].mean():.0f} |")


if __name__ == "__main__":
    main()
